// Presence, mention counts and notifications of the workspace chat page
// (PROTOCOL.md part 2, "Presence snapshot, mentions and notifications"):
// - Presence: who is online, from the `online` snapshot of every
//   joined_channel, kept current by user_presence. Kept per channel, so that
//   someone in several channels stays online until they left the last one.
//   In channels of more than CHAT_PRESENCE_MAX_MEMBERS members the server
//   announces no single joins and leaves: there the snapshot at our join is
//   all we know until the next join (a reconnect).
// - Notifier: the unread total in the tab title, mention counts for the
//   sidebar, the "Notifications" bell and its panel, desktop notifications
//   (asked for only from the panel's button, never on load), and the open
//   channel's "Notification level" select.

import { api, el, errorText, formatRelative, formatTime } from "./util.js";

const $ = (id) => document.getElementById(id);

const KIND_TEXT = { mention: gettext("mentioned you"), dm: gettext("sent you a message"), reply: gettext("replied in a thread"), message: gettext("posted") };
const LEVEL_TEXT = { all: gettext("All messages"), mentions: gettext("Mentions and DMs"), none: gettext("Nothing") };
const DESKTOP_TEXT = {
  granted: gettext("Desktop notifications are on."),
  denied: gettext("Desktop notifications are blocked in this browser's site settings."),
  unsupported: gettext("This browser cannot show desktop notifications."),
  default: "",
};

export class Presence {
  // connected(): whether our own socket is up (we are online when it is).
  constructor({ me, connected, onChange }) {
    this.me = me;
    this.connected = connected;
    this.onChange = onChange;
    this.channels = new Map(); // channelId -> Set(userId online there)
  }

  snapshot(channelId, online) {
    if (!Array.isArray(online)) return;
    this.channels.set(channelId, new Set(online));
    this.onChange();
  }

  update({ channelId, userId, status }) {
    if (!this.channels.has(channelId)) this.channels.set(channelId, new Set());
    if (status === "online") this.channels.get(channelId).add(userId);
    else this.channels.get(channelId).delete(userId);
    this.onChange();
  }

  forget(channelId) {
    this.channels.delete(channelId);
    this.onChange();
  }

  // Disconnected: nothing we knew still holds; the joins after the reconnect
  // bring fresh snapshots.
  clear() {
    this.channels.clear();
  }

  isOnline(userId) {
    if (userId === this.me.id) return this.connected();
    for (const users of this.channels.values()) if (users.has(userId)) return true;
    return false;
  }
}

// The channel page at a message: /workspaces/{w}/channels/{c}/#message-{id}.
export function messageUrl(workspaceId, channelId, messageId) {
  return `/workspaces/${workspaceId}/channels/${channelId}/#message-${messageId}`;
}

export function messageInHash() {
  const match = /^#message-(\d+)$/.exec(window.location.hash);
  return match ? Number(match[1]) : null;
}

// Focuses a message of `list`, loading earlier pages until it is there;
// false when it is not in the channel (any more).
export async function revealMessage(list, messageId, { hasMore, loadEarlier }) {
  for (let round = 0; round < 20; round += 1) {
    if (list.focusMessage(String(messageId))) return true;
    const oldest = list.oldest();
    if (!oldest || oldest.seq < messageId || !hasMore()) return false;
    await loadEarlier();
  }
  return false;
}

export class Notifier {
  // state: the page's {channels, unread, mentions}; sidebar: channel labels;
  // readUpTo(channelId): the newest id the page marked read there;
  // openHere(messageId): shows a message of the open channel;
  // onUnknownChannel(): a notification named a channel of this workspace
  // the page does not list yet (a new DM); onCounts(): counts changed.
  constructor({ state, workspaceId, channelId, sidebar, readUpTo, openHere, onUnknownChannel, onCounts, note }) {
    Object.assign(this, { state, workspaceId, channelId, sidebar, readUpTo, openHere, onUnknownChannel, onCounts, note });
    this.items = []; // newest first: {id, kind, workspaceId, channelId, message, createdAt, read}
    this.hasMore = false;
    this.baseTitle = document.title;
    this.bell = $("bell-button");
    this.panel = $("bell-panel");
    this.list = $("bell-list");
    this.count = $("bell-count");
    this.error = $("bell-error");
    this.desktopButton = $("desktop-enable");
    this.desktopStatus = $("desktop-status");
    this.countsTimer = null;
    this.wire();
    this.level = channelId ? new LevelMenu({ select: $("notify-level"), status: $("notify-level-status"), channelId, note }) : null;
  }

