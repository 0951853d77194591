// Kyara in your own page: load an exported model folder by URL and generate anime faces in the browser.
// One ES module, no framework and no bundler; it needs onnxruntime-web's dist files served from your site.
//
//   import { loadGenerator, drawFace } from './node_modules/kyara/webapp/static/kyara.js';
//   const g = await loadGenerator('node_modules/kyara/models/default/');
//   const faces = await g.generate({ tags: ['blonde hair', 'red eyes'], n: 8, seed: 7 });
//   for (const face of faces) document.body.append(drawFace(document.createElement('canvas'), face));
//
// `g.variations(faces[2], { n: 8 })` gives that face and seven close to it (same tags, noise a small step away).
// `g.generate({ labels: { blush: 0.4, 'blonde hair': 0.7, 'pink hair': 0.3 }, n: 8 })` sets tags to numbers (the
// model's labels are floats: 0 off, 1 on, a mix of an exclusive group's tags summing to 1).
// `g.generate({ ..., scale: 4 })` gives the same faces at 256 px (for a 64 px model) through the waifu2x
// upscaler (`kyara upscaler`), downloaded the first time a scale above 1 is asked for.
//
// `tagsFromPhoto(file, g.manifest)` reads a photo of a person on the device (hair colour, eye colour, hair
// length, smile...) and resolves to { tags, confidence, face }: `g.generate({ tags })` draws characters with
// them (photo.js; its library is downloaded on the first photo, never before).
//
// The sampling is Python's (`export.runtime.Generator`): the same seed and tags give the same labels and
// the same noise as `Generator("models/default").generate(tags=[...], n=8, seed=7)`, drawn with a twin of
// numpy's default_rng, and the same tag spellings and errors (TagError) as `Vocabulary.parse`. The Kyara
// page is built on this module. docs/model-contract.md ("The JavaScript module") describes it in full.

import { LoadError, defaultThreads, loadEngine, loadUpscalerEngine } from './engine.js';
import { NumpyRandom, randomSeed } from './numpy-random.js';
import { TagError, parseTags, sampleLabels } from './vocab.js';

export { LoadError, TagError };
export { PhotoError, loadPhotoReader, tagsFromPhoto } from './photo.js';

/** Where npm puts onnxruntime-web beside this package (node_modules/kyara/webapp/static/ -> node_modules/). */
const DEFAULT_ORT_BASE = new URL('../../../onnxruntime-web/dist/', import.meta.url).href;

const folder = (url) => new URL(String(url).endsWith('/') ? String(url) : `${url}/`, location.href).href;

/** The sizes a face can be drawn at, in multiples of the model's resolution (above 1: through the upscaler). */
export const SCALES = [1, 2, 4];

function checkScale(scale) {
  if (!SCALES.includes(scale)) throw new RangeError(`scale must be 1, 2 or 4, got ${scale}`);
}

/** Let the page draw and take input between two long runs (one face's upscaling is one run). */
const yieldToPage = () => new Promise((resolve) => { setTimeout(resolve, 0); });

/** The manifest.json of the model folder at `modelUrl`, checked for what the generator needs. */
export async function fetchManifest(modelUrl) {
  const manifest = await fetchJson(modelUrl, 'the model manifest');
  checkManifest(manifest, new URL('manifest.json', folder(modelUrl)).href);
  return manifest;
}

async function fetchJson(folderUrl, what) {
  const url = new URL('manifest.json', folder(folderUrl)).href;
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new LoadError(`Could not download ${what} (${url}): ${err.message}.`);
  }
  if (!response.ok) throw new LoadError(`Could not download ${what} (${url}): HTTP ${response.status}.`);
  try {
    return await response.json();
  } catch {
    throw new LoadError(`${url} is not JSON: is the URL a folder made by \`kyara export\` or \`kyara upscaler\`?`);
  }
}

function checkManifest(manifest, url) {
  for (const key of ['tags', 'groups', 'noise_dim', 'resolution', 'file']) {
    if (!(key in manifest)) throw new LoadError(`${url}: the manifest has no '${key}'`);
  }
  for (const group of manifest.groups) {
    if (!Array.isArray(group.priors) || group.priors.length !== group.tags.length) {
      throw new LoadError(`${url}: the group '${group.name}' has no priors for its tags`);
    }
  }
}

