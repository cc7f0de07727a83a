// Message search in the channel page's header (PROTOCOL.md part 2, "Search";
// docs/search.md): the box "Search messages" asks GET /api/search/ over the
// page's workspace on Enter and, debounced, while typing 2+ characters; the
// region "Search results" lists the answers grouped by channel, the matches
// (`[[`/`]]` in `highlight`) as <mark>, with "Load more" while hasMore.
// A result is a link to /workspaces/{w}/channels/{c}/#message-{id}: the page
// loads earlier messages until it holds it and highlights it (markFound);
// one of the open channel is shown in place (openHere).

import { messageUrl } from "./notifications.js";
import { api, el, formatTime } from "./util.js";

const MIN_LENGTH = 2; // PROTOCOL: a shorter q is 400
const TYPING_DELAY = 300;
const PAGE_SIZE = 20;
const OPEN = "[[";
const CLOSE = "]]";

// The message `content` as text nodes and <mark>s, from the server's
// `highlight` (content with matches wrapped in [[ ]]). Walked against the
// content itself, so a "[[" the author typed stays text; anything that does
// not line up gives the plain content. Never HTML: text nodes only.
export function markedNodes(content, highlight) {
  const text = typeof content === "string" ? content : "";
  if (typeof highlight !== "string" || !highlight.includes(OPEN)) return [text];
  const nodes = [];
  let plain = "";
  let marked = null; // the text of the open <mark>, or null outside one
  let i = 0;
  let j = 0;
  while (j < highlight.length) {
    if (marked !== null && highlight.startsWith(CLOSE, j)) {
      nodes.push(el("mark", { text: marked }));
      marked = null;
      j += CLOSE.length;
    } else if (i < text.length && highlight[j] === text[i]) {
      if (marked !== null) marked += text[i];
      else plain += text[i];
      i += 1;
      j += 1;
    } else if (marked === null && highlight.startsWith(OPEN, j)) {
      if (plain) nodes.push(plain);
      plain = "";
      marked = "";
      j += OPEN.length;
    } else return [text];
  }
  if (marked !== null || i !== text.length) return [text];
  if (plain) nodes.push(plain);
  return nodes;
}

// The message the page was opened at (or jumped to) stands out until another is.
export function markFound(list, messageId) {
  const item = list.items.get(String(messageId));
  if (!item) return;
  for (const node of list.log.querySelectorAll(".message-found")) node.classList.remove("message-found");
  item.node.classList.add("message-found");
}

export class Search {
  // channels(): the workspace's channels; label(channel): its sidebar name;
  // openHere(messageId): shows a message of the open channel, false if it cannot.
  constructor({ workspaceId, channelId, channels, label, openHere }) {
    Object.assign(this, { workspaceId, channelId, channels, label, openHere });
    const $ = (id) => document.getElementById(id);
    this.form = $("search-form");
    this.input = $("search-input");
    this.region = $("search-results");
    this.status = this.region.querySelector("[data-search-status]");
    this.error = this.region.querySelector("[data-search-error]");
    this.list = this.region.querySelector("[data-search-list]");
    this.more = this.region.querySelector("[data-search-more]");
    this.query = "";
    this.results = [];
    this.hasMore = false;
    this.asked = 0; // answers to an older question are dropped
    this.timer = null;
    this.wire();
  }

