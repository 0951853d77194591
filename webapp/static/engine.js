// The generator in the browser: loads onnxruntime-web and the model, then turns noise + labels into
// RGBA pixels. WebGPU when the browser gives an adapter, otherwise multi-threaded WebAssembly.

const WASM_BUILD = { module: 'ort.wasm.min.mjs', mjs: 'ort-wasm-simd-threaded.mjs', wasm: 'ort-wasm-simd-threaded.wasm' };
// The WebGPU build needs the ~27 MB asyncify wasm: fetched only when an adapter exists.
const WEBGPU_BUILD = {
  module: 'ort.webgpu.min.mjs', mjs: 'ort-wasm-simd-threaded.asyncify.mjs', wasm: 'ort-wasm-simd-threaded.asyncify.wasm',
};

/** An error the page shows as is: what failed and what to do. */
export class LoadError extends Error {}

/**
 * fetch() that reports progress (bytes so far, total) and fails with a readable message.
 */
export async function fetchBytes(url, what, onProgress = () => {}) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new LoadError(`Could not download ${what} (${url}): ${err.message}. Check the connection and reload.`);
  }
  if (!response.ok) {
    throw new LoadError(`Could not download ${what} (${url}): HTTP ${response.status} ${response.statusText}.`);
  }
  const total = Number(response.headers.get('Content-Length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  onProgress(loaded, loaded);
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

async function webgpuAdapter() {
  if (!navigator.gpu) return null;
  try {
    return await navigator.gpu.requestAdapter();
  } catch {
    return null;
  }
}

/**
 * Load the runtime and one model variant.
 * options: ortBase (URL folder of onnxruntime-web), manifest, variant (a manifest `variants` entry),
 * threads, onProgress(kind, loaded, total) with kind 'wasm' or 'model'.
 * Returns { backend, threads, files (the ort files used), variant, modelBytes, modelUrl,
 *           generate(noise, labels, n), release() }.
 * A WebGPU adapter that then fails to run the model falls back to WebAssembly.
 */
export async function loadEngine(options) {
  const adapter = await webgpuAdapter();
  if (adapter) {
    try {
      return await loadWith(WEBGPU_BUILD, adapter, options);
    } catch (err) {
      console.warn('WebGPU failed, falling back to WebAssembly:', err);
    }
  }
  return loadWith(WASM_BUILD, null, options);
}

// One runtime per build for the life of the page: onnxruntime-web initialises its wasm only once, so a
// second model variant reuses it.
const runtimes = new Map();

function loadRuntime(build, adapter, ortBase, threads, onProgress) {
  if (!runtimes.has(build.module)) {
    const promise = (async () => {
      const base = new URL(ortBase, location.href);
      let ort;
      try {
        ort = await import(new URL(build.module, base).href);
      } catch (err) {
        throw new LoadError(`Could not load onnxruntime-web (${build.module}): ${err.message}.`);
      }
      // Handed over as bytes (downloaded here for the progress bar): a URL would be downloaded again,
      // because a browser's in-memory cache (private windows) does not keep a 14 MB file.
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.wasmPaths = { mjs: new URL(build.mjs, base).href };
      ort.env.wasm.wasmBinary = await fetchBytes(new URL(build.wasm, base).href, 'the WebAssembly runtime',
        (loaded, total) => onProgress('wasm', loaded, total));
      if (adapter) ort.env.webgpu.adapter = adapter;
      return ort;
    })();
    runtimes.set(build.module, promise);
    promise.catch(() => runtimes.delete(build.module));  // a failed download may be retried
  }
  return runtimes.get(build.module);
}

async function loadWith(build, adapter, { ortBase, manifest, variant, threads, onProgress }) {
  const modelUrl = `model/${encodeURIComponent(variant.file)}?v=${variant.sha256 || ''}`;
  const [ort, modelBytes] = await Promise.all([  // the runtime and the model download side by side
    loadRuntime(build, adapter, ortBase, threads, onProgress),
    fetchBytes(modelUrl, `the model ${variant.file}`, (loaded, total) => onProgress('model', loaded, total)),
  ]);

  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: [adapter ? 'webgpu' : 'wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    throw new LoadError(`Could not start the model ${variant.file}: ${err.message ?? err}`);
  }

  const Z = manifest.noise_dim, T = manifest.tags.length, R = manifest.resolution;
  let queue = Promise.resolve();  // one run at a time: a session is not re-entrant
  let released = false;

  /** noise: Float32Array n*Z, labels: Float32Array n*T -> Uint8Array n*R*R*4 (RGBA rows). */
  function generate(noise, labels, n) {
    if (released) return Promise.reject(new Error(`the model ${variant.file} was unloaded`));
    if (noise.length !== n * Z || labels.length !== n * T) {
      return Promise.reject(new Error(`expected ${n}x${Z} noise and ${n}x${T} labels`));
    }
    const run = queue.then(async () => {
      const feeds = {
        noise: new ort.Tensor('float32', noise, [n, Z]),
        labels: new ort.Tensor('float32', labels, [n, T]),
      };
      const out = await session.run(feeds, ['rgba']);
      const pixels = out.rgba.data;
      if (pixels.length !== n * R * R * 4) throw new Error(`the model returned ${pixels.length} values`);
      return pixels;
    });
    queue = run.catch(() => {});
    return run;
  }

  return {
    backend: adapter ? 'WebGPU' : 'WASM',
    files: [build.module, build.mjs, build.wasm],
    threads: adapter ? null : ort.env.wasm.numThreads,
    variant,
    modelBytes: modelBytes.length,
    modelUrl,
    generate,
    /** Free the session once the runs already queued on it are done; later generate() calls fail. */
    release() {
      released = true;
      return queue.then(() => session.release());
    },
  };
}
