// onnxruntime-web and one model file, turned into a function from noise + labels to RGBA pixels.
// WebGPU when the browser gives an adapter (and the caller allows it), otherwise WebAssembly, with threads
// when the page is cross-origin isolated. Used through kyara.js, the module for other pages.

const WASM_BUILD = { module: 'ort.wasm.min.mjs', mjs: 'ort-wasm-simd-threaded.mjs', wasm: 'ort-wasm-simd-threaded.wasm' };
// The WebGPU build needs the ~27 MB asyncify wasm: fetched only when an adapter exists.
const WEBGPU_BUILD = {
  module: 'ort.webgpu.min.mjs', mjs: 'ort-wasm-simd-threaded.asyncify.mjs', wasm: 'ort-wasm-simd-threaded.asyncify.wasm',
};

/** An error a page can show as is: what failed and what to do. */
export class LoadError extends Error {
  constructor(message) {
    super(message);
    this.name = 'LoadError';
  }
}

/**
 * fetch() that reports progress (bytes so far, total) and fails with a readable message. `size` is the
 * file's size where the caller knows it: a compressed response's Content-Length counts the compressed
 * bytes, not the ones read here, so without `size` its total is 0 (unknown).
 */
async function fetchBytes(url, what, onProgress = () => {}, size = 0) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new LoadError(`Could not download ${what} (${url}): ${err.message}. Check the connection and reload.`);
  }
  if (!response.ok) {
    throw new LoadError(`Could not download ${what} (${url}): HTTP ${response.status} ${response.statusText}.`);
  }
  const encoded = response.headers.has('Content-Encoding');
  const total = size || (encoded ? 0 : Number(response.headers.get('Content-Length')) || 0);
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

/** Threads worth asking for: several only where the page is cross-origin isolated (shared memory). */
export function defaultThreads() {
  if (!self.crossOriginIsolated) return 1;
  return Math.min(4, Math.max(2, navigator.hardwareConcurrency || 2));
}

/**
 * Load the runtime and one generator file.
 * options: ortBase (URL folder of onnxruntime-web's dist files), modelUrl, modelSize (bytes, for the
 * progress; 0 if unknown), what (the model's name in messages), noiseDim, tagCount, resolution, threads,
 * sessionConfig (the variant's `session_config`: onnxruntime config entries, e.g. the compact variant's
 * { 'session.disable_quant_qdq': '1' }, which folds its stored weights into fp32 ones once, at load),
 * webgpu (false: WebAssembly only), onProgress(kind, loaded, total) with kind 'wasm' or 'model'.
 * Returns { backend, threads, urls (the onnxruntime-web files used), modelBytes, run(noise, labels, n),
 * release() }. A WebGPU adapter that then fails to run the model falls back to WebAssembly.
 */
export function loadEngine(options) {
  return withFallback(options, async (build, adapter) => {
    const { noiseDim: Z, tagCount: T, resolution: R } = options;
    const opened = await openSession(build, adapter, options, 'model');
    /** noise: Float32Array n*Z, labels: Float32Array n*T -> Uint8Array n*R*R*4 (RGBA rows). */
    opened.run = (noise, labels, n) => {
      if (noise.length !== n * Z || labels.length !== n * T) {
        return Promise.reject(new Error(`expected ${n}x${Z} noise and ${n}x${T} labels`));
      }
      return opened.serial(async (ort, session) => {
        const feeds = {
          noise: new ort.Tensor('float32', noise, [n, Z]),
          labels: new ort.Tensor('float32', labels, [n, T]),
        };
        const pixels = (await session.run(feeds, ['rgba'])).rgba.data;
        if (pixels.length !== n * R * R * 4) throw new Error(`the model returned ${pixels.length} values`);
        return pixels;
      });
    };
    return opened;
  });
}

/**
 * Load the runtime (the one a generator already loaded, if any) and an upscaler file (`kyara upscaler`:
 * RGBA bytes in, RGBA bytes at twice the size out). options as loadEngine's without noiseDim, tagCount and
 * resolution; onProgress's kind is 'upscaler'. Returns { backend, threads, urls, modelBytes,
 * run(rgba, n, height, width) -> Uint8Array n*2H*2W*4, release() }.
 */