/** The manifest's variants; a manifest without any lists its default file as the only one. */
export function variantsOf(manifest) {
  return manifest.variants?.length ? manifest.variants
    : [{ file: manifest.file, precision: 'default', sha256: manifest.sha256, bytes: null }];
}

function pickVariant(manifest, wanted, url) {
  const all = variantsOf(manifest);
  if (wanted === undefined) return all.find((v) => v.file === manifest.file) ?? all[0];
  const found = all.find((v) => v.file === wanted || v.precision === wanted);
  if (!found) {
    const listed = all.map((v) => `${v.precision} (${v.file})`).join(', ');
    throw new LoadError(`${url}: no model variant '${wanted}'; the manifest lists ${listed}`);
  }
  return found;
}

/**
 * The angle (radians) between a face's noise and each of its variations (varyNoise), chosen by looking at
 * the bundled model's faces: at 0.2 they look the same; at 0.6 (cosine 0.83) they are recognisably the
 * same character with the mouth, fringe and tilt of the head visibly moved, their mean pixel distance from
 * the face 0.35 to 0.58 of that of faces of unrelated noise and the same labels; at 1 some turn into
 * another character.
 */
export const VARIATION_ANGLE = 0.6;

/**
 * n rows of noise near `noise` (a Float32Array of n*Z; Z = noise.length), for faces that are variations of
 * one face (MakeGirls.moe's "perturb"). Row 0 is `noise` itself. Row i >= 1 turns `noise` by `angle`
 * radians towards row i-1 of default_rng(seed).standard_normal((n-1, Z), float32), made orthogonal to
 * `noise` and scaled to its length: cos(angle) * noise + sin(angle) * u. Each row keeps the length of
 * `noise` (where Gaussian noise lies: a variation of a variation neither shrinks nor grows) and has cosine
 * cos(angle) with it. The same noise, n, seed and angle give the same rows, and the first k rows do not
 * depend on n.
 */
