// Small shared helpers: the HTTP API with CSRF, safe DOM building, URLs, times.
// Nothing here ever turns user data into HTML: text goes through textContent
// (or text nodes), and URLs through safeUrl() before they become an href/src.

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(errorText(body) || interpolate(gettext("Request failed (%(status)s)"), { status }, true));
    this.status = status;
    this.body = body;
  }
}

// PROTOCOL.md: 400s are {errors: {field: [message]}}; others {detail}.
export function errorText(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  const errors = body.errors && typeof body.errors === "object" ? body.errors : body;
  const parts = [];
  for (const [field, messages] of Object.entries(errors)) {
    const list = Array.isArray(messages) ? messages : [messages];
    const label = field === "non_field_errors" ? "" : `${field}: `;
    parts.push(label + list.join(" "));
  }
  return parts.join(" ");
}

// The CSRF token for a write (the X-CSRFToken header), fetched once if the
// cookie is not there yet. Also used by the uploads (attachments.js).
export async function csrfToken() {
  if (!cookie("csrftoken")) await fetch("/api/auth/csrf/", { credentials: "same-origin" });
  return cookie("csrftoken");
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = await csrfToken();
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  patch: (path, body) => request("PATCH", path, body),
  delete: (path) => request("DELETE", path),
};

// el("p", {class: "x", text: userText}, child, ...): children are nodes or strings
// (strings become text nodes). Attributes named on* are refused outright.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.toLowerCase().startsWith("on")) throw new Error(`refusing event attribute ${key}`);
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "href" || key === "src") {
      const safe = safeUrl(value);
      if (safe) node.setAttribute(key, safe);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// http(s) URLs and same-site paths only (the server's rule for fileUrl);
// javascript:, data:, //host and anything unparsable give null.
export function safeUrl(value) {
  if (typeof value !== "string" || value.length > 2048 || /\s/.test(value)) return null;
  if (!/^(https?:\/\/|\/(?!\/))/i.test(value)) return null;
  try {
    const url = new URL(value, window.location.origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (!value.startsWith("/")) return url.href;
    // "/\evil.example" parses as another host: a same-site path must stay on this site.
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

// Small inline icons (static path data, no user input), so that no emoji
// font is needed.
const ICONS = {
  megaphone: "M3 10v4h3l5 4V6L6 10H3zm11-2.5v9a4.5 4.5 0 0 0 0-9zM14 4v2a6 6 0 0 1 0 12v2a8 8 0 0 0 0-16z",
  file: "M6 2h8l5 5v15H6V2zm7 1.5V8h4.5M9 12h7M9 15h7M9 18h5",
  smile: "M12 3a9 9 0 1 0 0 18a9 9 0 0 0 0-18zM8.5 14a4.5 4.5 0 0 0 7 0M9 9.5h.01M15 9.5h.01",
  flag: "M5 21V4M5 4h11l-2 4 2 4H5",
  check: "M5 12l5 5L20 7",
  thread: "M4 5h16v11H10l-5 4v-4H4z M8 9h8M8 12h5",
  pencil: "M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
  pin: "M9 3h6l-1 6 4 4H6l4-4-1-6zM12 13v8",
  paperclip: "M20 11.5l-8.2 8.2a5 5 0 0 1-7-7L13 4.5a3.3 3.3 0 0 1 4.7 4.7l-8.2 8.2a1.7 1.7 0 0 1-2.4-2.4L14.5 7.6",
  image: "M4 4h16v16H4zM4 16l5-5 4 4 2-2 5 5M15 8.5h.01",
  archive: "M4 4h16v4H4zM5 8v12h14V8M10 12h4",
  audio: "M9 18V5l11-2v13M9 18a3 3 0 1 1-6 0a3 3 0 0 1 6 0zM20 16a3 3 0 1 1-6 0a3 3 0 0 1 6 0z",
  video: "M3 6h13v12H3zM16 10l5-3v10l-5-3",
  code: "M6 2h8l5 5v15H6V2zM10 12l-2 2.5 2 2.5M14 12l2 2.5-2 2.5",
};

export function icon(name, label = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

export function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const now = new Date();
  const time = new Intl.DateTimeFormat(pageLanguage(), { hour: "2-digit", minute: "2-digit" }).format(date);
  if (date.toDateString() === now.toDateString()) return time;
  return `${new Intl.DateTimeFormat(pageLanguage(), { day: "numeric", month: "short" }).format(date)} ${time}`;
}

// The page's language (<html lang>, set by Django's LocaleMiddleware): dates,
// times and numbers are written the way its readers expect.
export function pageLanguage() {
  return document.documentElement.lang || "en";
}

// A date and time in full, in the page's language (titles and tooltips).
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(pageLanguage(), { dateStyle: "medium", timeStyle: "short" }).format(date);
}

// "5 minutes ago", "in 2 hours", "yesterday" in the page's language.
export function formatRelative(iso, now = Date.now()) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const seconds = Math.round((date.getTime() - now) / 1000);
  const steps = [
    [60, "second"],
    [3600, "minute", 60],
    [86400, "hour", 3600],
    [604800, "day", 86400],
    [Infinity, "week", 604800],
  ];
  const format = new Intl.RelativeTimeFormat(pageLanguage(), { numeric: "auto" });
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(seconds) < limit) return format.format(Math.round(seconds / size), unit);
  }
  return "";
}

export function readJsonScript(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function wireLogout() {
  for (const button of document.querySelectorAll("[data-logout]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api.post("/api/auth/logout/");
      } finally {
        window.location.assign("/");
      }
    });
  }
}

// Puts `children` into `parent` the way replaceChildren would, but keeps every
// existing node that is still there in the new rendering and patches the rest
// in place. Lists that re-render on every presence or unread change (the
// sidebar) must not swap the link under the pointer: a node replaced between
// mousedown and mouseup loses the click. Elements that carry their own event
// listeners must not be patched into other things: use delegated listeners on
// `parent` (see chat.js, the member list) instead.
export function updateChildren(parent, children) {
  const next = children.filter((child) => child !== null && child !== undefined && child !== false);
  next.forEach((child, index) => {
    const current = parent.childNodes[index];
    if (!current) parent.append(child);
    else if (!patchNode(current, child)) parent.replaceChild(child, current);
  });
  while (parent.childNodes.length > next.length) parent.lastChild.remove();
}

function patchNode(current, next) {
  if (current.nodeType !== next.nodeType || current.nodeName !== next.nodeName) return false;
  if (current.nodeType === Node.TEXT_NODE) {
    if (current.data !== next.data) current.data = next.data;
    return true;
  }
  if (current.nodeType !== Node.ELEMENT_NODE) return false;
  if (current.isEqualNode(next)) return true;
  for (const { name } of [...current.attributes]) if (!next.hasAttribute(name)) current.removeAttribute(name);
  for (const { name, value } of [...next.attributes]) if (current.getAttribute(name) !== value) current.setAttribute(name, value);
  updateChildren(current, [...next.childNodes]);
  return true;
}