  wire() {
    this.bell.addEventListener("click", () => (this.panel.hidden ? this.openPanel() : this.closePanel()));
    const escape = (event) => {
      if (event.key !== "Escape" || this.panel.hidden || event.defaultPrevented) return;
      event.preventDefault();
      this.closePanel();
    };
    this.bell.addEventListener("keydown", escape);
    this.panel.addEventListener("keydown", escape);
    document.addEventListener("click", (event) => {
      if (!this.panel.hidden && !this.panel.contains(event.target) && !this.bell.contains(event.target)) this.closePanel({ focus: false });
    });
    // One delegated listener: the list is rebuilt on every change.
    this.list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-message-id]");
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      const item = this.items.find((i) => String(i.message.id) === link.dataset.messageId);
      if (!item) return;
      event.preventDefault();
      this.open(item);
    });
    $("bell-read-all").addEventListener("click", () => this.readAll());
    this.desktopButton.addEventListener("click", () => this.askDesktop());
    this.renderDesktop();
  }

  async start() {
    this.renderBell();
    await Promise.all([this.load(), this.level ? this.level.load() : null]);
  }

  async load() {
    try {
      const page = await api.get("/api/notifications/");
      // What this page read while the answer was on its way is read.
      const upTo = this.readUpTo(this.channelId);
      this.items = page.results.map((item) => (item.channelId === this.channelId && item.message.id <= upTo ? { ...item, read: true } : item));
      this.hasMore = Boolean(page.hasMore);
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message || gettext("Could not load notifications.");
    }
    this.renderBell();
  }

  // --- counts and title ---------------------------------------------------------

  applyCounts(channels) {
    for (const channel of channels) {
      this.state.unread.set(channel.id, channel.unreadCount || 0);
      this.state.mentions.set(channel.id, channel.mentionCount || 0);
    }
  }

  // Another tab of ours read a channel: its counts, once things settle.
  refreshCounts() {
    clearTimeout(this.countsTimer);
    this.countsTimer = setTimeout(async () => {
      try {
        this.applyCounts(await api.get(`/api/workspaces/${this.workspaceId}/channels/`));
        this.onCounts();
      } catch {
        // The next change or reconnect brings them.
      }
    }, 300);
  }

  setBaseTitle(title) {
    this.baseTitle = title;
    this.renderTitle();
  }

  renderTitle() {
    let total = 0;
    for (const channel of this.state.channels) total += this.state.unread.get(channel.id) || 0;
    const title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
    if (document.title !== title) document.title = title;
  }

  // A channel was read up to `upTo` (here or in another tab of ours): the
  // server read its notifications too.
  channelRead(channelId, upTo) {
    this.state.mentions.set(channelId, 0);
    let changed = false;
    for (const item of this.items) {
      if (!item.read && item.channelId === channelId && item.message.id <= upTo) {
        item.read = true;
        changed = true;
      }
    }
    if (changed) this.renderBell();
  }

  // --- live notifications ---------------------------------------------------------

  notify(event) {
    const message = event.message;
    const here = event.channelId === this.channelId;
    const item = { id: event.id ?? null, kind: event.kind, workspaceId: event.workspaceId, channelId: event.channelId, message, createdAt: message.createdAt, read: here && message.id <= this.readUpTo(event.channelId) };
    if (!this.items.some((i) => i.channelId === item.channelId && i.message.id === message.id)) this.items.unshift(item);
    if (event.workspaceId === this.workspaceId) {
      if (!this.state.channels.some((c) => c.id === event.channelId)) this.onUnknownChannel();
      else if (event.kind === "mention" && !here) {
        this.state.mentions.set(event.channelId, (this.state.mentions.get(event.channelId) || 0) + 1);
        this.onCounts();
      }
    }
    this.renderBell();
    if (document.hidden || !here) this.showDesktop(item);
  }

  // A deleted message: the server dropped its notification (and mention).
  removed(channelId, messageId) {
    const kept = this.items.filter((i) => !(i.channelId === channelId && i.message.id === messageId));
    if (kept.length === this.items.length) return;
    this.items = kept;
    this.renderBell();
    if (channelId !== this.channelId) this.refreshCounts();
  }

  describe(item) {
    const message = item.message;
    const sender = message.authorDisplayName || message.authorUsername || gettext("Someone");
    const channel = item.workspaceId === this.workspaceId ? this.state.channels.find((c) => c.id === item.channelId) : null;
    let where = gettext("in another workspace");
    if (channel) where = channel.kind === "dm" ? "" : interpolate(gettext("in #%(channel)s"), { channel: this.sidebar.channelLabel(channel) }, true);
    else if (item.workspaceId === this.workspaceId) where = gettext("in a channel");
    return { sender, action: [KIND_TEXT[item.kind] || gettext("posted"), where].filter(Boolean).join(" ") };
  }

  async open(item) {
    item.read = true;
    this.renderBell();
    const body = item.id !== null && item.id !== undefined ? { ids: [item.id] } : { channelId: item.channelId };
    try {
      await api.post("/api/notifications/read/", body);
    } catch {
      // Opening the channel reads it (mark_read) anyway.
    }
    if (item.channelId === this.channelId && (await this.openHere(item.message.id))) {
      this.closePanel({ focus: false });
      return;
    }
    window.location.assign(messageUrl(item.workspaceId, item.channelId, item.message.id));
  }

  async readAll() {
    await this.load(); // live items carry no id; the list from the server does
    const ids = this.items.filter((i) => !i.read && i.id !== null && i.id !== undefined).map((i) => i.id);
    if (!ids.length) return;
    try {
      await api.post("/api/notifications/read/", { ids });
      for (const item of this.items) item.read = true;
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message;
    }
    this.renderBell();
  }

  // --- the bell and its panel ---------------------------------------------------

  openPanel() {
    this.panel.hidden = false;
    this.bell.setAttribute("aria-expanded", "true");
    this.renderDesktop();
    this.panel.querySelector("h2").focus();
    this.load();
  }

  closePanel({ focus = true } = {}) {
    this.panel.hidden = true;
    this.bell.setAttribute("aria-expanded", "false");
    if (focus) this.bell.focus();
  }

  renderBell() {
    const unread = this.items.filter((i) => !i.read).length;
    const more = this.hasMore && this.items.length > 0 && !this.items[this.items.length - 1].read ? "+" : "";
    const shown = unread > 99 ? "99+" : `${unread}${more}`;
    this.count.replaceChildren(...(unread ? [shown, el("span", { class: "visually-hidden", text: ` ${gettext("unread notifications")}` })] : []));
    this.list.replaceChildren(...(this.items.length ? this.items.map((item) => this.itemNode(item)) : [el("li", { class: "bell-empty muted", text: gettext("No notifications yet.") })]));
  }

  itemNode(item) {
    const { sender, action } = this.describe(item);
    const href = messageUrl(item.workspaceId, item.channelId, item.message.id);
    return el(
      "li",
      {},
      el(
        "a",
        { href, class: item.read ? "bell-item" : "bell-item bell-unread", dataset: { messageId: String(item.message.id) } },
        el("span", { class: "bell-line" }, item.read ? null : el("span", { class: "visually-hidden", text: gettext("Unread: ") }), el("strong", { text: sender }), ` ${action}`),
        el("span", { class: "bell-text", dir: "auto", text: item.message.content }),
        el("time", { class: "bell-time", datetime: item.createdAt, title: formatRelative(item.createdAt), text: formatTime(item.createdAt) }),
      ),
    );
  }

  // --- desktop notifications ----------------------------------------------------

  permission() {
    return "Notification" in window ? window.Notification.permission : "unsupported";
  }

  renderDesktop() {
    const permission = this.permission();
    this.desktopButton.hidden = permission !== "default";
    this.desktopStatus.textContent = DESKTOP_TEXT[permission] || "";
  }

  async askDesktop() {
    try {
      await window.Notification.requestPermission();
    } catch {
      // Refused or unsupported: the status line says so.
    }
    this.renderDesktop();
    if (this.desktopButton.hidden) this.panel.querySelector("h2").focus();
  }

  showDesktop(item) {
    if (this.permission() !== "granted") return;
    const { sender, action } = this.describe(item);
    const content = item.message.content || "";
    try {
      const shown = new window.Notification(`${sender} ${action}`, {
        body: content.length > 160 ? `${content.slice(0, 159)}…` : content,
        tag: `chat-message-${item.message.id}`, // one per message, however many tabs are open
        icon: "/static/img/logo.svg",
      });
      shown.addEventListener("click", () => {
        window.focus();
        shown.close();
        this.open(item);
      });
    } catch {
      // Some browsers show them only from a service worker: the bell still has it.
    }
  }
}

// The open channel's "Notification level": GET and PUT
// /api/channels/{id}/notifications/ ({level}: all, mentions, none).
class LevelMenu {
  constructor({ select, status, channelId, note }) {
    Object.assign(this, { select, status, note });
    this.path = `/api/channels/${channelId}/notifications/`;
    this.saved = select.value;
    select.closest("[data-level-field]").hidden = false;
    select.addEventListener("change", () => this.save());
  }

  async load() {
    try {
      const { level } = await api.get(this.path);
      this.select.value = this.saved = level;
    } catch {
      this.select.closest("[data-level-field]").hidden = true;
    }
  }

  async save() {
    const level = this.select.value;
    try {
      const answer = await api.put(this.path, { level });
      this.select.value = this.saved = answer.level;
      this.status.textContent = interpolate(gettext("Notification level: %(level)s."), { level: LEVEL_TEXT[answer.level] || answer.level }, true);
    } catch (error) {
      this.select.value = this.saved;
      this.note(errorText(error.body) || error.message || gettext("Could not change the notification level."));
    }
  }
}
