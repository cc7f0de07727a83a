// What the workspace chat adds to a message bubble (MessageList's `decorate`
// hook): "(edited)", reaction chips, the thread line and reply count, the
// action buttons ("Add reaction", "Reply in thread", "Edit", "Delete",
// "Report", "Pin" / "Unpin"), editing in place and the delete confirmation.
//
// Nothing here changes a message on screen by itself: it sends the request
// and the server's event (message_updated, message_deleted, reaction_updated)
// redraws the message, on this page and on everyone else's alike. Requests
// carry requestId "<kind>:<message key>" so that an error answer finds the
// control that asked (failed()).

import { EmojiPicker } from "./emoji.js";
import { el, formatDateTime, formatTime, icon } from "./util.js";

function repliesText(count) {
  return interpolate(ngettext("%(count)s reply", "%(count)s replies", count), { count }, true);
}

export class MessageActions {
  // send(event) -> false when not connected; openThread(rootKey, opener);
  // nameOf(userId) -> display name; note(text) shows an error to the user;
  // editWindow: CHAT_EDIT_WINDOW in seconds when the page knows it (0 or
  // unknown: "Edit" is offered and the server's answer decides).
  // report(message) -> Promise, when the page lets people report ("Report"
  // on other people's messages).
  constructor({ me, channelId, canModerate, canPin, send, openThread, nameOf, note, editWindow = 0, report = null, grade = null }) {
    this.me = me;
    this.report = report;
    this.grade = grade; // grade(message) -> Promise: staff grade others' messages
    this.editWindow = Number(editWindow) || 0;
    this.channelId = channelId;
    this.canModerate = canModerate;
    this.canPin = canPin;
    this.sendEvent = send;
    this.openThread = openThread;
    this.nameOf = nameOf;
    this.note = note;
    this.picker = new EmojiPicker();
    this.lists = new Set(); // every MessageList drawn through decorate()
    this.dialog = document.getElementById("confirm-delete");
  }

  send(event, kind, key) {
    if (this.sendEvent({ ...event, channelId: this.channelId, requestId: `${kind}:${key}` })) return true;
    this.note(gettext("Not connected. Try again in a moment."));
    return false;
  }

  canEdit(message) {
    if (message.authorId !== this.me.id || message.isAI || message.streaming) return false;
    return !this.editWindow || Date.now() - Date.parse(message.createdAt) < this.editWindow * 1000;
  }

  // --- drawing ---------------------------------------------------------------

  decorate(node, message, list, { inThread = false } = {}) {
    this.lists.add(list);
    const own = message.authorId === this.me.id && !message.isAI;
    const editing = list.editing && list.editing.key === message.key ? list.editing : null;
    const meta = node.querySelector(".message-meta");
    if (message.editedAt) {
      const when = formatDateTime(message.editedAt);
      meta.querySelector("time").after(el("span", { class: "edited", title: interpolate(gettext("Edited %(when)s"), { when }, true), text: gettext("(edited)") }));
    }
    const body = node.querySelector(".message-body");
    if (message.replyTo && !inThread) {
      node.classList.add("message-reply");
      const open = el("button", { type: "button", class: "link-button", dataset: { focus: "view-thread" }, text: gettext("View thread") });
      open.addEventListener("click", () => this.openThread(String(message.replyTo), open));
      body.before(el("p", { class: "thread-line muted small" }, gettext("Replied in a thread · "), open));
    }
    if (editing) body.replaceWith(this.editor(message, list, editing));
    if (message.reactions && message.reactions.length) node.append(this.chips(message, list));
    if (!message.replyTo && message.replyCount > 0) node.append(this.replies(message, inThread));
    if (!editing && !message.streaming) node.append(this.toolbar(message, list, own, inThread));
  }

  toolbar(message, list, own, inThread) {
    const bar = el("div", { class: "message-actions" });
    const add = (name, iconName, focus, onClick) => {
      const button = el("button", { type: "button", class: "icon-button", "aria-label": name, title: name, dataset: { focus } }, icon(iconName));
      button.addEventListener("click", () => onClick(button));
      bar.append(button);
    };
    add(gettext("Add reaction"), "smile", "react", (button) => this.openPicker(list, message.key, button));
    if (!inThread) add(gettext("Reply in thread"), "thread", "reply", (button) => this.openThread(String(message.replyTo || message.key), button));
    if (this.canEdit(message)) add(gettext("Edit"), "pencil", "edit", () => this.startEdit(list, message.key));
    if (own || this.canModerate()) add(gettext("Delete"), "trash", "delete", (button) => this.remove(list, message.key, button));
    if (!own && !inThread && this.grade && this.canModerate()) {
      add(gettext("Grade"), "check", "grade", async () => {
        await this.grade(list.get(message.key));
        list.focusMessage(message.key, "grade");
      });
    }
    if (!own && this.report) {
      add(gettext("Report"), "flag", "report", async () => {
        await this.report(list.get(message.key));
        list.focusMessage(message.key, "report");
      });
    }
    if (!inThread && this.canPin()) {
      const [name, type] = message.isPinned ? [gettext("Unpin"), "unpin_message"] : [gettext("Pin"), "pin_message"];
      add(name, "pin", "pin", () => this.send({ type, messageId: message.seq }, "pin", message.key));
    }
    return bar;
  }

