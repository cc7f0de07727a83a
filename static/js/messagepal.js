// MessagePal: /messagepal/ and /messagepal/{conversationId}/.
// Conversation list with unread counts, people search to start a conversation,
// and a 1:1 thread over /ws/messagepal/ with the same bubbles, statuses and
// typing line as the workspace chat, editing / deleting one's own messages
// with the workspace chat's MessageActions (message-actions.js), and "Block" /
// "Unblock" in the conversation's header (with a confirmation): while either
// blocks the other, neither can write to the other.

import { ChatSocket } from "./socket.js";
import { MessageList } from "./messages.js";
import { TypingIndicator, wireComposer } from "./composer.js";
import { ComposerAttachment, fileFields } from "./attachments.js";
import { MessageActions } from "./message-actions.js";
import { api, debounce, el, icon, newClientId, readJsonScript, updateChildren, wireLogout } from "./util.js";

const page = readJsonScript("page-data");
const me = page.me;
const conversationId = page.conversationId;
const other = page.otherUser;

const state = {
  conversations: [],
  otherReadSeq: 0, // the other person's read pointer in this conversation
  lastMarked: 0,
  readyOnce: false,
  blocked: false, // whether I block the other person
};

const $ = (id) => document.getElementById(id);
const log = $("messages");
const typing = new TypingIndicator($("typing"));
const seqOf = (id) => Number(String(id).split(":").pop());

const socket = new ChatSocket("/ws/messagepal/", {
  onReady: () => ready(),
  onEvent: (event) => handle(event),
  onStatus: (status) => {
    if (status !== "online") log.dataset.live = "false";
  },
  onFailed: (clientId, error) => {
    let reason = error.message || gettext("Something went wrong.");
    if (error.code === "rate_limited" && error.retryAfter) reason = interpolate(gettext("Too many messages; try again in %(seconds)s s."), { seconds: error.retryAfter }, true);
    list.setPendingStatus(clientId, "failed", reason);
  },
});

// The workspace chat's edit-in-place, "(edited)" and delete confirmation, with
// MessagePal's differences: only "Edit" and "Delete", only on one's own
// messages; no channel; the message id is the key ("conv_1_2:7"), which holds
// a ":" of its own (the requestId is "edit:conv_1_2:7").
class PalActions extends MessageActions {
  send(event, kind, key) {
    if (this.sendEvent({ ...event, messageId: key, requestId: `${kind}:${key}` })) return true;
    this.note(gettext("Not connected. Try again in a moment."));
    return false;
  }

  toolbar(message, list, own) {
    if (!own) return document.createDocumentFragment();
    const bar = el("div", { class: "message-actions" });
    const add = (name, iconName, focus, onClick) => {
      const button = el("button", { type: "button", class: "icon-button", "aria-label": name, title: name, dataset: { focus } }, icon(iconName));
      button.addEventListener("click", () => onClick(button));
      bar.append(button);
    };
    if (this.canEdit(message)) add(gettext("Edit"), "pencil", "edit", () => this.startEdit(list, message.key));
    add(gettext("Delete"), "trash", "delete", (button) => this.remove(list, message.key, button));
    return bar;
  }

  // An error answer to an edit shows under its editor; others as a note.
  failed(event) {
    const requestId = String(event.requestId || "");
    if (!requestId.startsWith("edit:")) return super.failed(event);
    const key = requestId.slice("edit:".length);
    if (!list.editing || list.editing.key !== key) return true;
    list.editing.saving = false;
    list.editing.error = event.message || gettext("Something went wrong.");
    list.redraw(key);
    list.focusMessage(key, "editor");
    return true;
  }
}

const actions = new PalActions({
  me,
  canModerate: () => false,
  canPin: () => false,
  send: (event) => socket.send(event),
  openThread: () => {},
  nameOf: (userId) => nameOf(userId, ""),
  note: (text) => note(text),
  editWindow: page.editWindow, // CHAT_EDIT_WINDOW when the page gives it; else the server decides
});

const list = new MessageList(log, {
  me,
  isRead: (message) => message.authorId === me.id && (Boolean(message.readAt) || message.seq <= state.otherReadSeq),
  onRetry: (clientId) => retry(clientId),
  onSeen: (message) => markRead(message),
  // Only the recipient marks a message read.
  countsAsSeen: (message) => message.authorId !== me.id,
  decorate: (node, message, into) => actions.decorate(node, message, into),
});

