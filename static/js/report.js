// "Report" on a message (PROTOCOL.md part 2, safeguarding): the page's
// <dialog id="report-dialog"> asks for a reason (textbox "Reason"), then
// POST /api/channels/{id}/messages/{messageId}/report/. Only the workspace's
// admins and teachers see reports; the reporter gets a thank-you note.

import { api, errorText } from "./util.js";

export class ReportDialog {
  constructor({ dialog, channelId, note }) {
    this.dialog = dialog;
    this.channelId = channelId;
    this.note = note;
    this.reason = dialog.querySelector("textarea");
    this.error = dialog.querySelector("[data-error]");
    this.preview = dialog.querySelector("[data-preview]");
    this.form = dialog.querySelector("form");
    this.pending = null;
    this.form.addEventListener("submit", (event) => this.submit(event));
    dialog.addEventListener("close", () => {
      if (this.pending) this.pending.resolve(false);
      this.pending = null;
    });
  }

  // Resolves true once the report was sent, false when cancelled.
  open(message) {
    this.message = message;
    this.preview.textContent = message.content.length > 140 ? `${message.content.slice(0, 140)}…` : message.content;
    this.reason.value = "";
    this.error.textContent = "";
    this.dialog.showModal();
    this.reason.focus();
    return new Promise((resolve) => {
      this.pending = { resolve };
    });
  }

  async submit(event) {
    if (event.submitter && event.submitter.value === "cancel") return; // method=dialog closes it
    event.preventDefault();
    const reason = this.reason.value.trim();
    if (!reason) {
      this.error.textContent = gettext("Say what is wrong with this message.");
      return;
    }
    try {
      await api.post(`/api/channels/${this.channelId}/messages/${this.message.seq}/report/`, { reason });
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message || gettext("The report could not be sent.");
      return;
    }
    const pending = this.pending;
    this.pending = null;
    this.dialog.close();
    this.note(gettext("Thank you. The report was sent to this workspace's teachers."));
    if (pending) pending.resolve(true);
  }
}