  wire() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(this.input.value);
    });
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      const q = this.input.value.trim();
      if (!q) this.close({ focus: false });
      else if (q.length >= MIN_LENGTH) this.timer = setTimeout(() => this.run(q), TYPING_DELAY);
    });
    const keys = (event) => this.keydown(event);
    this.input.addEventListener("keydown", keys);
    this.region.addEventListener("keydown", keys);
    this.region.querySelector("[data-search-close]").addEventListener("click", () => this.close());
    this.more.addEventListener("click", () => this.loadMore());
    // One delegated listener: the list is rebuilt on every page.
    this.list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-message-id]");
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      const result = this.results.find((m) => String(m.id) === link.dataset.messageId);
      if (!result) return;
      event.preventDefault();
      this.open(result);
    });
    document.addEventListener("click", (event) => {
      if (!this.region.hidden && !this.region.contains(event.target) && !this.form.contains(event.target)) this.close({ focus: false });
    });
  }

  keydown(event) {
    if (event.key === "Escape" && !this.region.hidden && !event.defaultPrevented) {
      event.preventDefault(); // also keeps the box's text (Escape would clear it)
      this.close();
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    // Up and Down move between the box and the results.
    const links = [...this.list.querySelectorAll("a[data-message-id]")];
    if (this.region.hidden || !links.length) return;
    const at = links.indexOf(document.activeElement);
    if (event.target === this.input && event.key === "ArrowUp") return;
    event.preventDefault();
    if (event.key === "ArrowDown") links[Math.min(at + 1, links.length - 1)].focus();
    else if (at > 0) links[at - 1].focus();
    else this.input.focus();
  }

  path(q, before) {
    const params = new URLSearchParams({ q, workspaceId: String(this.workspaceId), limit: String(PAGE_SIZE) });
    if (before) params.set("before", String(before));
    return `/api/search/?${params}`;
  }

  async run(raw) {
    clearTimeout(this.timer);
    const q = raw.trim();
    if (!q) return;
    const asked = ++this.asked;
    this.query = q;
    this.showRegion();
    this.region.setAttribute("aria-busy", "true");
    try {
      const page = await api.get(this.path(q));
      if (asked !== this.asked) return;
      this.results = page.results;
      this.hasMore = Boolean(page.hasMore);
      this.error.textContent = "";
    } catch (error) {
      if (asked !== this.asked) return;
      this.results = [];
      this.hasMore = false;
      this.error.textContent = problem(error);
    }
    this.region.removeAttribute("aria-busy");
    this.render();
  }

  async loadMore() {
    const last = this.results[this.results.length - 1];
    if (!last || !this.hasMore) return;
    const asked = this.asked;
    this.more.disabled = true;
    try {
      const page = await api.get(this.path(this.query, last.id));
      if (asked !== this.asked) return;
      const known = new Set(this.results.map((m) => m.id));
      const fresh = page.results.filter((m) => !known.has(m.id));
      this.results = this.results.concat(fresh);
      this.hasMore = Boolean(page.hasMore) && fresh.length > 0;
      this.error.textContent = "";
      this.render();
      // Focus moves to the first new result (the button may have gone).
      if (fresh.length) this.list.querySelector(`a[data-message-id="${CSS.escape(String(fresh[0].id))}"]`)?.focus();
    } catch (error) {
      if (asked === this.asked) this.error.textContent = problem(error);
    } finally {
      this.more.disabled = false;
    }
  }

  async open(result) {
    if (result.channelId === this.channelId && this.openHere) {
      if (await this.openHere(result.id)) {
        this.close({ focus: false });
        return;
      }
      this.error.textContent = gettext("That message is no longer in this channel.");
      return;
    }
    window.location.assign(messageUrl(this.workspaceId, result.channelId, result.id));
  }

  showRegion() {
    this.region.hidden = false;
  }

  close({ focus = true } = {}) {
    clearTimeout(this.timer);
    this.asked += 1; // an answer still on its way is not shown
    this.region.hidden = true;
    this.region.removeAttribute("aria-busy");
    if (focus) this.input.focus();
  }

  channelName(channelId) {
    const channel = this.channels().find((c) => c.id === channelId);
    if (!channel) return gettext("Another channel");
    return channel.kind === "dm" ? this.label(channel) : `#${this.label(channel)}`;
  }

  render() {
    const count = this.results.length;
    let status = gettext("Could not search.");
    if (!this.error.textContent) {
      if (!count) status = gettext("No messages found.");
      else if (this.hasMore) status = interpolate(gettext("%(count)s+ messages found."), { count }, true);
      else status = interpolate(ngettext("%(count)s message found.", "%(count)s messages found.", count), { count }, true);
    }
    this.status.textContent = status;
    this.more.hidden = !this.hasMore;
    // Grouped by channel, the channels in the order of their newest result.
    const groups = new Map();
    for (const m of this.results) {
      if (!groups.has(m.channelId)) groups.set(m.channelId, []);
      groups.get(m.channelId).push(m);
    }
    this.list.replaceChildren(
      ...[...groups].map(([channelId, messages]) =>
        el("section", { class: "search-group" }, el("h3", { class: "search-channel", text: this.channelName(channelId) }), el("ul", { class: "search-hits" }, ...messages.map((m) => this.hitNode(m)))),
      ),
    );
  }

  hitNode(m) {
    const author = m.authorDisplayName || m.authorUsername || gettext("Someone");
    const content = m.content || (m.file && m.file.name) || "";
    return el(
      "li",
      {},
      el(
        "a",
        { href: messageUrl(this.workspaceId, m.channelId, m.id), class: "search-hit", dataset: { messageId: String(m.id) } },
        el("span", { class: "search-hit-line" }, el("strong", { text: author }), " ", el("time", { datetime: m.createdAt, text: formatTime(m.createdAt) })),
        el("span", { class: "search-hit-text", dir: "auto" }, ...markedNodes(content, m.content ? m.highlight : null)),
      ),
    );
  }
}

// A 400 says what is wrong with q in words (PROTOCOL: {errors: {q: [...]}}).
function problem(error) {
  const body = error && error.body;
  const said = body && body.errors && body.errors.q;
  if (Array.isArray(said) && said.length) return said.join(" ");
  if (error && error.status === 404) return gettext("This workspace cannot be searched.");
  if (body && typeof body.detail === "string") return body.detail;
  return gettext("Search failed. Check your connection and try again.");
}