function note(text) {
  const node = $("composer-note");
  node.textContent = text;
  node.hidden = !text;
}

function nameOf(userId, fallback) {
  if (userId === me.id) return me.displayName || me.username;
  if (other && userId === other.id) return other.displayName || other.username;
  return fallback;
}

function normalise(m) {
  return {
    key: m.id,
    seq: seqOf(m.id),
    authorId: m.senderId,
    authorName: nameOf(m.senderId, m.senderUsername),
    content: m.content,
    createdAt: m.createdAt,
    messageType: m.file ? (m.file.isImage ? "image" : "file") : "text",
    fileUrl: m.fileUrl || null,
    file: m.file || null,
    mentions: [],
    isAI: false,
    clientId: m.clientId,
    readAt: m.readAt,
    editedAt: m.editedAt || null,
  };
}

function addMessages(messages) {
  for (const m of messages) {
    if (m.conversationId !== conversationId) continue;
    if (m.senderId === me.id && m.readAt) state.otherReadSeq = Math.max(state.otherReadSeq, seqOf(m.id));
    list.upsert(normalise(m));
    if (m.clientId && m.senderId === me.id) socket.ack(m.clientId);
  }
  list.refreshStatuses();
}

// --- thread ------------------------------------------------------------------------

// MessagePal's send_message takes fileUrl but no messageType.
function palFields(content, file) {
  const { messageType, ...fields } = fileFields(content, file);
  return fields;
}

function send(content, file) {
  const clientId = newClientId();
  list.addPending(clientId, { ...fileFields(content, file), file });
  socket.sendTracked(clientId, { type: "send_message", recipientId: other.id, ...palFields(content, file) });
}

function retry(clientId) {
  const pending = list.pending.get(clientId);
  if (!pending) return;
  list.setPendingStatus(clientId, "sending");
  socket.sendTracked(clientId, { type: "send_message", recipientId: other.id, ...palFields(pending.message.content, pending.message.file) });
}

// Up in an empty composer edits your newest message.
function editLastOnArrowUp(textarea) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" || textarea.value || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    const mine = [...list.items.values()].map((item) => item.message).filter((m) => actions.canEdit(m));
    if (!mine.length) return;
    event.preventDefault();
    actions.startEdit(list, mine.reduce((a, b) => (b.seq > a.seq ? b : a)).key);
  });
}

function markRead(message) {
  if (message.seq <= state.lastMarked) return;
  if (socket.send({ type: "mark_read", messageId: message.key })) {
    state.lastMarked = message.seq;
    const entry = state.conversations.find((c) => c.conversationId === conversationId);
    if (entry) entry.unreadCount = 0;
    renderConversations();
  }
}

// The newest page, then older pages until it meets what we already hold:
// MessagePal has no afterId, so this is the catch-up after a reconnect.
async function catchUp() {
  const newest = list.newest();
  let before = null;
  for (let round = 0; round < 20; round += 1) {
    const query = before ? `?limit=100&before=${encodeURIComponent(before)}` : "?limit=50";
    const result = await api.get(`/api/messagepal/conversations/${conversationId}/messages/${query}`);
    dropDeleted(result.results, before);
    addMessages(result.results);
    if (!newest) {
      setHasMore(result.hasMore);
      return;
    }
    const oldest = result.results[0];
    if (!result.hasMore || !oldest || seqOf(oldest.id) <= newest.seq) return;
    before = oldest.id;
  }
}

// What we hold between a fresh page's first message and its end (`before`,
// else its last message) but the page leaves out was deleted meanwhile.
function dropDeleted(results, before) {
  if (!results.length) return;
  const low = seqOf(results[0].id);
  const high = before ? seqOf(before) - 1 : seqOf(results[results.length - 1].id);
  const kept = new Set(results.map((m) => m.id));
  for (const { message } of [...list.items.values()]) {
    if (message.seq >= low && message.seq <= high && !kept.has(message.key)) removeMessage(message.key);
  }
}

function removeMessage(key) {
  actions.forget(key);
  list.remove(key);
}

function setHasMore(hasMore) {
  $("load-earlier").hidden = !hasMore;
}

async function loadEarlier() {
  const oldest = list.oldest();
  if (!oldest) return;
  const keep = log.scrollHeight - log.scrollTop;
  const result = await api.get(`/api/messagepal/conversations/${conversationId}/messages/?limit=50&before=${encodeURIComponent(oldest.key)}`);
  addMessages(result.results);
  log.scrollTop = log.scrollHeight - keep;
  setHasMore(result.hasMore);
}

