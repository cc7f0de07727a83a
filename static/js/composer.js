// The typing line and the composer, shared by the workspace chat (its
// channel composer and its thread panel's) and MessagePal.

// "Bob is typing…": shown per person until they stop, send, or go quiet.
export class TypingIndicator {
  constructor(node, timeoutMs = 5000) {
    this.node = node;
    this.timeoutMs = timeoutMs;
    this.people = new Map(); // userId -> {name, timer}
  }

  show(userId, name) {
    const current = this.people.get(userId);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => this.hide(userId), this.timeoutMs);
    this.people.set(userId, { name, timer });
    this.render();
  }

  hide(userId) {
    const current = this.people.get(userId);
    if (!current) return;
    clearTimeout(current.timer);
    this.people.delete(userId);
    this.render();
  }

  clear() {
    for (const { timer } of this.people.values()) clearTimeout(timer);
    this.people.clear();
    this.render();
  }

  render() {
    const names = [...this.people.values()].map((p) => p.name);
    let text = "";
    if (names.length === 1) text = interpolate(gettext("%(name)s is typing…"), { name: names[0] }, true);
    else if (names.length === 2) text = interpolate(gettext("%(first)s and %(second)s are typing…"), { first: names[0], second: names[1] }, true);
    else if (names.length > 2) text = gettext("Several people are typing…");
    this.node.textContent = text;
  }
}

// The composer: Enter sends, Shift+Enter is a new line; typing signals are
// throttled (one per 3 s) and a stop signal goes out on send and on blur.
// With `attachment` (attachments.js's ComposerAttachment) a message may be a
// file with or without text: onSend(content, file), never while it uploads.
export function wireComposer({ form, textarea, onSend, attachment = null, onTyping = () => {}, onStopTyping = () => {} }) {
  let lastTyping = 0;
  let typingActive = false;
  const stop = () => {
    if (!typingActive) return;
    typingActive = false;
    lastTyping = 0;
    onStopTyping();
  };
  const grow = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  };
  const submit = () => {
    const content = textarea.value.trim();
    const file = attachment ? attachment.file : null;
    if (attachment?.busy || (!content && !file)) return;
    if (onSend(content, file) === false) return;
    attachment?.clear();
    textarea.value = "";
    grow();
    stop();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  textarea.addEventListener("input", () => {
    grow();
    if (!textarea.value.trim()) {
      stop();
      return;
    }
    const now = Date.now();
    if (now - lastTyping > 3000) {
      lastTyping = now;
      typingActive = true;
      onTyping();
    }
  });
  textarea.addEventListener("blur", stop);
}
