// Message bubbles, the message list, the typing line and the composer: shared
// by the workspace chat and MessagePal. Both pages normalise their messages to
//   {key, seq, authorId, authorName, content, createdAt, messageType, fileUrl,
//    mentions, isAI, clientId, grade, isPinned, streaming}
// (key: the server id as a string; seq: a number that orders the messages).
// User text is only ever placed with text nodes / textContent.

import { el, formatTime, icon, safeUrl } from "./util.js";

const TOKEN_RE = /(https?:\/\/[^\s<>"'`]+)|(@[A-Za-z0-9_.+-]+)/g;
const STATUS_LABELS = { sending: "Sending", sent: "Sent", read: "Read", failed: "Not sent" };
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

function attachment(message) {
  if (!message.fileUrl || !["image", "file"].includes(message.messageType)) return null;
  const href = safeUrl(message.fileUrl);
  if (!href) {
    // Not an http(s) or same-site URL: shown, never followed.
    return el("p", { class: "attachment attachment-unsafe" }, "Attachment (not a web link): ", el("code", { text: message.fileUrl }));
  }
  if (message.messageType === "image") {
    return el(
      "a",
      { class: "attachment attachment-image", href, rel: "noopener noreferrer nofollow", target: "_blank" },
      el("img", { src: href, alt: `Image from ${message.authorName}`, loading: "lazy" }),
    );
  }
  const name = decoded(href.split("?")[0].split("/").filter(Boolean).pop() || "file");
  return el(
    "a",
    { class: "attachment attachment-file", href, rel: "noopener noreferrer nofollow", target: "_blank", download: "" },
    icon("file"),
    el("span", { text: name }),
  );
}

// A file name from a URL, decoded when it can be ("report%" stays as it is).
function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export class MessageList {
  constructor(log, { me, mentionNames = () => new Set(), isRead = () => false, onRetry = () => {}, onSeen = () => {}, canPin = () => false, onPin = () => {}, countsAsSeen = () => true }) {
    this.log = log;
    this.me = me;
    this.mentionNames = mentionNames;
    this.isRead = isRead;
    this.onRetry = onRetry;
    this.onSeen = onSeen;
    this.canPin = canPin;
    this.onPin = onPin;
    this.countsAsSeen = countsAsSeen;
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
    this.empty = el("p", { class: "log-empty muted", text: "No messages yet. Say hello!" });
    this.log.append(this.empty);
  }

  clear() {
    this.observer.disconnect();
    this.items.clear();
    this.pending.clear();
    this.visible.clear();
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
      const node = this.build(existing.message, "sent");
      existing.node.replaceWith(node);
      this.swapObserved(existing.node, node);
      existing.node = node;
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
    this.empty.hidden = true;
    if (stick || message.authorId === this.me.id) this.scrollToBottom();
    return true;
  }

  remove(key) {
    const item = this.items.get(key);
    if (!item) return;
    this.observer.unobserve(item.node);
    this.visible.delete(item.node);
    item.node.remove();
    this.items.delete(key);
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
      box.append(el("span", { class: "status-error", text: error ? `Not sent: ${error}` : "Not sent" }));
      const retry = el("button", { type: "button", class: "button-quiet retry", text: "Retry" });
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
        text: "This message could not be shown.",
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
      dataset: {
        status: own ? (status === "sent" && this.isRead(message) ? "read" : status) : "",
        ...(message.key !== null ? { key: message.key, seq: String(message.seq) } : {}),
        ...(message.clientId ? { clientId: message.clientId } : {}),
      },
    });
    const meta = el("div", { class: "message-meta" }, el("span", { class: "author", text: message.authorName }));
    if (message.isAI) meta.append(el("span", { class: "badge badge-ai", title: "Written by the AI assistant", text: "AI" }));
    meta.append(el("time", { datetime: message.createdAt, title: new Date(message.createdAt).toLocaleString(), text: formatTime(message.createdAt) }));
    if (message.isPinned) meta.append(el("span", { class: "badge badge-pin", text: "Pinned" }));
    if (message.grade) meta.append(el("span", { class: "badge badge-grade", text: `Grade: ${message.grade}` }));
    if (message.key !== null && !message.isPinned && this.canPin(message)) {
      const pin = el("button", { type: "button", class: "button-quiet pin-button", text: "Pin" });
      pin.addEventListener("click", () => this.onPin(message));
      meta.append(pin);
    }
    node.append(meta);
    const mentionNames = this.mentionNames(message);
    node.append(el("div", { class: "message-body" }, renderText(message.content, { mentionNames, myName: this.me.username })));
    const extra = attachment(message);
    if (extra) {
      const image = extra.querySelector("img");
      if (image) {
        image.addEventListener("load", () => {
          if (this.stick) this.scrollToBottom();
        });
      }
      node.append(extra);
    }
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

// "Bob is typing…": shown per person until they stop, send, or go quiet.
export class TypingIndicator {
  constructor(node, timeoutMs = 5000) {
    this.node = node;
    this.timeoutMs = timeoutMs;
    this.people = new Map(); // userId -> {name, timer}
  }

  show(userId, name) {
    const current = this.people.get(userId);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => this.hide(userId), this.timeoutMs);
    this.people.set(userId, { name, timer });
    this.render();
  }

  hide(userId) {
    const current = this.people.get(userId);
    if (!current) return;
    clearTimeout(current.timer);
    this.people.delete(userId);
    this.render();
  }

  clear() {
    for (const { timer } of this.people.values()) clearTimeout(timer);
    this.people.clear();
    this.render();
  }

  render() {
    const names = [...this.people.values()].map((p) => p.name);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    this.node.textContent = text;
  }
}

// The composer: Enter sends, Shift+Enter is a new line; typing signals are
// throttled (one per 3 s) and a stop signal goes out on send and on blur.
export function wireComposer({ form, textarea, onSend, onTyping = () => {}, onStopTyping = () => {} }) {
  let lastTyping = 0;
  let typingActive = false;
  const stop = () => {
    if (!typingActive) return;
    typingActive = false;
    lastTyping = 0;
    onStopTyping();
  };
  const grow = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  };
  const submit = () => {
    const content = textarea.value.trim();
    if (!content) return;
    if (onSend(content) === false) return;
    textarea.value = "";
    grow();
    stop();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  textarea.addEventListener("input", () => {
    grow();
    if (!textarea.value.trim()) {
      stop();
      return;
    }
    const now = Date.now();
    if (now - lastTyping > 3000) {
      lastTyping = now;
      typingActive = true;
      onTyping();
    }
  });
  textarea.addEventListener("blur", stop);
}