export function varyNoise(noise, { n, seed, angle = VARIATION_ANGLE }) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be at least 1, got ${n}`);
  if (!Number.isFinite(angle)) throw new RangeError(`angle must be a number of radians, got ${angle}`);
  const Z = noise.length;
  const length = Math.hypot(...noise);
  if (!(length > 0) || !Number.isFinite(length)) throw new RangeError('noise to vary must be finite and not all zero');
  const directions = new NumpyRandom(seed).standardNormal((n - 1) * Z);
  const out = new Float32Array(n * Z);
  out.set(noise);
  for (let i = 1; i < n; i++) {
    const eps = directions.subarray((i - 1) * Z, i * Z);
    let along = 0;
    for (let j = 0; j < Z; j++) along += eps[j] * noise[j];
    along /= length * length;
    const u = Array.from(eps, (e, j) => e - along * noise[j]);   // the part of eps orthogonal to noise
    const scale = (Math.sin(angle) * length) / Math.hypot(...u);
    for (let j = 0; j < Z; j++) out[i * Z + j] = Math.cos(angle) * noise[j] + scale * u[j];
  }
  return out;
}

/**
 * `labels` given as numbers (Generator.inputs): an object { tag name: number } sets those tags in every row
 * of `drawn` (Float32Array n*T, changed in place), an exclusive or at-most-one group with any of its tags
 * named having its other tags 0; an array of T numbers is every row's labels, and n rows of T (or one flat
 * list of n*T) are the rows themselves. Every number must be finite (RangeError); names are read as tags are.
 */
function applyLabels(manifest, drawn, n, labels) {
  const T = manifest.tags.length;
  const finite = (value, what) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`${what} must be a finite number, got ${String(value)}`);
    return value;
  };
  if (Array.isArray(labels) || ArrayBuffer.isView(labels)) {
    const { flat, rows, shape } = readNoise(labels);
    const one = rows === null && flat.length === T;
    if (!one && ((rows ?? n) !== n || flat.length !== n * T)) {
      throw new RangeError(`labels have shape ${shape}; this model takes ${T} labels per face (shape (${n}, ${T}) for n=${n}, or (${T},))`);
    }
    const values = rows ? labels.flatMap((row) => Array.from(row)) : Array.from(labels);
    values.forEach((value, i) => finite(value, `label ${i % T} (${manifest.tags[i % T]})`));
    if (!flat.every(Number.isFinite)) throw new RangeError('labels must be finite as float32 numbers');
    for (let i = 0; i < n; i++) drawn.set(one ? flat : flat.subarray(i * T, (i + 1) * T), i * T);
    return;
  }
  if (labels === null || typeof labels !== 'object') {
    throw new RangeError(`labels must be numbers: { tag: number } or rows of ${T} numbers, got ${String(labels)}`);
  }
  const column = new Map(manifest.tags.map((tag, i) => [tag, i]));
  const set = new Map();
  for (const [name, value] of Object.entries(labels)) {
    const [tag] = parseTags(manifest, [name]);
    set.set(column.get(tag), finite(value, `the value of '${tag}'`));
  }
  for (const group of manifest.groups) {
    if (!(group.exclusive || group.at_most_one)) continue;
    const cols = group.tags.map((tag) => column.get(tag));
    if (cols.some((col) => set.has(col))) for (const col of cols) if (!set.has(col)) set.set(col, 0);
  }
  for (let i = 0; i < n; i++) for (const [col, value] of set) drawn[i * T + col] = value;
}

/** Noise given as n rows or one flat list: its numbers (Float32Array), rows (null if flat) and shape text. */
function readNoise(values) {
  const rows = Array.isArray(values) && (Array.isArray(values[0]) || ArrayBuffer.isView(values[0]));
  const flat = Float32Array.from(rows ? values.flatMap((row) => Array.from(row)) : values);
  const shape = rows ? `(${values.length}, ${values[0].length})` : `(${flat.length},)`;
  return { flat, rows: rows ? values.length : null, shape };
}

/**
 * Load the model folder at `modelUrl` (the folder with manifest.json) and onnxruntime-web.
 *
 * options (all optional):
 *   ortBase     URL of onnxruntime-web's dist folder (default: node_modules/onnxruntime-web/dist/ beside
 *               this package, where npm installs it)
 *   variant     'int8', 'fp32' or a file name of the manifest's variants (default: the manifest's `file`)
 *   threads     WebAssembly threads (default: up to 4 when the page is cross-origin isolated, else 1)
 *   webgpu      false to stay on WebAssembly even where the browser offers WebGPU (default: true)
 *   onProgress  (kind, loaded, total) while downloading, kind 'wasm', 'model' or 'upscaler' (total 0: not
 *               known)
 *   manifest    the folder's manifest, if the caller has fetched it already (fetchManifest)
 *   upscaler    URL of the upscaler folder (`kyara upscaler`) that scale 2 and 4 use, downloaded the first
 *               time they are asked for (default: ../upscaler/ beside the model folder, where the
 *               repository and the npm package keep it)
 * Rejects with a LoadError saying what could not be downloaded or started.
 */
export async function loadGenerator(modelUrl, options = {}) {
  const base = folder(modelUrl);
  const manifest = options.manifest ?? await fetchManifest(base);
  const variant = pickVariant(manifest, options.variant, new URL('manifest.json', base).href);
  const modelFileUrl = versioned(variant, base);
  const runtime = {
    ortBase: options.ortBase ?? DEFAULT_ORT_BASE,
    threads: options.threads ?? defaultThreads(),
    webgpu: options.webgpu,
    onProgress: options.onProgress,
  };
  const engine = await loadEngine({
    ...runtime,
    modelUrl: modelFileUrl,
    modelSize: variant.bytes || 0,
    what: `the model ${variant.file}`,
    noiseDim: manifest.noise_dim,
    tagCount: manifest.tags.length,
    resolution: manifest.resolution,
    sessionConfig: variant.session_config,
  });
  const upscalerUrl = folder(options.upscaler ?? new URL('../upscaler/', base).href);
  return new Generator(manifest, variant, engine, modelFileUrl, { ...runtime, upscalerUrl });
}

/** A model file's URL in its folder, with the manifest's sha256 as ?v= (what makes it cacheable for good). */
const versioned = (variant, base) => new URL(`${encodeURIComponent(variant.file)}?v=${variant.sha256 || ''}`, base).href;

/** Download and start the upscaler folder at `url` (a manifest with scale 2 and its default file). */
async function loadUpscaler(url, runtime) {
  const manifest = await fetchJson(url, 'the upscaler manifest');
  const where = new URL('manifest.json', url).href;
  if (manifest?.scale !== 2 || typeof manifest.file !== 'string') {
    throw new LoadError(`${where}: not an x2 upscaler made by \`kyara upscaler\``);
  }
  const variant = pickVariant(manifest, undefined, where);
  const fileUrl = versioned(variant, url);
  const engine = await loadUpscalerEngine({
    ...runtime, modelUrl: fileUrl, modelSize: variant.bytes || 0, what: `the upscaler ${variant.file}`,
    sessionConfig: variant.session_config,
  });
  return { manifest, variant, engine, urls: [...engine.urls, fileUrl, where] };   // `where`: offline, too
}

