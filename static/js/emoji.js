// The reaction picker: a small popup of common emoji (each a button named by
// the emoji itself) with a search box that filters a small name table. No
// CDN, no full Unicode list: these are the emoji a class reacts with.

import { el } from "./util.js";

// [emoji, words it is found by]. The first 16 are shown before any search.
const EMOJI = [
  ["👍", "thumbs up yes like agree ok plus one"],
  ["❤️", "red heart love"],
  ["😂", "face with tears of joy laugh lol funny"],
  ["😮", "face with open mouth wow surprised"],
  ["😢", "crying face sad tear"],
  ["🎉", "party popper tada celebrate congratulations hooray"],
  ["🙏", "folded hands please thanks pray"],
  ["👀", "eyes look watching"],
  ["✅", "check mark button done yes correct"],
  ["🔥", "fire hot lit"],
  ["💯", "hundred points perfect score"],
  ["😊", "smiling face with smiling eyes happy blush"],
  ["🤔", "thinking face hmm wonder"],
  ["👏", "clapping hands applause bravo well done"],
  ["🚀", "rocket launch ship fast"],
  ["👎", "thumbs down no dislike disagree"],
  ["😀", "grinning face smile happy"],
  ["😁", "beaming face with smiling eyes grin"],
  ["😅", "grinning face with sweat relief phew"],
  ["🤣", "rolling on the floor laughing rofl"],
  ["🙂", "slightly smiling face"],
  ["😉", "winking face wink"],
  ["😍", "smiling face with heart eyes love"],
  ["😎", "smiling face with sunglasses cool"],
  ["🥳", "partying face party birthday"],
  ["😴", "sleeping face tired zzz"],
  ["😬", "grimacing face awkward"],
  ["🙄", "face with rolling eyes whatever"],
  ["😡", "pouting face angry mad"],
  ["😱", "face screaming in fear scared shock"],
  ["🤯", "exploding head mind blown"],
  ["🥺", "pleading face puppy eyes"],
  ["🤗", "hugging face hug"],
  ["🤩", "star struck amazing excited"],
  ["😇", "smiling face with halo angel innocent"],
  ["🤝", "handshake deal agree"],
  ["👋", "waving hand hello hi bye wave"],
  ["✋", "raised hand question stop high five"],
  ["💪", "flexed biceps strong muscle"],
  ["👌", "ok hand perfect fine"],
  ["✌️", "victory hand peace"],
  ["🤞", "crossed fingers luck hope"],
  ["🙌", "raising hands celebrate hooray"],
  ["⭐", "star favourite favorite gold"],
  ["🌟", "glowing star shine"],
  ["✨", "sparkles shiny new magic"],
  ["💡", "light bulb idea"],
  ["📚", "books study read homework"],
  ["📝", "memo note write"],
  ["✏️", "pencil write draw"],
  ["🏆", "trophy winner prize"],
  ["🎯", "direct hit target bullseye goal"],
  ["⏰", "alarm clock time late"],
  ["❓", "red question mark"],
  ["❗", "red exclamation mark important"],
  ["❌", "cross mark no wrong"],
  ["⚠️", "warning caution"],
  ["💙", "blue heart love"],
  ["💚", "green heart love"],
  ["💔", "broken heart"],
  ["☕", "hot beverage coffee tea"],
  ["🍕", "pizza food"],
  ["🍎", "red apple teacher fruit"],
  ["🐱", "cat face kitten"],
  ["🐶", "dog face puppy"],
  ["🌈", "rainbow"],
  ["☀️", "sun sunny weather"],
  ["🎵", "musical note music song"],
  ["⚽", "soccer ball football sport"],
  ["🧠", "brain smart think"],
];
const COMMON = EMOJI.slice(0, 16);
const MAX_RESULTS = 40;

// Entries whose words start with every word of the query ("thu up" finds 👍).
export function searchEmoji(query) {
  const words = query.toLowerCase().trim().split(/\s+/).filter(Boolean);
  if (!words.length) return COMMON;
  return EMOJI.filter(([, names]) => {
    const own = names.split(" ");
    return words.every((word) => own.some((name) => name.startsWith(word)));
  }).slice(0, MAX_RESULTS);
}

// One popup per page, moved to whichever "Add reaction" button opened it.
export class EmojiPicker {
  constructor() {
    this.onPick = null;
    this.onClose = null;
    this.search = el("input", { type: "search", class: "emoji-search", "aria-label": gettext("Search emoji"), placeholder: gettext("Search emoji"), autocomplete: "off" });
    this.grid = el("div", { class: "emoji-grid", role: "group", "aria-label": gettext("Emoji") });
    this.empty = el("p", { class: "muted small emoji-empty", role: "status" });
    this.node = el("div", { class: "emoji-picker", role: "dialog", "aria-label": gettext("Choose a reaction"), hidden: true }, this.search, this.grid, this.empty);
    document.body.append(this.node);
    this.search.addEventListener("input", () => this.render());
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        const first = this.grid.querySelector("button");
        if (first) this.pick(first.dataset.emoji);
      } else if (event.key === "ArrowDown") {
        // Down from the search box into the grid (the arrows move on from there).
        const first = this.grid.querySelector("button");
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    this.grid.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-emoji]");
      if (button) this.pick(button.dataset.emoji);
    });
    this.grid.addEventListener("keydown", (event) => this.arrows(event));
    this.node.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.close();
      }
    });
    document.addEventListener("mousedown", (event) => {
      // A click elsewhere closes it and leaves the focus where it went.
      if (!this.node.hidden && !this.node.contains(event.target) && !this.anchor?.contains(event.target)) this.close(false);
    });
  }

  get isOpen() {
    return !this.node.hidden;
  }

  open(anchor, { onPick, onClose }) {
    if (this.isOpen) this.close(false);
    this.anchor = anchor;
    this.onPick = onPick;
    this.onClose = onClose;
    this.search.value = "";
    this.render();
    this.node.hidden = false;
    this.place(anchor);
    this.search.focus();
  }

  // Below the button, or above it when there is no room; kept on screen.
  place(anchor) {
    const box = anchor.getBoundingClientRect();
    const size = this.node.getBoundingClientRect();
    let top = box.bottom + 6;
    if (top + size.height > window.innerHeight - 8) top = Math.max(8, box.top - size.height - 6);
    const left = Math.min(Math.max(8, box.right - size.width), window.innerWidth - size.width - 8);
    this.node.style.top = `${top}px`;
    this.node.style.left = `${Math.max(8, left)}px`;
  }

  render() {
    const found = searchEmoji(this.search.value);
    this.grid.replaceChildren(...found.map(([emoji, names]) => el("button", { type: "button", class: "emoji-button", title: names.split(" ").slice(0, 3).join(" "), dataset: { emoji }, text: emoji })));
    this.empty.textContent = found.length ? "" : gettext("No emoji found.");
  }

  arrows(event) {
    const buttons = [...this.grid.querySelectorAll("button")];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = buttons[index + step];
    if (next) next.focus();
    else if (step === -8) this.search.focus();
  }

  pick(emoji) {
    const onPick = this.onPick;
    this.close();
    if (onPick) onPick(emoji);
  }

  close(restoreFocus = true) {
    if (this.node.hidden) return;
    this.node.hidden = true;
    const onClose = this.onClose;
    this.onPick = null;
    this.onClose = null;
    this.anchor = null;
    if (onClose) onClose(restoreFocus);
  }
}
