// The service worker (chatsite/pwa.py serves it at /sw.js, scope "/").
// It keeps the app shell (this site's CSS, JS, images and the offline page)
// in a cache named after the shell's content, answers static files from it,
// and when a page cannot be loaded (no network) shows the offline page in its
// place. It never stores anything else: API answers, /ws/, uploaded files and
// pages (they hold messages) always go to the network.
const VERSION = "{{ version }}";
const CACHE = `chat-shell-${VERSION}`;
const PRECACHE = {{ precache }};
const OFFLINE_URL = "/offline/";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // "reload": straight from the server, never from the HTTP cache.
      .then((cache) => cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

const shellPaths = new Set(PRECACHE);

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // A page: always from the network (never cached); the offline page when that fails.
    event.respondWith(fetch(request).catch(() => caches.open(CACHE).then((cache) => cache.match(OFFLINE_URL)).then((page) => page || Response.error())));
    return;
  }
  if (url.search === "" && shellPaths.has(url.pathname)) {
    // ignoreVary: WhiteNoise varies on Accept-Encoding, which the network stack sets, not the page.
    event.respondWith(caches.open(CACHE).then((cache) => cache.match(request, { ignoreVary: true })).then((hit) => hit || fetch(request)));
  }
  // Anything else (the API, files, the admin's static files) is not touched.
});
