// The workspace chat page: /workspaces/{id}/channels/{channelId}/.
// Sidebar (channels with unread counts, DMs and members with presence dots),
// the message list (HTTP history, then live events over /ws/chat/), pins,
// typing, read receipts, and the composer with optimistic sending; the message
// lifecycle (edits, deletes, reactions, threads) through message-actions.js,
// thread.js and changes.js; presence, mention counts, the tab title and the
// "Notifications" bell through notifications.js.

import { ChatSocket } from "./socket.js";
import { MessageList } from "./messages.js";
import { TypingIndicator, wireComposer } from "./composer.js";
import { ComposerAttachment, fileFields } from "./attachments.js";
import { MessageActions } from "./message-actions.js";
import { ThreadPanel } from "./thread.js";
import { ChangeFeed } from "./changes.js";
import { ReportDialog } from "./report.js";
import { GradeDialog } from "./grade.js";
import { Sidebar } from "./sidebar.js";
import { Notifier, Presence, messageInHash, revealMessage } from "./notifications.js";
import { Search, markFound } from "./search.js";
import { api, el, errorText, newClientId, readJsonScript, wireLogout } from "./util.js";

const page = readJsonScript("page-data");
const me = page.me;
const workspaceId = page.workspaceId;
const channelId = page.channelId;

const state = {
  workspace: null,
  members: new Map(), // userId -> {user, role}
  channels: [],
  unread: new Map(), // channelId -> count
  mentions: new Map(), // channelId -> unread messages mentioning me
  pointers: new Map(), // userId -> newest message id read (current channel)
  lastMarked: 0,
  hasMore: false,
  joinedOnce: false,
  joined: new Set(), // channels joined on the current connection
  joinUsedAfter: false,
  refreshedAfterJoin: false,
};

const $ = (id) => document.getElementById(id);
const log = $("messages");
const typing = new TypingIndicator($("typing"));
const socket = new ChatSocket("/ws/chat/", {
  onReady: () => joinAll(),
  onEvent: (event) => handle(event).catch((error) => note(error.message || gettext("Something went wrong."))),
  onFailed: (clientId, error) => failed(clientId, error),
  onStatus: (status) => {
    if (status !== "online") {
      log.dataset.live = "false";
      presence.clear();
    }
    renderSidebar();
  },
});

const presence = new Presence({ me, connected: () => socket.connected, onChange: () => renderSidebar() });
const sidebar = new Sidebar({ state, me, workspaceId, channelId, isOnline: (userId) => presence.isOnline(userId), note: (text) => note(text) });
const renderSidebar = () => {
  sidebar.render();
  notifier.renderTitle();
};
const displayName = (userId) => sidebar.displayName(userId);
const notifier = new Notifier({
  state,
  workspaceId,
  channelId,
  sidebar,
  readUpTo: (id) => (id === channelId ? state.lastMarked : 0),
  openHere: (messageId) => reveal(messageId),
  onUnknownChannel: () => refreshChannels().catch(() => {}),
  onCounts: () => renderSidebar(),
  note: (text) => note(text),
});

const reports = channelId ? new ReportDialog({ dialog: $("report-dialog"), channelId, note: (text) => note(text) }) : null;
const grades = channelId ? new GradeDialog({ channelId, note: (text) => note(text) }) : null;
const actions = new MessageActions({
  me,
  channelId,
  report: reports ? (message) => reports.open(message) : null,
  grade: grades ? (message) => grades.open(message) : null,
  canModerate: () => isStaff(),
  canPin: () => isStaff(),
  send: (event) => socket.send(event),
  openThread: (rootKey, opener) => openThread(rootKey, opener),
  nameOf: (userId) => displayName(userId),
  note: (text) => note(text),
  editWindow: page.editWindow, // CHAT_EDIT_WINDOW (chatsite/pages.py)
});

const listOptions = {
  me,
  mentionNames: () => {
    const names = new Set(["ai"]);
    for (const { user } of state.members.values()) names.add(user.username.toLowerCase());
    return names;
  },
  isRead: (message) => isRead(message),
  onRetry: (clientId) => retry(clientId),
};

// Thread replies stay in the channel's list too, drawn compactly ("Replied in
// a thread · View thread"): read receipts, unread counts and afterId
// catch-up then work for them as for any message, and nobody misses a reply.
const list = new MessageList(log, { ...listOptions, onSeen: (message) => markRead(message), decorate: (node, message, into) => actions.decorate(node, message, into) });

