// The workspace sidebar: channels and DMs with unread and mention counts and
// presence dots, and the member list (a button per member opens a DM); and
// the conversation header's title and subtitle. Patched in
// place, never rebuilt: presence and unread changes arrive while someone is
// clicking a link here (util.js, updateChildren).
//
// For admins and teachers (PROTOCOL.md part 2, safeguarding) it also shows
// the workspace's "Settings" link, a "Mute {name}" button on each student
// (MuteDialog: 10 minutes, 1 hour or 1 day), and, on a private channel, the
// "Members" button opening the "Channel members" panel (ChannelMembersPanel;
// everyone sees the list, managers add and remove).

import { api, el, errorText, formatDateTime, icon, updateChildren } from "./util.js";

const $ = (id) => document.getElementById(id);

export class Sidebar {
  // state: the page's {channels, members, unread, mentions}; isOnline(userId); note(text).
  constructor({ state, me, workspaceId, channelId, isOnline, note }) {
    this.state = state;
    this.me = me;
    this.workspaceId = workspaceId;
    this.channelId = channelId;
    this.isOnline = isOnline;
    this.note = note;
    // One delegated listener: the member buttons are patched in place and
    // carry no listeners of their own.
    $("member-list").addEventListener("click", (event) => {
      const mute = event.target.closest("button[data-mute-id]");
      if (mute && !mute.disabled) {
        const userId = Number(mute.dataset.muteId);
        this.mute.open(userId, this.displayName(userId), mute);
        return;
      }
      const button = event.target.closest("button[data-user-id]");
      if (button && !button.disabled) this.openDm(Number(button.dataset.userId), button);
    });
    this.mute = new MuteDialog({ dialog: $("mute-dialog"), workspaceId, note });
    this.membersPanel = new ChannelMembersPanel({ sidebar: this, panel: $("members-panel"), opener: $("members-button"), layout: document.querySelector(".chat-layout") });
  }

  isStaff() {
    const role = this.state.workspace && this.state.workspace.role;
    return role === "admin" || role === "teacher";
  }

  currentChannel() {
    return this.state.channels.find((c) => c.id === this.channelId) || null;
  }

  displayName(userId) {
    const member = this.state.members.get(userId);
    return member ? member.user.displayName || member.user.username : gettext("Someone");
  }

  dmPartner(channel) {
    const ids = channel.memberIds || [];
    return ids.find((id) => id !== this.me.id) ?? this.me.id;
  }

  channelLabel(channel) {
    if (channel.kind === "dm") return this.displayName(this.dmPartner(channel));
    return channel.name;
  }

