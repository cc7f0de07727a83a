// The offline page (templates/pwa/offline.html), shown by the service worker
// in place of a page that could not be loaded: it reloads that page as soon
// as the server answers again (on the browser's "online" event, on "Try
// again now", and every few seconds meanwhile).
const RETRY_MS = 5000;
let checking = false;

async function retry() {
  if (checking) return;
  checking = true;
  try {
    // A small answer of the server's own (the service worker never answers it).
    const answer = await fetch("/manifest.webmanifest", { cache: "no-store" });
    if (answer.ok) location.reload();
  } catch {
    // Still offline: the next tick tries again.
  } finally {
    checking = false;
  }
}

window.addEventListener("online", retry);
document.querySelector("[data-offline-retry]").addEventListener("click", retry);
setInterval(retry, RETRY_MS);
