// The one WebSocket client of the UI, used by the workspace chat and MessagePal.
//
// - Reconnects with exponential backoff and jitter (0.5 s doubling to 10 s,
//   each delay drawn from its upper half), at once when the browser comes back
//   online or the tab becomes visible again; drops the socket at once when the
//   browser goes offline (a dead connection may otherwise look open for long).
// - Close code 4001 (no or ended session) never reconnects: the user goes to `/`.
// - After every `connected` greeting it calls onReady() first (the page joins
//   its channels there, with afterId for catch-up) and then resends every
//   message still waiting for its answer, with the same clientId: the server
//   stores a clientId once per author and channel, so a resend is safe.
// - Shows the "Reconnecting…" banner (#connection-banner) while down.
// - Sends a protocol `ping` when quiet, and drops a connection that stops
//   answering, so a half-open socket does not hang the page.

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10000;
const ACK_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 25000;
const PONG_TIMEOUT_MS = 10000;

export class ChatSocket {
  constructor(path, { onEvent, onReady, onFailed, onStatus } = {}) {
    this.path = path;
    this.onEvent = onEvent || (() => {});
    this.onReady = onReady || (() => {});
    this.onFailed = onFailed || (() => {});
    this.onStatus = onStatus || (() => {});
    this.ws = null;
    this.ready = false;
    this.everReady = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = false;
    this.outbox = new Map(); // clientId -> {event, timer}
    this.lastHeard = Date.now();
    this.pingTimer = null;
    this.banner = document.getElementById("connection-banner");
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.drop());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  start() {
    this.stopped = false;
    this.open();
    return this;
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}${this.path}`;
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("message", (message) => this.receive(ws, message));
    ws.addEventListener("close", (close) => this.closed(ws, close));
  }

  receive(ws, message) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (!event || typeof event !== "object") return;
    if (event.type === "connected") {
      this.attempt = 0;
      this.ready = true;
      this.everReady = true;
      this.setBanner(false);
      this.startPings();
      this.onStatus("online");
      this.onReady(event);
      this.flush();
    } else if (event.type === "error" && typeof event.requestId === "string" && event.requestId.startsWith("send:")) {
      this.fail(event.requestId.slice(5), event);
    }
    if (event.type !== "pong") this.onEvent(event);
  }

  closed(ws, close) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this.stopPings();
    for (const entry of this.outbox.values()) {
      clearTimeout(entry.timer);
      entry.timer = null;
    }
    if (close.code === 4001) {
      // No session (logged out, or deactivated): reconnecting cannot help.
      this.stopped = true;
      this.onStatus("unauthorized");
      window.location.assign("/");
      return;
    }
    this.onStatus("offline");
    this.setBanner(true);
    this.scheduleReconnect();
  }

  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.closed(ws, { code: 1006 });
    ws.close();
  }

  scheduleReconnect() {
    if (this.stopped || this.retryTimer) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  setBanner(down) {
    if (!this.banner) return;
    this.banner.hidden = !down;
    this.banner.textContent = down ? gettext("Connection lost. Reconnecting…") : "";
    document.body.classList.toggle("is-offline", down);
  }

  startPings() {
    this.stopPings();
    this.pingTimer = setInterval(() => {
      const quiet = Date.now() - this.lastHeard;
      if (quiet > PING_EVERY_MS + PONG_TIMEOUT_MS && this.ws) {
        this.ws.close(); // half-open: the close handler reconnects
      } else if (quiet > PING_EVERY_MS) {
        this.send({ type: "ping" });
      }
    }, PONG_TIMEOUT_MS / 2);
  }

  stopPings() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  get connected() {
    return this.ready && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  // Fire and forget (typing, joins, mark_read): dropped while disconnected.
  send(event) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(event));
    return true;
  }

  // A message that must arrive: kept until ack(clientId), resent after every
  // reconnect; failed (onFailed) on an error answer or no answer in time.
  sendTracked(clientId, event) {
    const entry = { event: { ...event, clientId, requestId: `send:${clientId}` }, timer: null };
    this.outbox.set(clientId, entry);
    this.transmit(clientId, entry);
  }

  transmit(clientId, entry) {
    if (!this.connected) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.fail(clientId, { code: "timeout", message: gettext("No answer from the server.") }), ACK_TIMEOUT_MS);
    this.ws.send(JSON.stringify(entry.event));
  }

  flush() {
    for (const [clientId, entry] of this.outbox) this.transmit(clientId, entry);
  }

  ack(clientId) {
    const entry = this.outbox.get(clientId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.outbox.delete(clientId);
  }

  fail(clientId, error) {
    const entry = this.outbox.get(clientId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.outbox.delete(clientId);
    this.onFailed(clientId, error, entry.event);
  }

  isPending(clientId) {
    return this.outbox.has(clientId);
  }
}