  // The conversation header: title, subtitle, and a read-only composer in an
  // announcement channel for students. setTitle(text): the page's title.
  renderHeader({ setTitle }) {
    const channel = this.currentChannel();
    if (!channel) {
      $("channel-title").textContent = gettext("No channels yet");
      setTitle(`${this.state.workspace ? this.state.workspace.name : gettext("Workspace")} · ${gettext("Chat")}`);
      return;
    }
    const label = this.channelLabel(channel);
    const title = $("channel-title");
    if (channel.kind === "announcement") title.replaceChildren(icon("megaphone"), ` ${label}`);
    else title.textContent = channel.kind === "dm" ? label : `# ${label}`;
    setTitle(`${channel.kind === "dm" ? label : `#${label}`} · ${this.state.workspace.name} · ${gettext("Chat")}`);
    let subtitle = "";
    if (channel.kind === "dm") subtitle = interpolate(gettext("Direct message with %(name)s"), { name: label }, true);
    else if (channel.kind === "announcement") subtitle = gettext("Announcements: only teachers and admins post here.");
    else if (channel.isPrivate) subtitle = gettext("Private channel");
    $("channel-subtitle").textContent = subtitle;
    const readOnly = channel.kind === "announcement" && !this.isStaff();
    $("composer").disabled = readOnly;
    $("composer-form").querySelector("button").disabled = readOnly;
    if (readOnly) this.note(gettext("Only teachers and admins can post in announcement channels."));
  }

  dot(userId) {
    const online = this.isOnline(userId);
    return el("span", { class: online ? "dot dot-online" : "dot", role: "img", "aria-label": online ? gettext("online") : gettext("offline"), title: online ? gettext("Online") : gettext("Offline") });
  }

  unreadBadge(channel) {
    const count = channel.id === this.channelId ? 0 : this.state.unread.get(channel.id) || 0;
    if (!count) return null;
    return el("span", { class: "unread", "aria-label": `${count} unread`, text: count > 99 ? "99+" : String(count) });
  }

  // Unread messages that mention me: "@2", told apart from the unread count
  // by its look and its name ("2 mentions").
  mentionBadge(channel) {
    const count = channel.id === this.channelId ? 0 : this.state.mentions.get(channel.id) || 0;
    if (!count) return null;
    return el("span", { class: "mentions", "aria-label": interpolate(ngettext("%(count)s mention", "%(count)s mentions", count), { count }, true), text: `@${count > 99 ? "99+" : count}` });
  }

  channelLink(channel) {
    const current = channel.id === this.channelId;
    let prefix;
    if (channel.kind === "dm") prefix = this.dot(this.dmPartner(channel));
    else if (channel.kind === "announcement") prefix = el("span", { class: "hash" }, icon("megaphone", "announcements:"));
    else prefix = el("span", { class: "hash", "aria-hidden": "true", text: "#" });
    const link = el(
      "a",
      {
        href: `/workspaces/${this.workspaceId}/channels/${channel.id}/`,
        class: current ? "nav-item active" : "nav-item",
        "aria-current": current ? "page" : null,
        dataset: { channelId: String(channel.id) },
      },
      prefix,
      el("span", { class: "nav-label", text: this.channelLabel(channel) }),
      this.mentionBadge(channel),
      this.unreadBadge(channel),
    );
    return el("li", {}, link);
  }

  render() {
    $("settings-link").hidden = !this.isStaff();
    const current = this.currentChannel();
    $("members-button").hidden = !(current && current.isPrivate && current.kind !== "dm");
    const channels = this.state.channels.filter((c) => c.kind !== "dm");
    const dms = this.state.channels.filter((c) => c.kind === "dm");
    updateChildren($("channel-list"), channels.map((c) => this.channelLink(c)));
    updateChildren($("dm-list"), dms.length ? dms.map((c) => this.channelLink(c)) : [el("li", { class: "muted small", text: gettext("None yet") })]);
    const members = [...this.state.members.values()].sort((a, b) => (a.user.displayName || a.user.username).localeCompare(b.user.displayName || b.user.username));
    updateChildren(
      $("member-list"),
      members.map(({ user, role }) => {
        const name = user.displayName || user.username;
        if (user.id === this.me.id) {
          return el("li", {}, el("span", { class: "nav-item member" }, this.dot(user.id), el("span", { class: "nav-label", text: interpolate(gettext("%(name)s (you)"), { name }, true) }), el("span", { class: "role", text: ({ admin: gettext("admin"), teacher: gettext("teacher"), student: gettext("student") })[role] || role })));
        }
        const button = el(
          "button",
          // Named by its content ("Direct message Bob S online student"), not
          // an aria-label that would not hold the visible text (axe's
          // label-content-name-mismatch); the dot is drawn first by CSS order.
          { type: "button", class: "nav-item member", dataset: { userId: String(user.id) } },
          el("span", { class: "visually-hidden", text: `${gettext("Direct message")} ` }),
          el("span", { class: "nav-label", text: name }),
          this.dot(user.id),
          el("span", { class: "role", text: ({ admin: gettext("admin"), teacher: gettext("teacher"), student: gettext("student") })[role] || role }),
        );
        const mute =
          this.isStaff() && role === "student"
            ? el("button", { type: "button", class: "member-mute", title: interpolate(gettext("Mute %(name)s"), { name }, true), dataset: { muteId: String(user.id) } }, gettext("Mute"), el("span", { class: "visually-hidden", text: ` ${name}` }))
            : null;
        return el("li", { class: "member-row" }, button, mute);
      }),
    );
  }

  async openDm(userId, button) {
    button.disabled = true;
    try {
      const dm = await api.post(`/api/workspaces/${this.workspaceId}/dms/`, { userId });
      window.location.assign(`/workspaces/${this.workspaceId}/channels/${dm.id}/`);
    } catch (error) {
      this.note(error.message);
      button.disabled = false;
    }
  }
}

// "Mute {name}": how long (10 minutes, 1 hour, 1 day), then
// POST /api/workspaces/{id}/mutes/; the page's note says until when.
class MuteDialog {
  constructor({ dialog, workspaceId, note }) {
    this.dialog = dialog;
    this.workspaceId = workspaceId;
    this.note = note;
    this.error = dialog.querySelector("[data-error]");
    this.target = null;
    dialog.querySelector("form").addEventListener("submit", (event) => this.submit(event));
    dialog.addEventListener("close", () => {
      if (this.target && this.target.opener.isConnected) this.target.opener.focus();
      this.target = null;
    });
  }

  open(userId, name, opener) {
    this.target = { userId, name, opener };
    this.dialog.querySelector("#mute-title").textContent = interpolate(gettext("Mute %(name)s"), { name }, true);
    this.dialog.querySelector("#mute-text").textContent = interpolate(gettext("While muted, %(name)s cannot send, edit or react in this workspace."), { name }, true);
    const first = this.dialog.querySelector('input[name="minutes"]');
    first.checked = true;
    this.error.textContent = "";
    this.dialog.showModal();
    first.focus();
  }

