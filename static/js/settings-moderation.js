// The settings page's "Reports" (open reports, handled with "Dismiss",
// "Delete message" or "Mute author") and, for admins, its "Moderation log"
// (GET /api/workspaces/{id}/audit/). settings.js passes the shared helpers:
// base (the workspace's API path), nameOf(userId), roleOf(userId),
// status(text), showError(id, error), confirmAction({...}), focusHeading(id).

import { api, el, formatDateTime } from "./util.js";

const MUTE_CHOICES = [
  [10, gettext("10 minutes")],
  [60, gettext("1 hour")],
  [1440, gettext("1 day")],
];

const ACTIONS = {
  hide: gettext("Message hidden"),
  unhide: gettext("Message shown again"),
  delete: gettext("Message deleted"),
  mute: gettext("Muted"),
  unmute: gettext("Unmuted"),
  remove: gettext("Removed"),
  leave: gettext("Left"),
  role: gettext("Role changed"),
  deactivate: gettext("Account deactivated"),
  block: gettext("Blocked"),
  unblock: gettext("Unblocked"),
  report: gettext("Message reported"),
  resolve: gettext("Report handled"),
};

function localTime(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? "" : formatDateTime(iso);
  return el("time", { datetime: iso, text });
}

export class Reports {
  constructor(context) {
    this.ctx = context;
    this.list = document.getElementById("settings-reports");
    this.channels = new Map(); // channelId -> name
    document.getElementById("reports-refresh").addEventListener("click", () => this.load().then(() => this.ctx.status(gettext("Reports refreshed."))));
  }

  person(userId) {
    return this.ctx.nameOf(userId) || gettext("a former member");
  }

  async load() {
    this.ctx.showError("reports-error", null);
    try {
      const [reports, channels] = await Promise.all([api.get(`${this.ctx.base}/reports/`), api.get(`${this.ctx.base}/channels/`).catch(() => [])]);
      for (const channel of channels) if (channel.kind !== "dm") this.channels.set(channel.id, channel.name);
      this.render(reports);
    } catch (error) {
      this.list.replaceChildren();
      this.ctx.showError("reports-error", error);
    }
  }

  render(reports) {
    if (!reports.length) this.list.replaceChildren(el("li", { class: "muted empty", text: gettext("No open reports.") }));
    else this.list.replaceChildren(...reports.map((report) => this.row(report)));
  }

  row(report) {
    const { message } = report;
    const quoteId = `report-${report.id}`;
    const quote = message
      ? el("blockquote", { id: quoteId, class: "report-text", text: message.content || gettext("(no text)") })
      : el("blockquote", { id: quoteId, class: "report-text muted", text: gettext("(deleted)") });
    const where = [];
    if (message) {
      where.push(interpolate(gettext("by %(name)s"), { name: message.authorDisplayName || message.authorUsername }, true));
      if (this.channels.has(message.channelId)) where.push(interpolate(gettext("in #%(channel)s"), { channel: this.channels.get(message.channelId) }, true));
    }
    where.push(interpolate(gettext("reported by %(name)s"), { name: this.person(report.reporterId) }, true));
    const meta = el("p", { class: "muted small" }, `${where.join(" ")} · `, localTime(report.createdAt));
    const reason = el("p", { class: "report-reason" }, el("strong", { text: gettext("Reason: ") }), report.reason);
    const buttons = el("div", { class: "settings-controls" });
    const add = (text, action, extra = {}) => {
      const button = el("button", { type: "button", class: extra.danger ? "button-small button-danger-quiet" : "button-small", "aria-describedby": quoteId, text });
      button.addEventListener("click", () => this.resolve(report, action, button, extra));
      buttons.append(button);
      return button;
    };
    add(gettext("Dismiss"), "dismiss");
    if (message) add(gettext("Delete message"), "delete_message", { danger: true, confirm: true });
    // Only students can be muted: hidden when the author is known not to be one.
    const authorRole = message ? this.ctx.roleOf(message.authorId) : null;
    if (!message || authorRole === "student" || authorRole === null) {
      const selectId = `mute-for-${report.id}`;
      const length = el("select", { id: selectId }, ...MUTE_CHOICES.map(([minutes, label]) => el("option", { value: String(minutes), selected: minutes === 60, text: label })));
      buttons.append(el("label", { for: selectId, class: "inline-label", text: gettext("Mute for") }), length);
      add(gettext("Mute author"), "mute_author", { length });
    }
    return el("li", { class: "settings-row report", dataset: { reportId: String(report.id) } }, el("div", { class: "report-body" }, quote, meta, reason), buttons);
  }

