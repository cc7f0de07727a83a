// The sidebar as a drawer on a narrow screen (issue 21; PROTOCOL.md, "Browser
// UI names"): under 760 px the conversation fills the screen and the sidebar
// (a channel's page: channels, DMs, members; MessagePal: its conversations)
// opens from the "Channels" button. While it is open the rest of the page is
// inert and Tab stays inside it; Escape, the backdrop, "Close" and choosing a
// link close it, and focus goes back to the button. On a wide screen the
// sidebar is an ordinary column and none of this applies.

const narrow = window.matchMedia("(max-width: 760px)");
const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

class Drawer {
  constructor({ button, drawer, layout }) {
    this.button = button;
    this.drawer = drawer;
    this.layout = layout;
    this.backdrop = layout.querySelector("[data-drawer-backdrop]");
    button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    drawer.querySelector("[data-drawer-close]").addEventListener("click", () => this.close());
    this.backdrop.addEventListener("click", () => this.close());
    drawer.addEventListener("keydown", (event) => this.keydown(event));
    // Choosing a channel or conversation (a link to its page) closes the drawer.
    drawer.addEventListener("click", (event) => {
      if (event.target.closest("a[href]")) this.close({ focus: false });
    });
    narrow.addEventListener("change", () => {
      if (!narrow.matches && this.isOpen) this.close({ focus: false });
    });
  }

  get isOpen() {
    return this.layout.classList.contains("drawer-open");
  }

  // The page outside the drawer: made inert while it is open.
  outside() {
    const inside = [this.drawer, this.backdrop];
    const siblings = [...this.layout.children].filter((node) => !inside.includes(node));
    return [...siblings, document.querySelector(".topbar")].filter(Boolean);
  }

  open() {
    this.layout.classList.add("drawer-open");
    this.button.setAttribute("aria-expanded", "true");
    for (const node of this.outside()) node.inert = true;
    const first = this.focusable()[0];
    if (first) first.focus();
  }

  close({ focus = true } = {}) {
    this.layout.classList.remove("drawer-open");
    this.button.setAttribute("aria-expanded", "false");
    for (const node of this.outside()) node.inert = false;
    if (focus) this.button.focus();
  }

  focusable() {
    return [...this.drawer.querySelectorAll(FOCUSABLE)].filter((node) => node.getClientRects().length > 0);
  }

  keydown(event) {
    if (!this.isOpen) return;
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      this.close();
      return;
    }
    if (event.key !== "Tab") return;
    // Focus trap: Tab past the last control comes back to the first, and
    // Shift+Tab before the first goes to the last.
    const items = this.focusable();
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }
}

const button = document.querySelector("[data-drawer-open]");
const drawer = button && document.getElementById(button.getAttribute("aria-controls"));
if (drawer) new Drawer({ button, drawer, layout: drawer.closest(".chat-layout") });