export function loadUpscalerEngine(options) {
  return withFallback(options, async (build, adapter) => {
    const opened = await openSession(build, adapter, options, 'upscaler');
    opened.run = (rgba, n, height, width) => {
      if (rgba.length !== n * height * width * 4) {
        return Promise.reject(new Error(`expected ${n}x${height}x${width}x4 RGBA bytes, got ${rgba.length}`));
      }
      return opened.serial(async (ort, session) => {
        const feeds = { rgba_in: new ort.Tensor('uint8', Uint8Array.from(rgba), [n, height, width, 4]) };
        const pixels = (await session.run(feeds, ['rgba'])).rgba.data;
        if (pixels.length !== n * height * width * 16) throw new Error(`the upscaler returned ${pixels.length} values`);
        return pixels;
      });
    };
    return opened;
  });
}

/** WebGPU where the browser gives an adapter (and the caller allows it), else WebAssembly. */
async function withFallback(options, load) {
  const adapter = options.webgpu === false ? null : await webgpuAdapter();
  if (adapter) {
    try {
      return await load(WEBGPU_BUILD, adapter);
    } catch (err) {
      console.warn('WebGPU failed, falling back to WebAssembly:', err);
    }
  }
  return load(WASM_BUILD, null);
}

// One runtime per build and folder for the life of the page: onnxruntime-web initialises its wasm only
// once, so a second model reuses it.
const runtimes = new Map();

function loadRuntime(build, adapter, ortBase, threads, onProgress) {
  const base = new URL(ortBase, location.href);
  const key = new URL(build.module, base).href;
  if (!runtimes.has(key)) {
    const promise = (async () => {
      // The wasm is handed over as bytes (downloaded here for the progress bar, beside the module): a URL
      // would be downloaded again, because a browser's in-memory cache (private windows) does not keep
      // a 14 MB file.
      const wasm = fetchBytes(new URL(build.wasm, base).href, 'the WebAssembly runtime',
        (loaded, total) => onProgress('wasm', loaded, total));
      wasm.catch(() => {});  // awaited below; a failed import is the error to report first
      let ort;
      try {
        ort = await import(key);
      } catch (err) {
        throw new LoadError(`Could not load onnxruntime-web from ${key}: ${err.message}. Is ortBase the folder `
          + 'of its dist files (node_modules/onnxruntime-web/dist/)?');
      }
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.wasmPaths = { mjs: new URL(build.mjs, base).href };
      ort.env.wasm.wasmBinary = await wasm;
      if (adapter) ort.env.webgpu.adapter = adapter;
      return ort;
    })();
    runtimes.set(key, promise);
    promise.catch(() => runtimes.delete(key));  // a failed download may be retried
  }
  return runtimes.get(key);
}

/**
 * The runtime of `build` and one ONNX file as a session that runs one call at a time: { backend, threads,
 * urls, modelBytes, serial(work), release() }, where serial(work) queues work(ort, session) after the calls
 * already queued (a session is not re-entrant) and returns its result.
 */
async function openSession(build, adapter, options, kind) {
  const { ortBase, modelUrl, modelSize, what } = options;
  const onProgress = options.onProgress ?? (() => {});
  const threads = self.crossOriginIsolated ? options.threads ?? defaultThreads() : 1;
  const [ort, modelBytes] = await Promise.all([  // the runtime and the model download side by side
    loadRuntime(build, adapter, ortBase, threads, onProgress),
    fetchBytes(modelUrl, what, (loaded, total) => onProgress(kind, loaded, total), modelSize),
  ]);

  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: [adapter ? 'webgpu' : 'wasm'],
      graphOptimizationLevel: 'all',
      extra: { ...options.sessionConfig },  // flat "session.x" keys are passed on as they are
    });
  } catch (err) {
    throw new LoadError(`Could not start ${what}: ${err.message ?? err}`);
  }

  let queue = Promise.resolve();
  let released = false;
  const base = new URL(ortBase, location.href);
  return {
    backend: adapter ? 'WebGPU' : 'WASM',
    threads: adapter ? null : ort.env.wasm.numThreads,
    urls: [build.module, build.mjs, build.wasm].map((name) => new URL(name, base).href),
    modelBytes: modelBytes.length,
    serial(work) {
      if (released) return Promise.reject(new Error(`${what} was unloaded`));
      const result = queue.then(() => work(ort, session));
      queue = result.catch(() => {});
      return result;
    },
    /** Free the session once the runs already queued on it are done; later run() calls fail. */
    release() {
      released = true;
      return queue.then(() => session.release());
    },
  };
}
