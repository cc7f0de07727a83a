// Registers the service worker (templates/pwa/sw.js, served at /sw.js): the
// installable app's offline shell. Loaded by every page; does nothing where
// service workers are unavailable (an insecure origin, an old browser).
if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => console.warn("service worker not registered", error));
  });
}
