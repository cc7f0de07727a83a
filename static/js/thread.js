// The thread panel (a complementary region "Thread" beside the conversation):
// the root message, its replies (GET .../messages/{root}/thread/, then live
// new_message events whose replyTo is the root) and a composer ("Reply",
// "Post reply") that sends send_message with replyTo. Escape or "Close
// thread" closes it and gives the focus back to what opened it.

import { MessageList } from "./messages.js";
import { wireComposer } from "./composer.js";
import { api, newClientId } from "./util.js";

export class ThreadPanel {
  // listOptions: MessageList options (me, isRead, decorate, ...);
  // normalise(message) as the page draws it; send(clientId, event) a tracked send.
  constructor({ panel, layout, channelId, listOptions, normalise, send, note, onClosed }) {
    this.panel = panel;
    this.layout = layout;
    this.channelId = channelId;
    this.normalise = normalise;
    this.sendTracked = send;
    this.note = note;
    this.onClosed = onClosed; // ({key, focus}) when the opener was redrawn
    this.rootKey = null;
    this.opener = null;
    this.loading = 0; // the open() whose answer is still welcome
    this.box = panel.querySelector("[data-thread-messages]");
    this.list = new MessageList(this.box, { ...listOptions, countsAsSeen: () => false, emptyText: gettext("Loading the thread…") });
    this.textarea = panel.querySelector("textarea");
    wireComposer({ form: panel.querySelector("form"), textarea: this.textarea, onSend: (content) => this.reply(content) });
    panel.querySelector("[data-thread-close]").addEventListener("click", () => this.close());
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        this.close();
      }
    });
  }

  get isOpen() {
    return this.rootKey !== null;
  }

  // Opens the thread of `rootKey`; `root` is the root as the main list has it.
  async open(rootKey, opener, root = null) {
    if (this.rootKey === rootKey) {
      this.textarea.focus();
      return;
    }
    this.rootKey = rootKey;
    // Where the focus goes back to: the opener, or the same control of its
    // message if that was redrawn meanwhile (counts change as replies come).
    this.opener = opener;
    this.openerAt = opener ? { key: opener.closest("article[data-key]")?.dataset.key || rootKey, focus: opener.dataset.focus || "" } : { key: rootKey, focus: "" };
    const token = ++this.loading;
    this.list.clear();
    if (root) this.list.upsert(root);
    this.panel.hidden = false;
    this.layout.classList.add("thread-open");
    this.textarea.value = "";
    this.textarea.focus();
    try {
      let after = null;
      for (let round = 0; round < 50; round += 1) {
        const query = after ? `?after=${after}&limit=100` : "?limit=100";
        const page = await api.get(`/api/channels/${this.channelId}/messages/${rootKey}/thread/${query}`);
        if (token !== this.loading) return;
        this.accept(page.root);
        for (const message of page.results) this.accept(message);
        if (!page.hasMore || page.results.length === 0) break;
        after = page.results[page.results.length - 1].id;
      }
      this.list.scrollToBottom();
    } catch (error) {
      if (token !== this.loading) return;
      this.note(error.status === 404 ? gettext("That thread is gone.") : error.message);
      this.close();
    }
  }

  close() {
    if (!this.isOpen) return;
    this.rootKey = null;
    this.loading += 1;
    this.panel.hidden = true;
    this.layout.classList.remove("thread-open");
    this.list.clear();
    const opener = this.opener;
    this.opener = null;
    if (opener && opener.isConnected) opener.focus();
    else this.onClosed(this.openerAt);
  }

  // Does this (server) message belong to the open thread?
  holds(message) {
    return this.isOpen && (String(message.id) === this.rootKey || String(message.replyTo) === this.rootKey);
  }

  // A server message: drawn if it is the root or one of its replies.
  accept(message) {
    if (!this.holds(message)) return;
    this.list.upsert(this.normalise(message));
  }

  // Live state of a message already drawn (reactions, counts, pins).
  patch(key, fields) {
    this.list.patch(key, fields);
  }

  update(message) {
    if (this.list.has(String(message.id))) this.accept(message);
  }

  remove(key) {
    if (key === this.rootKey) {
      this.note(gettext("The thread's first message was deleted."));
      this.close();
      return;
    }
    this.list.remove(key);
  }

  reply(content) {
    if (!this.isOpen) return false;
    const clientId = newClientId();
    const replyTo = Number(this.rootKey);
    this.list.addPending(clientId, { content, replyTo });
    this.sendTracked(clientId, { type: "send_message", channelId: this.channelId, content, replyTo });
    return true;
  }
}
