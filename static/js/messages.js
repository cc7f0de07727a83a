// Message bubbles and the message list: shared by the workspace chat and
// MessagePal (the typing line and the composer: composer.js). Both pages
// normalise their messages to
//   {key, seq, authorId, authorName, content, createdAt, messageType, fileUrl,
//    file, mentions, isAI, clientId, grade, isPinned, streaming}
// (key: the server id as a string; seq: a number that orders the messages);
// the workspace chat adds {editedAt, replyTo, replyCount, lastReplyAt,
// reactions}, drawn by its `decorate` hook (message-actions.js).
// User text is only ever placed with text nodes / textContent.
//
// Keyboard: the messages use a roving tabindex. One message (the last one
// focused, else the newest) is in the tab order; Up/Down/Home/End move
// between messages, and a focused message shows its action buttons.

import { el, formatDateTime, formatTime, safeUrl } from "./util.js";
import { renderAttachment } from "./attachments.js";

const TOKEN_RE = /(https?:\/\/[^\s<>"'`]+)|(@[A-Za-z0-9_.+-]+)/g;
const STATUS_LABELS = { sending: gettext("Sending"), sent: gettext("Sent"), read: gettext("Read"), failed: gettext("Not sent") };
const STATUS_GLYPHS = { sending: "◷", sent: "✓", read: "✓✓", failed: "!" };

// Text with @mentions and http(s) links picked out, as DOM nodes.
export function renderText(content, { mentionNames = new Set(), myName = "" } = {}) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of content.matchAll(TOKEN_RE)) {
    let token = match[0];
    if (match[1]) {
      // A link stops before trailing punctuation, as people write it.
      const trimmed = token.replace(/[.,;:!?)\]]+$/, "");
      token = trimmed;
      const href = safeUrl(trimmed);
      if (!href) continue;
      fragment.append(content.slice(last, match.index));
      fragment.append(el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank", text: trimmed }));
      last = match.index + trimmed.length;
    } else {
      const name = token.slice(1).replace(/[.,;:!?]+$/, "");
      const lower = name.toLowerCase();
      if (!mentionNames.has(lower)) continue;
      const before = match.index;
      // Not a mention inside an e-mail address (a@b.org).
      if (before > 0 && /[A-Za-z0-9_.+-]/.test(content[before - 1])) continue;
      fragment.append(content.slice(last, before));
      const isMe = myName && lower === myName.toLowerCase();
      fragment.append(el("span", { class: isMe ? "mention mention-me" : "mention", text: `@${name}` }));
      last = before + 1 + name.length;
    }
  }
  fragment.append(content.slice(last));
  return fragment;
}

export class MessageList {
  constructor(log, { me, mentionNames = () => new Set(), isRead = () => false, onRetry = () => {}, onSeen = () => {}, countsAsSeen = () => true, decorate = null, emptyText = gettext("No messages yet. Say hello!") }) {
    this.log = log;
    this.me = me;
    this.mentionNames = mentionNames;
    this.isRead = isRead;
    this.onRetry = onRetry;
    this.onSeen = onSeen;
    this.countsAsSeen = countsAsSeen;
    this.decorate = decorate;
    this.roverKey = null; // the message in the tab order, once one was focused
    this.roverNode = null;
    this.items = new Map(); // key -> {message, node}
    this.pending = new Map(); // clientId -> {message, node, status, error}
    this.visible = new Set();
    this.seenTimer = null;
    this.observer = new IntersectionObserver((entries) => this.intersections(entries), {
      root: log,
      threshold: [0, 0.25, 0.5, 1],
    });
    document.addEventListener("visibilitychange", () => this.reportSeen());
    window.addEventListener("focus", () => this.reportSeen());
    // Follow new messages (and late-loading images) while the reader is at the bottom.
    this.stick = true;
    log.addEventListener("scroll", () => {
      this.stick = this.nearBottom();
    });
    // The log shrinks when the pins bar or a note appears: keep the bottom in view.
    new ResizeObserver(() => {
      if (this.stick) this.log.scrollTop = this.log.scrollHeight;
    }).observe(log);
    this.empty = el("p", { class: "log-empty muted", text: emptyText });
    this.log.append(this.empty);
    log.addEventListener("focusin", (event) => {
      const node = event.target.closest("article.message[data-key]");
      if (!node || !log.contains(node) || node.dataset.key === this.roverKey) return;
      this.roverKey = node.dataset.key;
      this.rove();
    });
    log.addEventListener("keydown", (event) => this.arrows(event));
    this.announceOnlyNew();
  }

