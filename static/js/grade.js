// "Grade" on a student's message, for admins and teachers (PROTOCOL.md part
// 2: grades are private): a <dialog> with a grade and feedback, then
// POST /api/channels/{id}/messages/{messageId}/grade/. The grade reaches the
// author and the staff only (their pages get message_updated); the author
// sees it, with the feedback, on their message.

import { api, el, errorText } from "./util.js";

export class GradeDialog {
  constructor({ channelId, note }) {
    this.channelId = channelId;
    this.note = note;
    this.value = el("input", { id: "grade-value", maxlength: "32", autocomplete: "off" });
    this.feedback = el("textarea", { id: "grade-feedback", rows: "3", maxlength: "2000" });
    this.error = el("p", { class: "edit-error", role: "alert" });
    this.preview = el("blockquote", { class: "dialog-preview" });
    const cancel = el("button", { type: "button", text: gettext("Cancel") });
    const save = el("button", { type: "submit", class: "button-primary", text: gettext("Save grade") });
    this.form = el(
      "form",
      { class: "dialog-form" },
      el("label", { for: "grade-value", text: gettext("Grade") }),
      this.value,
      el("label", { for: "grade-feedback", text: gettext("Feedback") }),
      this.feedback,
      this.error,
      el("div", { class: "dialog-buttons" }, cancel, save),
    );
    this.dialog = el("dialog", { class: "dialog", "aria-labelledby": "grade-title" }, el("h2", { id: "grade-title", text: gettext("Grade message") }), this.preview, this.form);
    document.body.append(this.dialog);
    cancel.addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => this.submit(event));
  }

  open(message) {
    this.message = message;
    this.preview.textContent = message.content.length > 140 ? `${message.content.slice(0, 140)}…` : message.content;
    this.value.value = message.grade ? message.grade.value : "";
    this.feedback.value = message.grade && message.grade.feedback ? message.grade.feedback : "";
    this.error.textContent = "";
    this.dialog.showModal();
    this.value.focus();
    return new Promise((resolve) => this.dialog.addEventListener("close", () => resolve(), { once: true }));
  }

  async submit(event) {
    event.preventDefault();
    const grade = this.value.value.trim();
    if (!grade) {
      this.error.textContent = gettext("Give a grade.");
      return;
    }
    try {
      await api.post(`/api/channels/${this.channelId}/messages/${this.message.seq}/grade/`, { grade, feedback: this.feedback.value.trim() || null });
    } catch (error) {
      this.error.textContent = errorText(error.body) || error.message || gettext("The grade could not be saved.");
      return;
    }
    this.dialog.close();
    this.note(interpolate(gettext("Graded %(grade)s. Only the author and the staff see it."), { grade }, true));
  }
}
