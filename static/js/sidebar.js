// The workspace sidebar: channels and DMs with unread counts and presence
// dots, and the member list (a button per member opens a DM). Patched in
// place, never rebuilt: presence and unread changes arrive while someone is
// clicking a link here (util.js, updateChildren).

import { api, el, icon, updateChildren } from "./util.js";

const $ = (id) => document.getElementById(id);

export class Sidebar {
  // state: the page's {channels, members, unread}; isOnline(userId); note(text).
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
      const button = event.target.closest("button[data-user-id]");
      if (button && !button.disabled) this.openDm(Number(button.dataset.userId), button);
    });
  }

  displayName(userId) {
    const member = this.state.members.get(userId);
    return member ? member.user.displayName || member.user.username : "Someone";
  }

  dmPartner(channel) {
    const ids = channel.memberIds || [];
    return ids.find((id) => id !== this.me.id) ?? this.me.id;
  }

  channelLabel(channel) {
    if (channel.kind === "dm") return this.displayName(this.dmPartner(channel));
    return channel.name;
  }

  dot(userId) {
    const online = this.isOnline(userId);
    return el("span", { class: online ? "dot dot-online" : "dot", role: "img", "aria-label": online ? "online" : "offline", title: online ? "Online" : "Offline" });
  }

  unreadBadge(channel) {
    const count = channel.id === this.channelId ? 0 : this.state.unread.get(channel.id) || 0;
    if (!count) return null;
    return el("span", { class: "unread", "aria-label": `${count} unread`, text: count > 99 ? "99+" : String(count) });
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
      this.unreadBadge(channel),
    );
    return el("li", {}, link);
  }

  render() {
    const channels = this.state.channels.filter((c) => c.kind !== "dm");
    const dms = this.state.channels.filter((c) => c.kind === "dm");
    updateChildren($("channel-list"), channels.map((c) => this.channelLink(c)));
    updateChildren($("dm-list"), dms.length ? dms.map((c) => this.channelLink(c)) : [el("li", { class: "muted small", text: "None yet" })]);
    const members = [...this.state.members.values()].sort((a, b) => (a.user.displayName || a.user.username).localeCompare(b.user.displayName || b.user.username));
    updateChildren(
      $("member-list"),
      members.map(({ user, role }) => {
        const name = user.displayName || user.username;
        if (user.id === this.me.id) {
          return el("li", {}, el("span", { class: "nav-item member" }, this.dot(user.id), el("span", { class: "nav-label", text: `${name} (you)` }), el("span", { class: "role", text: role })));
        }
        const button = el(
          "button",
          // Named by its content ("Direct message Bob S online student"), not
          // an aria-label that would not hold the visible text (axe's
          // label-content-name-mismatch); the dot is drawn first by CSS order.
          { type: "button", class: "nav-item member", dataset: { userId: String(user.id) } },
          el("span", { class: "visually-hidden", text: "Direct message " }),
          el("span", { class: "nav-label", text: name }),
          this.dot(user.id),
          el("span", { class: "role", text: role }),
        );
        return el("li", {}, button);
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