  async submit(event) {
    if (event.submitter && event.submitter.value === "cancel") return; // method=dialog closes it
    event.preventDefault();
    const target = this.target;
    if (!target) return;
    const choice = this.dialog.querySelector('input[name="minutes"]:checked');
    const button = event.submitter || this.dialog.querySelector('button[value="mute"]');
    button.disabled = true;
    try {
      const mute = await api.post(`/api/workspaces/${this.workspaceId}/mutes/`, { userId: target.userId, minutes: Number(choice.value) });
      const until = formatDateTime(mute.until);
      this.dialog.close();
      this.note(interpolate(gettext("%(name)s is muted until %(until)s."), { name: target.name, until }, true));
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message || gettext("Could not mute.");
    } finally {
      button.disabled = false;
    }
  }
}

// The "Channel members" panel of a private channel: its members (GET
// /api/channels/{id}/members/), "Remove" and "Add member" for admins and
// teachers (the server also lets the channel's creator; it decides).
class ChannelMembersPanel {
  constructor({ sidebar, panel, opener, layout }) {
    this.sidebar = sidebar;
    this.layout = layout;
    this.panel = panel;
    this.opener = opener;
    this.list = panel.querySelector("[data-members-list]");
    this.form = panel.querySelector("[data-members-add]");
    this.select = this.form.querySelector("select");
    this.error = panel.querySelector("[data-members-error]");
    this.status = panel.querySelector("[data-members-status]");
    opener.addEventListener("click", () => (panel.hidden ? this.open() : this.close()));
    panel.querySelector("[data-members-close]").addEventListener("click", () => this.close());
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        this.close();
      }
    });
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-remove-id]");
      if (button && !button.disabled) this.remove(Number(button.dataset.removeId), button);
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
  }

  get path() {
    return `/api/channels/${this.sidebar.channelId}/members/`;
  }

  async open() {
    this.panel.hidden = false;
    this.layout.classList.add("members-open");
    this.opener.setAttribute("aria-expanded", "true");
    this.error.textContent = "";
    this.status.textContent = "";
    this.panel.querySelector("h2").focus();
    await this.load();
  }

  close() {
    this.panel.hidden = true;
    this.layout.classList.remove("members-open");
    this.opener.setAttribute("aria-expanded", "false");
    this.opener.focus();
  }

  async load() {
    try {
      this.render(await api.get(this.path));
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message;
    }
  }

  render(members) {
    const manage = this.sidebar.isStaff();
    const me = this.sidebar.me.id;
    const inside = new Set(members.map((m) => m.user.id));
    this.list.replaceChildren(
      ...members.map(({ user, role }) => {
        const name = user.displayName || user.username;
        const remove =
          manage && user.id !== me
            ? el("button", { type: "button", class: "button-small button-danger-quiet", dataset: { removeId: String(user.id) } }, gettext("Remove"), el("span", { class: "visually-hidden", text: ` ${name}` }))
            : null;
        return el("li", { class: "members-panel-item" }, el("span", { class: "nav-label", text: user.id === me ? `${name} (you)` : name }), el("span", { class: "role", text: role }), remove);
      }),
    );
    const others = [...this.sidebar.state.members.values()].filter((m) => !inside.has(m.user.id));
    others.sort((a, b) => (a.user.displayName || a.user.username).localeCompare(b.user.displayName || b.user.username));
    this.select.replaceChildren(...others.map(({ user, role }) => el("option", { value: String(user.id), text: `${user.displayName || user.username} (${({ admin: gettext("admin"), teacher: gettext("teacher"), student: gettext("student") })[role] || role})` })));
    this.form.hidden = !manage || others.length === 0;
  }

  async add() {
    const userId = Number(this.select.value);
    if (!userId) return;
    const name = this.sidebar.displayName(userId);
    this.error.textContent = "";
    try {
      await api.post(this.path, { userId });
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message;
      return;
    }
    await this.load();
    this.status.textContent = interpolate(gettext("%(name)s was added to the channel."), { name }, true);
    (this.form.hidden ? this.panel.querySelector("h2") : this.select).focus();
  }

  async remove(userId, button) {
    const name = this.sidebar.displayName(userId);
    button.disabled = true;
    this.error.textContent = "";
    try {
      await api.delete(`${this.path}${userId}/`);
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message;
      button.disabled = false;
      return;
    }
    await this.load();
    this.status.textContent = interpolate(gettext("%(name)s was removed from the channel."), { name }, true);
    this.panel.querySelector("h2").focus();
  }
}