const thread = new ThreadPanel({
  panel: $("thread-panel"),
  layout: document.querySelector(".chat-layout"),
  channelId,
  listOptions: { ...listOptions, decorate: (node, message, into) => actions.decorate(node, message, into, { inThread: true }) },
  normalise: (m) => normalise(m),
  send: (clientId, event) => socket.sendTracked(clientId, event),
  note: (text) => note(text),
  onClosed: ({ key, focus }) => list.focusMessage(key, focus),
});

// Edits, deletes, reactions, thread counts and pins, live or caught up.
const changes = new ChangeFeed({ list, thread, actions, normalise: (m) => normalise(m), onPins: () => loadPins().catch(() => {}) });

function isStaff() {
  return state.workspace && (state.workspace.role === "admin" || state.workspace.role === "teacher");
}

function normalise(m) {
  return {
    key: String(m.id),
    seq: m.id,
    authorId: m.authorId,
    authorName: m.authorDisplayName || m.authorUsername,
    content: m.content,
    createdAt: m.createdAt,
    messageType: m.messageType,
    fileUrl: m.fileUrl,
    file: m.file || null,
    mentions: m.mentions || [],
    isAI: Boolean(m.isAI),
    clientId: m.clientId,
    grade: m.grade,
    isPinned: Boolean(m.isPinned),
    streaming: Boolean(m.streaming),
    editedAt: m.editedAt || null,
    replyTo: m.replyTo || null,
    replyCount: m.replyCount || 0,
    lastReplyAt: m.lastReplyAt || null,
    reactions: m.reactions || [],
  };
}

// --- read pointers -------------------------------------------------------------

function movePointer(userId, messageId) {
  if ((state.pointers.get(userId) || 0) < messageId) state.pointers.set(userId, messageId);
}

function isRead(message) {
  for (const [userId, pointer] of state.pointers) if (userId !== me.id && pointer >= message.seq) return true;
  return false;
}

function addMessages(messages) {
  for (const m of messages) {
    for (const userId of m.readBy || []) movePointer(userId, m.id);
    list.upsert(normalise(m));
    thread.accept(m);
    if (m.clientId && m.authorId === me.id) socket.ack(m.clientId);
  }
  list.refreshStatuses();
  thread.list.refreshStatuses();
}

async function reveal(messageId) {
  const found = await revealMessage(list, messageId, { hasMore: () => state.hasMore, loadEarlier });
  if (found) markFound(list, messageId);
  return found;
}

function openThread(rootKey, opener) {
  thread.open(rootKey, opener, list.get(rootKey)).catch((error) => note(error.message));
}

function markRead(message) {
  if (message.seq <= state.lastMarked) return;
  if (socket.send({ type: "mark_read", channelId, messageId: message.seq })) {
    state.lastMarked = message.seq;
    state.unread.set(channelId, 0);
    notifier.channelRead(channelId, message.seq);
    renderSidebar();
  }
}

// --- sending -------------------------------------------------------------------

function send(content, file) {
  const clientId = newClientId();
  const fields = fileFields(content, file);
  list.addPending(clientId, { ...fields, file });
  socket.sendTracked(clientId, { type: "send_message", channelId, ...fields });
}

// The list holding a pending message: the channel's, or the thread panel's.
function pendingIn(clientId) {
  return [list, thread.list].find((candidate) => candidate.pending.has(clientId)) || null;
}

function retry(clientId) {
  const into = pendingIn(clientId);
  if (!into) return;
  const { content, replyTo, file } = into.pending.get(clientId).message;
  into.setPendingStatus(clientId, "sending");
  const fields = fileFields(content, file);
  socket.sendTracked(clientId, replyTo ? { type: "send_message", channelId, ...fields, replyTo } : { type: "send_message", channelId, ...fields });
}

function failed(clientId, error) {
  let reason = error.message || gettext("Something went wrong.");
  if (error.code === "rate_limited" && error.retryAfter) reason = interpolate(gettext("Too many messages; try again in %(seconds)s s."), { seconds: error.retryAfter }, true);
  pendingIn(clientId)?.setPendingStatus(clientId, "failed", reason);
}

// Up in an empty composer edits your newest message there.
function editLastOnArrowUp(textarea, into) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" || textarea.value || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    const mine = [...into.items.values()].map((item) => item.message).filter((m) => actions.canEdit(m));
    if (!mine.length) return;
    event.preventDefault();
    actions.startEdit(into, mine.reduce((a, b) => (b.seq > a.seq ? b : a)).key);
  });
}