/**
 * A loaded model. Faces are { pixels (Uint8ClampedArray, RGBA rows: an ImageData's layout), width,
 * height, tags (the tags on), labels, noise (Float32Array), seed, index (its row in the batch) }.
 */
export class Generator {
  constructor(manifest, variant, engine, modelUrl, runtime = {}) {
    this.manifest = manifest;
    this.variant = variant;                  // the manifest's `variants` entry loaded
    this.modelUrl = modelUrl;
    this.backend = engine.backend;           // 'WebGPU' or 'WASM'
    this.threads = engine.threads;           // WebAssembly threads (null on WebGPU)
    this.modelBytes = engine.modelBytes;
    this.urls = [...engine.urls, modelUrl];  // every file downloaded for it (to cache for offline use)
    this.engine = engine;
    this.runtime = runtime;                  // loadGenerator's options the upscaler is loaded with
    this.upscaling = null;                   // Promise of the loaded upscaler, from its first use on
  }

  /**
   * The upscaler, downloaded and started on first use: { manifest, variant, engine, urls }. A failed
   * download may be retried by asking again.
   */
  loadUpscaler() {
    if (!this.upscaling) {
      this.upscaling = loadUpscaler(this.runtime.upscalerUrl, this.runtime);
      this.upscaling.then(({ urls }) => this.urls.push(...urls), () => { this.upscaling = null; });
    }
    return this.upscaling;
  }