// --- socket ------------------------------------------------------------------------

function ready() {
  const reconnect = state.readyOnce;
  state.readyOnce = true;
  if (conversationId) {
    socket.send({ type: "subscribe", conversationId });
    // Also on the first connect: covers what arrived between the page's
    // history request and this socket joining the user's delivery group.
    catchUp()
      .then(() => list.reportSeen())
      .catch(() => {});
  } else {
    log.dataset.live = "true";
  }
  if (reconnect) loadConversations().catch(() => {});
}

function handle(event) {
  switch (event.type) {
    case "message_received": {
      const m = event.message;
      if (m.conversationId === conversationId) {
        addMessages([m]);
        if (m.senderId !== me.id) typing.hide(m.senderId);
      }
      noteConversation(m);
      return;
    }
    case "subscribed":
      // Subscribed (after the catch-up request went out): live from here.
      if (event.conversationId === conversationId) log.dataset.live = "true";
      return;
    case "user_typing":
      if (event.conversationId === conversationId && event.userId !== me.id) typing.show(event.userId, nameOf(event.userId, event.username));
      return;
    case "message_updated": {
      const m = event.message;
      if (m.conversationId === conversationId) {
        if (typeof event.requestId === "string" && event.requestId.startsWith("edit:")) actions.saved(m.id);
        list.patch(m.id, normalise(m));
      }
      const entry = state.conversations.find((c) => c.lastMessage && c.lastMessage.id === m.id);
      if (entry) {
        entry.lastMessage = m;
        renderConversations();
      }
      return;
    }
    case "message_deleted":
      if (event.conversationId === conversationId) removeMessage(event.messageId);
      // The conversation's last message and unread count may have changed.
      loadConversations().catch(() => {});
      return;
    case "error":
      // Answers to our edits and deletes (sends: the socket's onFailed).
      actions.failed(event);
      return;
    case "message_read":
      if (event.conversationId !== conversationId) return;
      if (event.readBy === me.id) state.lastMarked = Math.max(state.lastMarked, seqOf(event.messageId));
      else {
        state.otherReadSeq = Math.max(state.otherReadSeq, seqOf(event.messageId));
        list.refreshStatuses();
      }
      return;
    default:
  }
}

// --- conversation list and search ------------------------------------------------

function noteConversation(m) {
  const entry = state.conversations.find((c) => c.conversationId === m.conversationId);
  if (!entry) {
    loadConversations().catch(() => {});
    return;
  }
  entry.lastMessage = m;
  if (m.senderId !== me.id && m.conversationId !== conversationId) entry.unreadCount = (entry.unreadCount || 0) + 1;
  state.conversations = [entry, ...state.conversations.filter((c) => c !== entry)];
  renderConversations();
}

async function loadConversations() {
  state.conversations = await api.get("/api/messagepal/conversations/");
  renderConversations();
}

function renderConversations() {
  const items = state.conversations.map((c) => {
    const current = c.conversationId === conversationId;
    const count = current ? 0 : c.unreadCount || 0;
    const name = c.otherUser.displayName || c.otherUser.username;
    const last = c.lastMessage ? `${c.lastMessage.senderId === me.id ? gettext("You: ") : ""}${c.lastMessage.content}` : "";
    return el(
      "li",
      {},
      el(
        "a",
        { href: `/messagepal/${c.conversationId}/`, class: current ? "nav-item conversation-item active" : "nav-item conversation-item", "aria-current": current ? "page" : null },
        el("span", { class: "nav-label" }, el("span", { class: "conversation-name", text: name }), el("span", { class: "conversation-last muted small", text: last.slice(0, 80) })),
        count ? el("span", { class: "unread", "aria-label": `${count} unread`, text: count > 99 ? "99+" : String(count) }) : null,
      ),
    );
  });
  // Patched in place: a new message reorders this list while someone clicks in it.
  updateChildren($("conversation-list"), items);
  $("conversation-empty").hidden = items.length > 0;
}

function conversationWith(userId) {
  const [low, high] = [me.id, userId].sort((a, b) => a - b);
  return `conv_${low}_${high}`;
}

