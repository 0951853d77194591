// Service worker: makes the page work offline after the first visit, and cross-origin isolated on a host
// that cannot send the headers for it.
//
// Isolation: multi-threaded WebAssembly needs the page cross-origin isolated (COOP + COEP headers).
// `kyara serve` sends them; a static host (GitHub Pages and the like) cannot. So every same-origin answer
// this worker hands the page gets them when the host left them out: from the second visit on (the first
// one installs the worker), the page is isolated wherever a service worker runs.
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
//
// URLs are read relative to the worker's scope, so a static build works from a sub-folder of a site:
// static/<v>/..., ort/<v>/..., photo/<v>/... and, in a static build, model/<v>/... and upscaler/<v>/... carry
// their version in the path; `kyara serve`'s model and upscaler files carry it in ?v=<sha256>. The upscaler's
// files are handed over only once a visitor has asked for HD faces, the photo reader's once a photo was read
// (the reader's files only: a photo is never cached, nor sent anywhere).

const CACHE = 'kyara';
const SCOPE = new URL(self.registration.scope);
const IN_VERSIONED_FOLDER = /^(static|ort|model|upscaler|photo)\/[^/]+\/(.+)$/;
const WITH_SHA256 = /^(model|upscaler)\//;   // kyara serve's folders whose files carry ?v=<sha256>

/** The URL's path below the scope ('' for the page itself). */
function local(url) {
  const { pathname } = new URL(url);
  return pathname.startsWith(SCOPE.pathname) ? pathname.slice(SCOPE.pathname.length) : pathname;
}

/** A URL without its version: static/<v>/app.js -> static/app.js, model/x.onnx?v=sha -> model/x.onnx */
function fileKey(url) {
  return local(url).replace(IN_VERSIONED_FOLDER, '$1/$2');
}

/** A URL whose content never changes: a version folder in the path, or a model file's sha256 in ?v=. An
 * empty ?v= (a manifest without sha256) names no version: that file is fetched network-first. */
function isVersioned(url) {
  const path = local(url);
  return IN_VERSIONED_FOLDER.test(path) || (WITH_SHA256.test(path) && Boolean(new URL(url).searchParams.get('v')));
}

/**
 * `response` with the cross-origin isolation headers, where the host did not send them. The body a
 * fetch() gives is already decoded, so a Content-Encoding the host sent no longer applies to it.
 */
function isolated(response) {
  if (response.type === 'opaque' || response.type === 'opaqueredirect' || response.headers.has('Cross-Origin-Embedder-Policy')) {
    return response;
  }
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  if (headers.has('Content-Encoding')) {
    headers.delete('Content-Encoding');
    headers.delete('Content-Length');
  }
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
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
    event.respondWith(networkFirst(request, SCOPE.href).then(isolated));
  } else if (isVersioned(request.url)) {
    event.respondWith(cacheFirst(request).then(isolated));
  } else {
    event.respondWith(networkFirst(request, request.url).then(isolated));
  }
});
