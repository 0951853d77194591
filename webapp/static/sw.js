// Service worker: makes the page work offline after the first visit.
//
// The page posts the exact URLs it used ({type: 'cache', urls}); they are cached, and any older entry
// for the same file (another static version, onnxruntime-web version or model sha256) is dropped, so a
// new model replaces the old one instead of piling up. Versioned URLs are served cache-first; the page
// and the manifest network-first, falling back to the cache when offline.

const CACHE = 'kyara';

/** A URL without its version: /static/<v>/app.js -> /static/app.js, /model/x.onnx?v=sha -> /model/x.onnx */
function fileKey(url) {
  const { pathname } = new URL(url);
  return pathname.replace(/^\/(static|ort)\/[^/]+\//, '/$1/');
}

function isVersioned(url) {
  const { pathname, searchParams } = new URL(url);
  return /^\/(static|ort)\/[^/]+\//.test(pathname) || (pathname.startsWith('/model/') && searchParams.has('v'));
}

async function remember(urls) {
  const cache = await caches.open(CACHE);
  const keep = new Set(urls);
  const keys = new Set(urls.map(fileKey));
  for (const request of await cache.keys()) {
    if (!keep.has(request.url) && keys.has(fileKey(request.url))) await cache.delete(request);
  }
  for (const url of urls) {
    if (!(await cache.match(url))) {
      const response = await fetch(url);
      if (response.ok) await cache.put(url, response);
    }
  }
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && (await cache.match(key))) await cache.put(key, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  return cached ?? fetch(request);
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  if (event.data?.type === 'cache' && Array.isArray(event.data.urls)) event.waitUntil(remember(event.data.urls));
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    event.respondWith(networkFirst(request, new URL('/', self.location.origin).href));
  } else if (isVersioned(request.url)) {
    event.respondWith(cacheFirst(request));
  } else {
    event.respondWith(networkFirst(request, request.url));
  }
});
