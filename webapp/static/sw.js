// Service worker: makes the page work offline after the first visit.
//
// The page posts the exact URLs it used ({type: 'cache', urls}, optionally with a MessagePort that is
// told {ok, error} when done); they are cached, and any older entry for the same file (another static
// version, onnxruntime-web version or model sha256) is dropped, so a new model replaces the old one
// instead of piling up. Versioned URLs are served cache-first; the page and the manifest network-first,
// falling back to the cache when offline.
//
// The cache always holds a set that works together: only remember() writes to it, and it stores the new
// versioned files (new URLs, so the old set is untouched) before the page and manifest that point at them,
// and deletes the old versions last. A connection lost half-way leaves the previous set whole.

const CACHE = 'kyara';

/** A URL without its version: /static/<v>/app.js -> /static/app.js, /model/x.onnx?v=sha -> /model/x.onnx */
function fileKey(url) {
  const { pathname } = new URL(url);
  return pathname.replace(/^\/(static|ort)\/[^/]+\//, '/$1/');
}

/** A URL whose content never changes: a static or ort version in the path, or a model file's sha256 in
 * ?v=. An empty ?v= (a manifest without sha256) names no version: that file is fetched network-first. */
function isVersioned(url) {
  const { pathname, searchParams } = new URL(url);
  return /^\/(static|ort)\/[^/]+\//.test(pathname) || (pathname.startsWith('/model/') && Boolean(searchParams.get('v')));
}

async function download(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

async function remember(urls) {
  const cache = await caches.open(CACHE);
  // 1. New versioned files, under their own URLs: the old set keeps working meanwhile.
  for (const url of urls.filter(isVersioned)) {
    if (!(await cache.match(url))) await cache.put(url, await download(url));
  }
  // 2. The page and the manifest (always refreshed), downloaded in full before either is replaced.
  const fresh = [];
  for (const url of urls.filter((u) => !isVersioned(u))) fresh.push([url, await download(url)]);
  for (const [url, response] of fresh) await cache.put(url, response);
  // 3. Only now the older versions of the same files.
  const keep = new Set(urls);
  const keys = new Set(urls.map(fileKey));
  for (const request of await cache.keys()) {
    if (!keep.has(request.url) && keys.has(fileKey(request.url))) await cache.delete(request);
  }
}

/** The network's answer, else the cached copy. Never writes the cache: remember() keeps it consistent. */
async function networkFirst(request, key) {
  try {
    return await fetch(request);
  } catch (err) {
    const cached = await caches.match(key);
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
  if (event.data?.type !== 'cache' || !Array.isArray(event.data.urls)) return;
  const reply = (message) => event.ports[0]?.postMessage(message);
  event.waitUntil(remember(event.data.urls).then(
    () => reply({ ok: true }),
    (err) => { console.warn('offline cache not updated:', err); reply({ ok: false, error: String(err) }); },
  ));
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