  async resolve(report, action, button, { confirm = false, length = null } = {}) {
    if (confirm) {
      const ok = await this.ctx.confirmAction({ title: gettext("Delete this message?"), text: gettext("It is removed for everyone in its channel. The report keeps its text."), action: gettext("Delete message") });
      if (!ok) return;
    }
    this.ctx.showError("reports-error", null);
    const body = { action };
    if (length) body.minutes = Number(length.value);
    const row = button.closest("li");
    for (const control of row.querySelectorAll("button, select")) control.disabled = true;
    try {
      await api.post(`${this.ctx.base}/reports/${report.id}/resolve/`, body);
    } catch (error) {
      this.ctx.showError("reports-error", error);
      for (const control of row.querySelectorAll("button, select")) control.disabled = false;
      button.focus();
      return;
    }
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    if (!this.list.children.length) this.render([]);
    const author = report.message ? report.message.authorDisplayName || report.message.authorUsername : gettext("The author");
    const done = {
      dismiss: gettext("The report was dismissed."),
      delete_message: gettext("The message was deleted and the report closed."),
      mute_author: interpolate(gettext("%(name)s is muted for %(length)s; the report is closed."), { name: author, length: length ? length.selectedOptions[0].textContent : gettext("1 hour") }, true),
    };
    this.ctx.status(done[action]);
    const focusable = next && next.querySelector("button");
    if (focusable) focusable.focus();
    else this.ctx.focusHeading("reports-title");
    if (this.ctx.onResolved) this.ctx.onResolved();
  }
}

export class AuditLog {
  constructor(context) {
    this.ctx = context;
    this.body = document.getElementById("settings-audit");
  }

  person(userId) {
    if (userId === null || userId === undefined) return gettext("System");
    return this.ctx.nameOf(userId) || interpolate(gettext("Former member (#%(id)s)"), { id: userId }, true);
  }

  // "user:5" -> a name, "report:3" -> "Report #3", "message:…" -> "A message".
  target(target) {
    const [kind, rest = ""] = String(target).split(":", 2);
    if (kind === "user" && /^\d+$/.test(rest)) return this.person(Number(rest));
    if (kind === "report") return interpolate(gettext("Report #%(id)s"), { id: rest }, true);
    if (kind === "message") return gettext("A message");
    if (kind === "channel") return interpolate(gettext("Channel #%(id)s"), { id: rest }, true);
    return target;
  }

  async load() {
    this.ctx.showError("audit-error", null);
    try {
      this.render(await api.get(`${this.ctx.base}/audit/`));
    } catch (error) {
      this.body.replaceChildren();
      this.ctx.showError("audit-error", error);
    }
  }

  render(rows) {
    if (!rows.length) {
      this.body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: gettext("Nothing recorded yet.") })));
      return;
    }
    this.body.replaceChildren(
      ...rows.map((row) =>
        el(
          "tr",
          {},
          el("td", {}, localTime(row.createdAt)),
          el("td", { text: ACTIONS[row.action] || row.action }),
          el("td", { text: this.person(row.actorId) }),
          el("td", { text: this.target(row.target) }),
          el("td", { text: row.reason || "—" }),
        ),
      ),
    );
  }
}
