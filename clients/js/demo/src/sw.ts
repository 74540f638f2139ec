// SPDX-License-Identifier: Apache-2.0
// The demo's service worker: keeps the app shell (index.html, app.js,
// style.css) in a cache and serves it cache-first with a network fallback, so
// that the page reloads while offline. Room data never goes through here: the
// room and the outbox live in IndexedDB (RoomClient), and requests outside
// this worker's scope (/rooms, /apps) go straight to the network.
/// <reference lib="webworker" />
export {};
declare const self: ServiceWorkerGlobalScope;
/** Set by build.mjs: a hash of the shell's files, so a new build replaces the cache. */
declare const SHELL_VERSION: string;

const PREFIX = 'vellum-demo-shell-';
const CACHE = PREFIX + SHELL_VERSION;
const SHELL = ['index.html', 'app.js', 'style.css'];
const scope = new URL(self.registration.scope);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // Bypass the HTTP cache: the shell must be this build's.
      await cache.addAll(
        SHELL.map((file) => new Request(new URL(file, scope), { cache: 'reload' })),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  // Navigations to the page (any ?room=…&name=…) are the shell's index.html.
  const key =
    request.mode === 'navigate' ? new URL('index.html', scope).href : url.origin + url.pathname;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(key, { ignoreSearch: true });
      if (hit) return hit;
      return fetch(request);
    })(),
  );
});