  /**
   * `faces` (this model's, or any { pixels, width, height }) at `scale` (1, 2 or 4) times their size, one
   * face per run of the upscaler with the page free to draw between runs; onProgress(done, total) after
   * each face. Each face keeps its other fields (noise, labels, tags...). x4 is the x2 upscaler twice.
   */
  async upscale(faces, scale, { onProgress = () => {} } = {}) {
    checkScale(scale);
    if (scale === 1) return faces;
    const { engine } = await this.loadUpscaler();
    const passes = Math.log2(scale);
    const out = [];
    for (const [i, face] of faces.entries()) {
      let { pixels, width, height } = face;
      for (let pass = 0; pass < passes; pass++) {
        await yieldToPage();
        pixels = await engine.run(pixels, 1, height, width);
        width *= 2;
        height *= 2;
      }
      out.push({ ...face, pixels: new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.length), width, height });
      onProgress(i + 1, faces.length);
    }
    return out;
  }

  /** Tag names in label order. */
  get tags() { return [...this.manifest.tags]; }

  /** A tag text ("silver hair, red eyes") or list as the model's tag names; TagError if it cannot be. */
  parseTags(tags) { return parseTags(this.manifest, tags); }

  /** The first n rows of noise of `seed` (numpy: default_rng(seed).standard_normal((n, Z), float32)). */
  noise(seed, n = 1) {
    return new NumpyRandom(seed).standardNormal(n * this.manifest.noise_dim);
  }

  /**
   * The model's inputs for `generate`, without running it: { noise, labels (Float32Array n*Z and n*T),
   * n, seed } (export.runtime's Generator.inputs). n defaults to the number of noise rows given, else 1;
   * seed to a random one (returned). The noise is drawn even when `noise` is given, so the labels are
   * those of the seed either way. `labels` (numbers: { tag: value }, or T numbers, or n rows of T) then
   * replaces drawn values (applyLabels): { blush: 0.4 }, or { 'blonde hair': 0.7, 'pink hair': 0.3 } for
   * a mix of an exclusive group. The numbers are used as given: 0 and 1 are off and on, and in training
   * each exclusive group summed to 1.
   */
  inputs({ tags = [], labels, n, seed, noise } = {}) {
    const Z = this.manifest.noise_dim;
    const given = noise === undefined || noise === null ? null : readNoise(noise);
    n ??= given?.rows ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be at least 1, got ${n}`);
    const chosen = this.parseTags(tags);
    seed ??= randomSeed();
    const rng = new NumpyRandom(seed);
    let drawn = rng.standardNormal(n * Z);
    if (given) {
      if ((given.rows ?? n) !== n || given.flat.length !== n * Z) {   // rows, or one flat list of n*Z
        throw new RangeError(`noise has shape ${given.shape}; this model takes noise of shape (${n}, ${Z}) for n=${n}`);
      }
      drawn = given.flat;
    }
    const drawnLabels = sampleLabels(this.manifest, n, rng, chosen);
    if (labels !== undefined && labels !== null) applyLabels(this.manifest, drawnLabels, n, labels);
    return { noise: drawn, labels: drawnLabels, n, seed };
  }

  /** The model's RGBA bytes (Uint8Array n*R*R*4) for n rows of noise and labels (Float32Arrays). */
  run(noise, labels, n) {
    return this.engine.run(noise, labels, n);
  }

  /**
   * n faces with `tags` on (a list or a text) and every other group drawn from the manifest's priors:
   * generate({ tags: ['blonde hair', 'red eyes'], n: 8, seed: 7 }); `labels` sets tags to numbers
   * ({ blush: 0.5 }). Options as `inputs`, and scale (1, 2
   * or 4: the faces at that many times the model's resolution, through the upscaler) with onProgress(done,
   * total) while upscaling; throws a TagError for an unknown tag or two tags of one exclusive group, or a
   * RangeError for another scale, before anything runs.
   */
  async generate({ scale = 1, onProgress, ...options } = {}) {
    checkScale(scale);
    const { noise, labels, n, seed } = this.inputs(options);
    const faces = this.faces(noise, labels, await this.run(noise, labels, n), seed);
    return this.upscale(faces, scale, { onProgress });
  }

  /**
   * n faces that are variations of `face` (one of this model's faces, or any { noise, labels }): the
   * first is `face` redrawn, the others have its labels and noise moved by varyNoise (options n, default
   * 8, seed, default a random one, on the faces, and angle, default VARIATION_ANGLE; scale and onProgress as
   * generate's).
   */
  async variations(face, { n = 8, seed = randomSeed(), angle, scale = 1, onProgress } = {}) {
    checkScale(scale);
    const T = this.manifest.tags.length;
    if (face.labels.length !== T || face.noise.length !== this.manifest.noise_dim) {
      throw new RangeError(`a face of this model has ${this.manifest.noise_dim} noise values and ${T} labels, `
        + `got ${face.noise.length} and ${face.labels.length}`);
    }
    const noise = varyNoise(Float32Array.from(face.noise), { n, seed, angle });
    const labels = new Float32Array(n * T);
    for (let i = 0; i < n; i++) labels.set(face.labels, i * T);
    return this.upscale(this.faces(noise, labels, await this.run(noise, labels, n), seed), scale, { onProgress });
  }

  /** Split a batch into faces (see the class comment). */
  faces(noise, labels, pixels, seed = null) {
    const { noise_dim: Z, resolution: R, tags } = this.manifest;
    const T = tags.length, size = R * R * 4;
    return Array.from({ length: labels.length / T }, (_, i) => {
      const row = labels.slice(i * T, (i + 1) * T);
      return {
        pixels: new Uint8ClampedArray(pixels.slice(i * size, (i + 1) * size).buffer),
        width: R, height: R,
        tags: tags.filter((_, j) => row[j] > 0.5),
        labels: row,
        noise: noise.slice(i * Z, (i + 1) * Z),
        seed, index: i,
      };
    });
  }

  /** Free the model (and the upscaler, if loaded) once the runs already queued are done; later runs fail. */
  async release() {
    const upscaler = this.upscaling && await this.upscaling.catch(() => null);
    await Promise.all([this.engine.release(), upscaler?.engine.release()]);
  }
}

/** Draw one face into `canvas` at its own size (64 px for the bundled model, 128 or 256 px upscaled). */
export function drawFace(canvas, face) {
  canvas.width = face.width;
  canvas.height = face.height;
  const pixels = face.pixels instanceof Uint8ClampedArray ? face.pixels : Uint8ClampedArray.from(face.pixels);
  canvas.getContext('2d').putImageData(new ImageData(pixels, face.width, face.height), 0, 0);
  return canvas;
}