// --- socket events -------------------------------------------------------------

function joinAll() {
  const reconnect = state.joinedOnce;
  state.joinedOnce = true;
  state.joined.clear();
  joinOthers();
  if (channelId) {
    state.joined.add(channelId);
    joinCurrent();
  }
  if (reconnect) {
    // Read pointers and other channels' counts moved while we were away.
    refreshChannels().catch(() => {});
    loadPins().catch(() => {});
  }
}

// With afterId (messages) and changesAfter (edits, deletes, reactions, ...)
// from what this page already holds.
function joinCurrent() {
  const newest = list.newest();
  state.joinUsedAfter = Boolean(newest);
  const join = { type: "join_channel", channelId };
  if (newest) join.afterId = newest.seq;
  if (changes.last !== null) join.changesAfter = changes.last;
  socket.send(join);
}

// Every other channel, without catch-up: for live unread counts and presence.
function joinOthers() {
  for (const channel of state.channels) {
    if (channel.id === channelId || state.joined.has(channel.id)) continue;
    if (socket.send({ type: "join_channel", channelId: channel.id })) state.joined.add(channel.id);
  }
}

async function handle(event) {
  switch (event.type) {
    case "joined_channel":
      presence.snapshot(event.channelId, event.online);
      if (event.channelId !== channelId) return;
      addMessages(event.missed || []);
      // The changes before the HTTP catch-up: events handled while it is
      // awaited are newer than they are.
      if (changes.caughtUp(event) === "more") {
        joinCurrent(); // the next page of changes
        return;
      }
      if (!state.joinUsedAfter || event.hasMore) await catchUpOverHttp();
      if (!state.refreshedAfterJoin) {
        state.refreshedAfterJoin = true;
        await refreshNewestPage();
      }
      // Joined and caught up: live events flow from here (tests wait for it).
      log.dataset.live = "true";
      list.reportSeen();
      return;
    case "new_message": {
      const m = event.message;
      if (event.channelId === channelId) {
        addMessages([m]);
        typing.hide(m.authorId);
      }
      // Unread here too while the tab is hidden (nobody sees it: not marked read).
      if (m.authorId !== me.id && (event.channelId !== channelId || document.hidden)) {
        state.unread.set(event.channelId, (state.unread.get(event.channelId) || 0) + 1);
        renderSidebar();
      }
      return;
    }
    case "message_deleted":
      notifier.removed(event.channelId, event.messageId);
    // falls through
    case "message_updated":
    case "reaction_updated":
    case "thread_updated":
    case "message_pinned":
    case "message_unpinned":
      if (event.channelId === channelId) changes.live(event);
      return;
    case "user_typing":
      if (event.channelId === channelId && event.userId !== me.id) {
        typing.show(event.userId, event.displayName || event.username);
      }
      return;
    case "user_stop_typing":
      if (event.channelId === channelId) typing.hide(event.userId);
      return;
    case "message_read":
      if (event.userId === me.id && event.channelId !== channelId) {
        notifier.channelRead(event.channelId, event.messageId); // read in another tab of ours
        notifier.refreshCounts();
      }
      if (event.channelId === channelId) {
        movePointer(event.userId, event.messageId);
        if (event.userId === me.id) state.lastMarked = Math.max(state.lastMarked, event.messageId);
        list.refreshStatuses();
      }
      return;
    case "user_presence":
      presence.update(event);
      return;
    case "notification":
      notifier.notify(event);
      return;
    case "removed_from_channel":
      state.joined.delete(event.channelId);
      presence.forget(event.channelId);
      if (event.channelId === channelId) {
        $("composer").disabled = true;
        $("attach-input").disabled = true;
        note(gettext("You no longer have access to this channel."));
      }
      return;
    case "error":
      if (typeof event.requestId === "string" && event.requestId.startsWith("send:")) return;
      if (actions.failed(event)) return;
      note(event.message || gettext("Something went wrong."));
      return;
    default:
  }
}

// The first join: the newest page was read over HTTP before the socket was
// subscribed, so an edit, delete or reaction made in between was never
// heard. Read that page again now that changes arrive live.
async function refreshNewestPage() {
  const fresh = await api.get(`/api/channels/${channelId}/messages/?limit=50`);
  if (!fresh.results.length) return;
  const kept = new Set(fresh.results.map((m) => String(m.id)));
  const low = fresh.results[0].id;
  const high = fresh.results[fresh.results.length - 1].id;
  for (const [key, { message }] of [...list.items]) {
    if (message.seq >= low && message.seq <= high && !kept.has(key)) list.remove(key); // deleted meanwhile
  }
  addMessages(fresh.results);
}