async function search(text) {
  const results = $("search-results");
  if (!text.trim()) {
    results.replaceChildren();
    return;
  }
  const users = (await api.get(`/api/users/?search=${encodeURIComponent(text.trim())}`)).filter((u) => u.id !== me.id);
  results.replaceChildren(
    ...(users.length
      ? users.map((u) =>
          el(
            "li",
            {},
            el(
              "a",
              { class: "nav-item", href: `/messagepal/${conversationWith(u.id)}/`, "aria-label": interpolate(gettext("Message %(name)s"), { name: u.displayName || u.username }, true) },
              el("span", { class: "nav-label", text: u.displayName || u.username }),
              el("span", { class: "role", text: `@${u.username}` }),
            ),
          ),
        )
      : [el("li", { class: "muted small", text: gettext("Nobody found.") })]),
  );
}

// --- block / unblock ---------------------------------------------------------------

function showBlocked(blocked) {
  state.blocked = blocked;
  const button = $("block-toggle");
  button.textContent = blocked ? gettext("Unblock") : gettext("Block");
  button.hidden = false;
  $("composer").disabled = blocked;
  $("attach-input").disabled = blocked;
  $("composer-form").querySelector("button[type=submit]").disabled = blocked;
  const name = other.displayName || other.username;
  note(blocked ? interpolate(gettext("You blocked %(name)s. Neither of you can write to the other until you unblock them."), { name }, true) : "");
}

// The page's <dialog>: Cancel (focused first) or the action; Escape cancels.
function confirmBlock(blocking) {
  const dialog = $("confirm-block");
  const name = other.displayName || other.username;
  $("confirm-block-title").textContent = interpolate(blocking ? gettext("Block %(name)s?") : gettext("Unblock %(name)s?"), { name }, true);
  $("confirm-block-text").textContent = blocking
    ? gettext("Neither of you will be able to send the other messages, and you will not see each other typing. Your conversation stays here.")
    : gettext("You will be able to message each other again.");
  dialog.querySelector("[data-confirm]").textContent = blocking ? gettext("Block") : gettext("Unblock");
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

async function toggleBlock() {
  const blocking = !state.blocked;
  if (!(await confirmBlock(blocking))) return;
  const button = $("block-toggle");
  button.disabled = true;
  try {
    if (blocking) await api.post("/api/messagepal/blocks/", { userId: other.id });
    else await api.delete(`/api/messagepal/blocks/${other.id}/`);
    showBlocked(blocking);
  } catch (error) {
    if (!blocking && error.status === 404) showBlocked(false); // lifted meanwhile (another tab)
    else note(error.message || gettext("Something went wrong."));
  } finally {
    button.disabled = false;
    button.focus();
  }
}

async function loadBlocked() {
  const blocked = await api.get("/api/messagepal/blocks/");
  showBlocked(blocked.some((u) => u.id === other.id));
}

// --- start ---------------------------------------------------------------------------

async function start() {
  wireLogout();
  const input = $("user-search-input");
  const runSearch = debounce(() => search(input.value).catch(() => {}), 250);
  input.addEventListener("input", runSearch);
  $("user-search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(input.value).catch(() => {});
  });
  $("load-earlier").addEventListener("click", () => loadEarlier().catch(() => {}));
  const conversations = loadConversations().catch(() => {});
  if (!conversationId || !other) {
    $("composer").disabled = true;
    $("attach-input").disabled = true;
    $("composer-form").querySelector("button[type=submit]").disabled = true;
    list.empty.textContent = gettext("Pick a conversation, or find a person to write to.");
    await conversations;
    socket.start();
    return;
  }
  const name = other.displayName || other.username;
  $("channel-title").textContent = name;
  $("channel-subtitle").textContent = `@${other.username}`;
  document.title = `${name} · MessagePal · ${gettext("Chat")}`;
  $("block-toggle").addEventListener("click", () => toggleBlock().catch(() => {}));
  const blocks = loadBlocked().catch(() => {});
  wireComposer({
    form: $("composer-form"),
    textarea: $("composer"),
    attachment: new ComposerAttachment({ form: $("composer-form"), textarea: $("composer"), target: { conversationId } }),
    onSend: (content, file) => send(content, file),
    onTyping: () => socket.send({ type: "typing", recipientId: other.id }),
  });
  editLastOnArrowUp($("composer"));
  await Promise.all([catchUp().catch(() => {}), blocks]);
  list.scrollToBottom();
  socket.start();
}

start();