  chips(message, list) {
    const box = el("div", { class: "reactions" });
    for (const reaction of message.reactions) {
      const mine = reaction.userIds.includes(this.me.id);
      const names = reaction.userIds.map((id) => this.nameOf(id)).join(", ");
      const chip = el(
        "button",
        { type: "button", class: mine ? "chip chip-mine" : "chip", "aria-pressed": mine ? "true" : "false", title: interpolate(gettext("%(names)s reacted with %(emoji)s"), { names, emoji: reaction.emoji }, true), dataset: { focus: `chip:${reaction.emoji}` } },
        el("span", { class: "chip-emoji", text: reaction.emoji }),
        " ",
        el("span", { class: "chip-count", text: String(reaction.count) }),
      );
      chip.addEventListener("click", () => {
        const type = chip.getAttribute("aria-pressed") === "true" ? "remove_reaction" : "add_reaction";
        this.send({ type, messageId: message.seq, emoji: reaction.emoji }, "react", message.key);
      });
      box.append(chip);
    }
    return box;
  }

  replies(message, inThread) {
    const text = repliesText(message.replyCount);
    if (inThread) return el("p", { class: "thread-count muted small", text });
    const open = el("button", { type: "button", class: "link-button replies", dataset: { focus: "replies" }, text });
    open.addEventListener("click", () => this.openThread(message.key, open));
    const last = message.lastReplyAt ? el("span", { class: "muted small", text: interpolate(gettext("Last reply %(when)s"), { when: formatTime(message.lastReplyAt) }, true) }) : null;
    return el("div", { class: "thread-summary" }, open, last);
  }

  // --- editing in place ----------------------------------------------------------

  editor(message, list, editing) {
    const box = el("textarea", { class: "edit-box", "aria-label": gettext("Edit message"), rows: "2", dataset: { focus: "editor" } });
    box.value = editing.draft;
    box.readOnly = editing.saving;
    box.addEventListener("input", () => {
      editing.draft = box.value;
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.save(list, message.key);
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation(); // cancels the edit only, not the thread panel
        this.cancel(list, message.key);
      }
    });
    const cancel = el("button", { type: "button", class: "button-quiet", text: gettext("Cancel") });
    cancel.addEventListener("click", () => this.cancel(list, message.key));
    const save = el("button", { type: "button", class: "button-primary button-small", text: editing.saving ? gettext("Saving…") : gettext("Save"), disabled: editing.saving });
    save.addEventListener("click", () => this.save(list, message.key));
    const hint = editing.error
      ? el("span", { class: "edit-error", role: "alert", text: editing.error })
      : el("span", { class: "muted small", text: gettext("Enter to save · Escape to cancel") });
    return el("div", { class: "message-editor" }, box, el("div", { class: "edit-row" }, hint, cancel, save));
  }

  startEdit(list, key) {
    const message = list.get(key);
    if (!message || !this.canEdit(message)) return;
    const before = list.editing;
    list.editing = { key, draft: message.content, saving: false, error: "" };
    if (before && before.key !== key) list.redraw(before.key);
    list.redraw(key);
    list.focusMessage(key, "editor");
    const box = document.activeElement;
    if (box && box.tagName === "TEXTAREA") box.setSelectionRange(box.value.length, box.value.length);
  }

  cancel(list, key) {
    if (!list.editing || list.editing.key !== key) return;
    list.editing = null;
    list.redraw(key);
    list.focusMessage(key);
  }

  save(list, key) {
    const editing = list.editing;
    const message = list.get(key);
    if (!editing || editing.key !== key || editing.saving || !message) return;
    const content = editing.draft.trim();
    if (content === message.content) {
      this.cancel(list, key);
      return;
    }
    editing.error = content ? "" : gettext("A message cannot be empty: use Delete to remove it.");
    if (content && this.send({ type: "edit_message", messageId: message.seq, content }, "edit", key)) editing.saving = true;
    list.redraw(key);
  }

  // The server took our edit (its message_updated answers our requestId): the
  // editor closes before that event redraws the message.
  saved(key) {
    for (const list of this.lists) {
      if (list.editing && list.editing.key === key) list.editing = null;
    }
  }

  // A message that is gone takes its editor and picker with it.
  forget(key) {
    this.saved(key);
  }

  // An error answer to one of our requests: true if it was ours.
  failed(event) {
    const [kind, key] = String(event.requestId || "").split(":");
    if (!["edit", "delete", "react", "pin"].includes(kind)) return false;
    const text = event.message || gettext("Something went wrong.");
    if (kind !== "edit") {
      this.note(text);
      return true;
    }
    for (const list of this.lists) {
      if (!list.editing || list.editing.key !== key) continue;
      list.editing.saving = false;
      list.editing.error = text;
      list.redraw(key);
      list.focusMessage(key, "editor");
    }
    return true;
  }

  // --- delete and reactions -----------------------------------------------------------

  async remove(list, key, opener) {
    const message = list.get(key);
    if (!message) return;
    if (await this.confirm(message)) this.send({ type: "delete_message", messageId: message.seq }, "delete", key);
    else if (!opener.isConnected) list.focusMessage(key, "delete");
  }

  // The page's <dialog>: Cancel (focused first) or Delete; Escape cancels.
  confirm(message) {
    const dialog = this.dialog;
    const preview = dialog.querySelector("[data-preview]");
    preview.textContent = message.content.length > 140 ? `${message.content.slice(0, 140)}…` : message.content;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    });
  }

  openPicker(list, key, button) {
    if (this.picker.isOpen && this.picker.anchor === button) {
      this.picker.close();
      return;
    }
    this.picker.open(button, {
      onPick: (emoji) => {
        const message = list.get(key);
        if (message) this.send({ type: "add_reaction", messageId: message.seq, emoji }, "react", key);
      },
      onClose: (restoreFocus) => {
        if (restoreFocus) list.focusMessage(key, "react");
      },
    });
  }
}
