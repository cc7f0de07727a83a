// Files in the composer and in messages (PROTOCOL.md part 2, "Files"),
// shared by the workspace chat and MessagePal.
//
// Composer: the "Attach file" input (its label is the visible button), a
// file dropped on the composer or pasted into its textbox: the upload starts
// at once (XMLHttpRequest, for its progress), then the file waits in the
// composer (name, size, "Remove attachment") until "Send" posts it. "Send" is
// off while an upload runs; errors are shown in words beside the composer.
//
// Messages: an uploaded image is its thumbnail (click to enlarge, in a
// dialog), any other file a card with "Download"; a fileUrl that is not an
// uploaded file (an external link) is only ever a link, never loaded.

import { csrfToken, el, icon, safeUrl } from "./util.js";

// "12 KB", "3.4 MB": what people read (1 KB = 1024 bytes).
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return interpolate(ngettext("%(count)s byte", "%(count)s bytes", bytes), { count: bytes }, true);
  const [value, unit] = bytes < 1024 * 1024 ? [bytes / 1024, "KB"] : [bytes / (1024 * 1024), "MB"];
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

// The send_message fields of a message with `file` (null: a plain message).
// The server wants content: the caption typed, else the file's name.
export function fileFields(content, file) {
  if (!file) return { content };
  return { content: content || file.name, messageType: file.isImage ? "image" : "file", fileUrl: file.url };
}

function iconFor(file) {
  const type = file.contentType || "";
  if (file.isImage || type.startsWith("image/")) return "image";
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (/zip|tar|rar|7z|compressed/.test(type)) return "archive";
  if (/html|xml|javascript|json|x-sh|x-python/.test(type)) return "code";
  return "file";
}

// The name's extension as a short label ("PDF"), if it has a sensible one.
function kindLabel(name) {
  const match = /\.([A-Za-z0-9]{1,5})$/.exec(name || "");
  return match ? match[1].toUpperCase() : gettext("File");
}