// Everything after the newest message we hold, over HTTP: the first load, or
// a catch-up longer than one joined_channel page.
async function catchUpOverHttp() {
  for (let round = 0; round < 50; round += 1) {
    const newest = list.newest();
    const query = newest ? `?after=${newest.seq}&limit=100` : "?limit=50";
    const page = await api.get(`/api/channels/${channelId}/messages/${query}`);
    addMessages(page.results);
    if (!newest) {
      setHasMore(page.hasMore);
      return;
    }
    if (!page.hasMore || page.results.length === 0) return;
  }
}

function note(text) {
  const node = $("composer-note");
  node.textContent = text;
  node.hidden = !text;
}

// --- pins, history ------------------------------------------------------------

async function loadPins() {
  if (!channelId) return;
  const pins = await api.get(`/api/channels/${channelId}/pins/`);
  $("pins").hidden = pins.length === 0;
  $("pin-count").textContent = String(pins.length);
  $("pin-list").replaceChildren(
    ...pins.map((m) =>
      el("li", { class: "pin" }, el("span", { class: "author", text: m.authorDisplayName || m.authorUsername }), ": ", el("span", { class: "pin-text", dir: "auto", text: m.content })),
    ),
  );
}

function setHasMore(hasMore) {
  state.hasMore = hasMore;
  $("load-earlier").hidden = !hasMore;
}

async function loadEarlier() {
  const oldest = list.oldest();
  if (!oldest) return;
  const before = log.scrollHeight - log.scrollTop;
  const page = await api.get(`/api/channels/${channelId}/messages/?before=${oldest.seq}&limit=50`);
  addMessages(page.results);
  log.scrollTop = log.scrollHeight - before;
  setHasMore(page.hasMore);
}

async function refreshChannels() {
  const channels = await api.get(`/api/workspaces/${workspaceId}/channels/`);
  state.channels = channels;
  notifier.applyCounts(channels);
  renderSidebar();
  joinOthers(); // channels and DMs created while we were away
  if (channelId) {
    // Pointers that moved while we were away: readBy of the newest page.
    const page = await api.get(`/api/channels/${channelId}/messages/?limit=50`);
    addMessages(page.results);
  }
}

// --- start ---------------------------------------------------------------------

async function start() {
  wireLogout();
  const [workspace, channels] = await Promise.all([api.get(`/api/workspaces/${workspaceId}/`), api.get(`/api/workspaces/${workspaceId}/channels/`)]);
  state.workspace = workspace;
  for (const member of workspace.members) state.members.set(member.user.id, member);
  state.channels = channels;
  notifier.applyCounts(channels);
  $("workspace-name").textContent = workspace.name;
  renderSidebar();
  sidebar.renderHeader({ setTitle: (title) => notifier.setBaseTitle(title) });
  notifier.start().catch(() => {});
  new Search({ workspaceId, channelId, channels: () => state.channels, label: (c) => sidebar.channelLabel(c), openHere: channelId ? (id) => reveal(id) : null });
  $("load-earlier").addEventListener("click", () => loadEarlier().catch((e) => note(e.message)));
  if (!channelId) {
    $("composer").disabled = true;
    $("attach-input").disabled = true;
    return;
  }
  wireComposer({
    form: $("composer-form"),
    textarea: $("composer"),
    attachment: new ComposerAttachment({ form: $("composer-form"), textarea: $("composer"), target: { channelId } }),
    onSend: (content, file) => send(content, file),
    onTyping: () => socket.send({ type: "typing", channelId }),
    onStopTyping: () => socket.send({ type: "stop_typing", channelId }),
  });
  editLastOnArrowUp($("composer"), list);
  editLastOnArrowUp(thread.textarea, thread.list);
  try {
    const first = await api.get(`/api/channels/${channelId}/messages/?limit=50`);
    addMessages(first.results);
    setHasMore(first.hasMore);
    list.scrollToBottom();
    if (messageInHash() !== null) await reveal(messageInHash()); // opened from a notification
  } catch (error) {
    note(errorText(error.body) || error.message);
  }
  loadPins().catch(() => {});
  socket.start();
}

start().catch((error) => note(error.message || gettext("Could not load this workspace.")));