  // The log (role "log", aria-live polite) reads out what is added to it,
  // never the whole list again (aria-relevant "additions", aria-atomic
  // false); while the page loads or catches up after a reconnect (not yet
  // data-live) it is aria-busy, so a screen reader does not read out the
  // history it fills in, only the messages that arrive afterwards.
  announceOnlyNew() {
    const log = this.log;
    if (log.getAttribute("role") !== "log") return; // a thread's list is not a live region
    log.setAttribute("aria-live", "polite");
    log.setAttribute("aria-relevant", "additions");
    log.setAttribute("aria-atomic", "false");
    const sync = () => log.setAttribute("aria-busy", log.dataset.live === "true" ? "false" : "true");
    sync();
    new MutationObserver(sync).observe(log, { attributes: true, attributeFilter: ["data-live"] });
  }

  // Up/Down/Home/End on a focused message move to another message.
  arrows(event) {
    if (!event.target.matches("article.message[data-key]") || event.altKey || event.ctrlKey || event.metaKey) return;
    const nodes = [...this.log.querySelectorAll(":scope > article.message[data-key]")];
    const index = nodes.indexOf(event.target);
    const next = { ArrowUp: index - 1, ArrowDown: index + 1, Home: 0, End: nodes.length - 1 }[event.key];
    if (next === undefined || !nodes[next]) return;
    event.preventDefault();
    nodes[next].focus();
  }

  // Exactly one message has tabindex 0: the one last focused, else the newest.
  rove() {
    const target = this.items.get(this.roverKey) || this.items.get(this.newest()?.key);
    if (this.roverNode && this.roverNode !== target?.node) this.roverNode.tabIndex = -1;
    this.roverNode = target ? target.node : null;
    if (this.roverNode) this.roverNode.tabIndex = 0;
  }

  // Draws one message again (its state outside the message changed).
  redraw(key) {
    const message = this.get(key);
    if (message) this.upsert(message);
  }

  // Merges `fields` into a message already shown; false when it is not shown.
  patch(key, fields) {
    const message = this.get(key);
    if (!message) return false;
    this.upsert({ ...message, ...fields });
    return true;
  }

  // Focuses a message, or one of its controls (by its data-focus name).
  focusMessage(key, control = "", { preventScroll = false } = {}) {
    const item = this.items.get(key);
    if (!item) return false;
    const target = control ? item.node.querySelector(`[data-focus="${CSS.escape(control)}"]`) : null;
    // The message's tools are hidden until it holds the focus (:focus-within),
    // and a hidden button cannot take it: the message first (keyboard users
    // lost the focus to the page after picking a reaction).
    if (target) item.node.focus({ preventScroll: true });
    (target || item.node).focus({ preventScroll });
    return true;
  }

  clear() {
    this.observer.disconnect();
    this.items.clear();
    this.pending.clear();
    this.visible.clear();
    this.roverKey = null;
    this.roverNode = null;
    this.log.replaceChildren(this.empty);
    this.empty.hidden = false;
  }

  has(key) {
    return this.items.has(key);
  }

  get(key) {
    return this.items.get(key)?.message;
  }

  newest() {
    let best = null;
    for (const { message } of this.items.values()) if (!best || message.seq > best.seq) best = message;
    return best;
  }

  oldest() {
    let best = null;
    for (const { message } of this.items.values()) if (!best || message.seq < best.seq) best = message;
    return best;
  }

  nearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
  }

  scrollToBottom() {
    this.log.scrollTop = this.log.scrollHeight;
    this.stick = true;
  }

  // Adds or updates a server message; a message carrying one of our pending
  // clientIds replaces its optimistic bubble. Returns true if it was new.
  upsert(message) {
    const stick = this.stick || this.nearBottom();
    const existing = this.items.get(message.key);
    if (existing) {
      existing.message = { ...existing.message, ...message };
      // A redrawn message keeps the keyboard focus where it was.
      const active = document.activeElement;
      const focus = existing.node.contains(active) ? (active === existing.node ? "" : active.dataset.focus || "") : null;
      const node = this.build(existing.message, "sent");
      existing.node.replaceWith(node);
      this.swapObserved(existing.node, node);
      existing.node = node;
      this.rove();
      if (focus !== null) this.focusMessage(message.key, focus, { preventScroll: true });
      return false;
    }
    if (message.clientId && message.authorId === this.me.id && this.pending.has(message.clientId)) {
      const pending = this.pending.get(message.clientId);
      this.pending.delete(message.clientId);
      pending.node.remove();
    }
    const node = this.build(message, "sent");
    this.items.set(message.key, { message, node });
    this.insert(node, message.seq);
    this.observer.observe(node);
    this.rove();
    this.empty.hidden = true;
    if (stick || message.authorId === this.me.id) this.scrollToBottom();
    return true;
  }

  remove(key) {
    const item = this.items.get(key);
    if (!item) return;
    this.observer.unobserve(item.node);
    this.visible.delete(item.node);
    // The focus (and the tab stop) moves to a neighbour, not to the end.
    const hadFocus = item.node.contains(document.activeElement);
    const sibling = (node) => (node && node.dataset && node.dataset.key !== undefined ? node : null);
    const neighbour = sibling(item.node.nextElementSibling) || sibling(item.node.previousElementSibling);
    item.node.remove();
    this.items.delete(key);
    if (this.roverKey === key) this.roverKey = neighbour ? neighbour.dataset.key : null;
    this.rove();
    if (hadFocus && this.roverNode) this.roverNode.focus();
    this.empty.hidden = this.items.size + this.pending.size > 0;
  }

  insert(node, seq) {
    // Server messages in seq order, before every pending (optimistic) one.
    let before = null;
    for (const child of this.log.children) {
      if (child === this.empty) continue;
      const childSeq = child.dataset.seq === undefined ? Infinity : Number(child.dataset.seq);
      if (childSeq > seq) {
        before = child;
        break;
      }
    }
    this.log.insertBefore(node, before);
  }

  addPending(clientId, fields) {
    const message = {
      key: null,
      seq: Infinity,
      authorId: this.me.id,
      authorName: this.me.displayName || this.me.username,
      createdAt: new Date().toISOString(),
      messageType: "text",
      fileUrl: null,
      file: null,
      mentions: [],
      isAI: false,
      clientId,
      ...fields,
    };
    const node = this.build(message, "sending");
    this.pending.set(clientId, { message, node, status: "sending" });
    this.log.append(node);
    this.empty.hidden = true;
    this.scrollToBottom();
  }

  setPendingStatus(clientId, status, error = "") {
    const pending = this.pending.get(clientId);
    if (!pending) return;
    pending.status = status;
    pending.error = error;
    const node = this.build(pending.message, status, error);
    pending.node.replaceWith(node);
    pending.node = node;
  }

  // Recompute sent/read on our own messages (after read pointers moved).
  refreshStatuses() {
    for (const { message, node } of this.items.values()) {
      if (message.authorId !== this.me.id) continue;
      const status = this.isRead(message) ? "read" : "sent";
      if (node.dataset.status !== status) this.setStatusNode(node, status);
    }
  }

  setStatusNode(node, status, error = "") {
    node.dataset.status = status;
    const old = node.querySelector(".message-status");
    const fresh = this.statusNode(status, error, node.dataset.clientId);
    if (old) old.replaceWith(fresh);
  }

  statusNode(status, error, clientId) {
    const box = el("div", { class: "message-status" });
    box.append(el("span", { class: `status status-${status}`, role: "img", "aria-label": STATUS_LABELS[status], title: STATUS_LABELS[status], text: STATUS_GLYPHS[status] }));
    if (status === "failed") {
      box.append(el("span", { class: "status-error", text: error ? interpolate(gettext("Not sent: %(error)s"), { error }, true) : gettext("Not sent") }));
      const retry = el("button", { type: "button", class: "button-quiet retry", text: gettext("Retry") });
      retry.addEventListener("click", () => this.onRetry(clientId));
      box.append(retry);
    }
    return box;
  }

  // One message's element. A message that cannot be drawn (whatever the
  // reason) becomes a short notice: it never stops the rest of the list.
  build(message, status, error = "") {
    try {
      return this.draw(message, status, error);
    } catch (failure) {
      console.warn("a message could not be shown", message.key, failure);
      return el("article", {
        class: "message message-broken",
        dataset: message.key !== null ? { key: message.key, seq: String(message.seq) } : {},
        text: gettext("This message could not be shown."),
      });
    }
  }

  draw(message, status, error) {
    const own = message.authorId === this.me.id;
    const classes = ["message"];
    if (own) classes.push("message-own");
    if (message.isAI) classes.push("message-ai");
    if (message.key === null) classes.push("message-pending");
    if (message.streaming) classes.push("message-streaming");
    const node = el("article", {
      class: classes.join(" "),
      tabindex: message.key !== null ? "-1" : null,
      dataset: {
        status: own ? (status === "sent" && this.isRead(message) ? "read" : status) : "",
        ...(message.key !== null ? { key: message.key, seq: String(message.seq) } : {}),
        ...(message.clientId ? { clientId: message.clientId } : {}),
      },
    });
    const meta = el("div", { class: "message-meta" }, el("span", { class: "author", text: message.authorName }));
    if (message.isAI) meta.append(el("span", { class: "badge badge-ai", title: gettext("Written by the AI assistant"), text: gettext("AI") }));
    meta.append(el("time", { datetime: message.createdAt, title: formatDateTime(message.createdAt), text: formatTime(message.createdAt) }));
    if (message.isPinned) meta.append(el("span", { class: "badge badge-pin", text: gettext("Pinned") }));
    // A grade ({value, feedback, ...}) reaches only its author and staff.
    if (message.grade) {
      const feedback = message.grade.feedback ? ` (${message.grade.feedback})` : "";
      meta.append(el("span", { class: "badge badge-grade", text: interpolate(gettext("Grade: %(grade)s"), { grade: `${message.grade.value}${feedback}` }, true) }));
    }
    node.append(meta);
    const mentionNames = this.mentionNames(message);
    const body = el("div", { class: "message-body", dir: "auto" }, renderText(message.content, { mentionNames, myName: this.me.username }));
    // A file sent without a caption: its name is on the file's card already.
    if (message.file && message.content === message.file.name) body.hidden = true;
    node.append(body);
    const extra = renderAttachment(message); // attachments.js
    if (extra) {
      const image = extra.querySelector("img");
      if (image) {
        image.addEventListener("load", () => {
          if (this.stick) this.scrollToBottom();
        });
      }
      node.append(extra);
    }
    if (this.decorate && message.key !== null) this.decorate(node, message, this);
    if (own) node.append(this.statusNode(node.dataset.status, error, message.clientId));
    return node;
  }

  swapObserved(oldNode, newNode) {
    this.observer.unobserve(oldNode);
    if (this.visible.delete(oldNode)) this.visible.add(newNode);
    this.observer.observe(newNode);
  }

  intersections(entries) {
    for (const entry of entries) {
      const root = entry.rootBounds;
      const seen = entry.isIntersecting && (entry.intersectionRatio >= 0.5 || (root && entry.intersectionRect.height >= root.height / 2));
      if (seen) this.visible.add(entry.target);
      else this.visible.delete(entry.target);
    }
    this.reportSeen();
  }

  // The newest message on screen, when the page is visible: the page marks it read.
  reportSeen() {
    clearTimeout(this.seenTimer);
    this.seenTimer = setTimeout(() => {
      if (document.visibilityState !== "visible") return;
      let newest = null;
      for (const node of this.visible) {
        if (!node.isConnected || node.dataset.seq === undefined) continue;
        const message = this.items.get(node.dataset.key)?.message;
        if (message && this.countsAsSeen(message) && (!newest || message.seq > newest.seq)) newest = message;
      }
      if (newest) this.onSeen(newest);
    }, 150);
  }
}