// An image's size on screen inside a box (the thumbnail is at most 400 px
// on its long side), given as width/height so the message does not jump
// when it loads.
function boxSize(file, maxWidth, maxHeight) {
  const { width, height } = file;
  if (!width || !height) return {};
  const scale = Math.min(1, maxWidth / width, maxHeight / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

// --- in messages -------------------------------------------------------------

// A message's file, drawn: null when it has none.
export function renderAttachment(message) {
  const file = message.file;
  if (file && safeUrl(file.url)) return file.isImage ? imagePreview(file, message.key) : fileCard(file);
  if (!message.fileUrl) return null;
  const href = safeUrl(message.fileUrl);
  if (!href) {
    // Not an http(s) or same-site URL: shown, never followed.
    return el("p", { class: "attachment attachment-unsafe" }, gettext("Attachment (not a web link): "), el("code", { text: message.fileUrl }));
  }
  if (href.startsWith("/") && message.messageType === "image") {
    // A path on this site that is no upload (the CSP allows only 'self'): shown.
    return el("a", { class: "attachment attachment-image", href, rel: "noopener noreferrer", target: "_blank" }, el("img", { src: href, alt: interpolate(gettext("Image from %(name)s"), { name: message.authorName }, true), loading: "lazy" }));
  }
  // Another host's: a link, never an <img> (it would tell that host who
  // reads this, and when).
  return el("p", { class: "attachment attachment-link" }, icon("file"), " ", el("a", { href, rel: "noopener noreferrer", target: "_blank", text: message.fileUrl }));
}

function imagePreview(file, key) {
  const image = el("img", { src: file.thumbnailUrl || file.url, alt: file.name, ...boxSize(file, 320, 240), loading: "lazy", decoding: "async" });
  const button = el("button", { type: "button", class: "attachment attachment-image", title: interpolate(gettext("Enlarge %(name)s"), { name: file.name }, true), dataset: { focus: "enlarge" } }, image);
  button.addEventListener("click", () => viewer().open(file, button, key));
  return button;
}

function fileCard(file) {
  return el(
    "div",
    { class: "attachment attachment-file" },
    el("span", { class: "attachment-icon" }, icon(iconFor(file))),
    el("span", { class: "attachment-text" }, el("span", { class: "attachment-name", text: file.name }), el("span", { class: "attachment-size muted small", text: `${kindLabel(file.name)} · ${formatSize(file.size)}` })),
    el("a", { class: "button-link button-small", href: file.url, download: file.name, title: interpolate(gettext("Download %(name)s"), { name: file.name }, true), dataset: { focus: "download" }, text: gettext("Download") }),
  );
}

// --- the enlarge view: one <dialog> per page, made on first use ----------------

let theViewer = null;

function viewer() {
  if (!theViewer) theViewer = new ImageViewer();
  return theViewer;
}

class ImageViewer {
  constructor() {
    this.title = el("h2", { class: "viewer-title" });
    this.image = el("img", { class: "viewer-image", alt: "" });
    this.download = el("a", { class: "button-link button-small", text: gettext("Download") });
    const close = el("button", { type: "button", class: "button-small", text: gettext("Close") });
    this.dialog = el(
      "dialog",
      { class: "dialog image-viewer", "aria-labelledby": "viewer-title" },
      el("div", { class: "viewer-header" }, this.title, el("div", { class: "viewer-buttons" }, this.download, close)),
      el("div", { class: "viewer-body" }, this.image),
    );
    this.title.id = "viewer-title";
    document.body.append(this.dialog);
    close.addEventListener("click", () => this.dialog.close());
    // A click on the backdrop (the dialog itself, outside its content) closes it too.
    this.dialog.addEventListener("click", (event) => {
      if (event.target === this.dialog) this.dialog.close();
    });
    this.dialog.addEventListener("close", () => this.restoreFocus());
  }

  open(file, opener, key) {
    this.opener = opener;
    this.key = key;
    this.title.textContent = file.name;
    this.image.alt = file.name;
    // As large as the window allows, never larger than the image itself.
    const size = boxSize(file, window.innerWidth - 64, window.innerHeight - 130);
    for (const name of ["width", "height"]) {
      if (size[name]) this.image.setAttribute(name, String(size[name]));
      else this.image.removeAttribute(name);
    }
    this.image.src = safeUrl(file.url) || "";
    this.download.href = safeUrl(file.url) || "";
    this.download.download = file.name;
    this.dialog.showModal();
  }

  // Back to the preview that opened it, even if its message was redrawn meanwhile.
  restoreFocus() {
    let target = this.opener;
    if (!target || !target.isConnected) {
      const selector = `article.message[data-key="${CSS.escape(String(this.key))}"] [data-focus="enlarge"]`;
      target = this.key ? document.querySelector(selector) : null;
    }
    if (target) target.focus();
    this.image.removeAttribute("src");
  }
}

// --- in the composer ---------------------------------------------------------

// What went wrong with an upload, in words (PROTOCOL.md: 400 {errors}, 404,
// 413 {detail}).
function uploadError(status, body, name) {
  // The server's words without the field names ("file: ...").
  const errors = body && body.errors && typeof body.errors === "object" ? Object.values(body.errors).flat() : [];
  const detail = (body && typeof body.detail === "string" ? body.detail : errors.join(" ")).replace(/\.$/, "");
  if (status === 0) return interpolate(gettext("%(name)s could not be uploaded: the connection was lost. Please try again."), { name }, true);
  if (status === 404) return interpolate(gettext("%(name)s could not be uploaded: you cannot share files here."), { name }, true);
  const reason = detail || (status === 413 ? gettext("it is too large") : interpolate(gettext("the server answered %(status)s"), { status }, true));
  return interpolate(gettext("%(name)s could not be uploaded: %(reason)s."), { name, reason }, true);
}

export class ComposerAttachment {
  // form: the composer (holds the "Attach file" input and "Send");
  // target: {channelId} or {conversationId}, sent with the file.
  constructor({ form, textarea, target }) {
    this.form = form;
    this.textarea = textarea;
    this.target = target;
    this.input = form.querySelector("input[type=file]");
    this.sendButton = form.querySelector("button[type=submit]");
    this.state = null; // {status: "uploading" | "ready", name, size, progress, file, xhr}
    this.ticket = 0; // the current upload; answers to older ones are ignored
    this.item = el("div", { class: "attach-item" });
    this.error = el("p", { class: "form-error attach-error", role: "alert" });
    this.status = el("p", { class: "visually-hidden", role: "status" });
    this.tray = el("div", { class: "attach-tray" }, this.item, this.error, this.status);
    form.before(this.tray);
    this.render();
    this.input.addEventListener("change", () => {
      if (this.input.files.length) this.start(this.input.files[0]);
      this.input.value = ""; // the same file again is a new choice
    });
    textarea.addEventListener("paste", (event) => {
      const files = event.clipboardData ? [...event.clipboardData.files] : [];
      if (!files.length || this.input.disabled) return;
      event.preventDefault();
      this.start(files[0]);
    });
    this.wireDrop();
  }

  get busy() {
    return this.state?.status === "uploading";
  }

  // The uploaded file object, once it is ready to send.
  get file() {
    return this.state?.status === "ready" ? this.state.file : null;
  }

  wireDrop() {
    const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
    const over = (event) => {
      if (!hasFiles(event) || this.input.disabled) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      this.form.classList.add("is-dropping");
    };
    this.form.addEventListener("dragenter", over);
    this.form.addEventListener("dragover", over);
    this.form.addEventListener("dragleave", (event) => {
      if (!this.form.contains(event.relatedTarget)) this.form.classList.remove("is-dropping");
    });
    this.form.addEventListener("drop", (event) => {
      this.form.classList.remove("is-dropping");
      if (!hasFiles(event) || this.input.disabled) return;
      event.preventDefault();
      const files = [...event.dataTransfer.files];
      if (files.length) this.start(files[0]);
      if (files.length > 1) this.showError(gettext("One file at a time: only the first was attached."));
    });
  }

  async start(file) {
    this.clear();
    const ticket = ++this.ticket;
    const name = file.name || gettext("pasted file");
    this.state = { status: "uploading", name, size: file.size, progress: 0 };
    this.render();
    let token = "";
    try {
      token = await csrfToken();
    } catch {
      if (ticket === this.ticket) this.failed(uploadError(0, null, name));
      return;
    }
    if (ticket !== this.ticket) return;
    const xhr = new XMLHttpRequest();
    this.state.xhr = xhr;
    xhr.open("POST", "/api/files/");
    xhr.setRequestHeader("X-CSRFToken", token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (ticket !== this.ticket || !event.lengthComputable) return;
      this.state.progress = event.loaded / event.total;
      this.progress.value = Math.round(this.state.progress * 100);
    });
    xhr.addEventListener("load", () => {
      if (ticket !== this.ticket) return;
      if (xhr.status === 201 && xhr.response && xhr.response.url) this.done(xhr.response);
      else this.failed(uploadError(xhr.status, xhr.response, name));
    });
    xhr.addEventListener("error", () => {
      if (ticket === this.ticket) this.failed(uploadError(0, null, name));
    });
    const body = new FormData();
    body.append("file", file, name);
    for (const [key, value] of Object.entries(this.target)) body.append(key, String(value));
    xhr.send(body);
  }

  done(file) {
    this.state = { status: "ready", name: file.name, size: file.size, file };
    this.render();
  }

  failed(text) {
    this.state = null;
    this.render();
    this.showError(text);
  }

  showError(text) {
    this.error.textContent = text;
  }

  // Forgets the attachment (sent, removed, or replaced); stops an upload.
  clear() {
    this.ticket += 1;
    if (this.state?.xhr && this.busy) this.state.xhr.abort();
    this.state = null;
    this.error.textContent = "";
    this.render();
  }

  render() {
    const state = this.state;
    this.sendButton.disabled = this.busy || this.textarea.disabled;
    this.form.classList.toggle("is-uploading", this.busy);
    this.status.textContent = !state ? "" : state.status === "ready" ? interpolate(gettext("%(name)s is attached, ready to send."), { name: state.name }, true) : interpolate(gettext("Uploading %(name)s…"), { name: state.name }, true);
    if (!state) {
      this.item.replaceChildren();
      this.item.hidden = true;
      return;
    }
    this.item.hidden = false;
    const remove = el("button", { type: "button", class: "button-quiet button-small", "aria-label": state.status === "uploading" ? gettext("Cancel upload") : gettext("Remove attachment"), title: interpolate(gettext("Remove %(name)s"), { name: state.name }, true), text: "✕" });
    remove.addEventListener("click", () => {
      this.clear();
      this.textarea.focus();
    });
    const text = el("span", { class: "attachment-text" }, el("span", { class: "attachment-name", text: state.name }), el("span", { class: "attachment-size muted small", text: formatSize(state.size) }));
    if (state.status === "uploading") {
      this.progress = el("progress", { max: "100", value: String(Math.round(state.progress * 100)), "aria-label": interpolate(gettext("Uploading %(name)s"), { name: state.name }, true) });
      this.item.replaceChildren(el("span", { class: "attachment-icon" }, icon("paperclip")), text, this.progress, remove);
      return;
    }
    const file = state.file;
    const preview = file.isImage
      ? el("img", { class: "attach-thumb", src: file.thumbnailUrl || file.url, alt: "", ...boxSize(file, 64, 48) })
      : el("span", { class: "attachment-icon" }, icon(iconFor(file)));
    this.item.replaceChildren(preview, text, remove);
  }
}
