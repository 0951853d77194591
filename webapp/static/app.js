// The Kyara page: tag pickers, batches, variations, history, interpolation, downloads, share links,
// favourites, languages and characters from a photo.
//
// Test and scripting hook (part of the page's API; the browser tests and benchmarks use it):
//   window.kyara.ready             Promise: resolves with `info` once the model is loaded, rejects with
//                                  the load error (which the page also shows).
//   window.kyara.info              { backend: 'WebGPU'|'WASM', threads, crossOriginIsolated, model (file),
//                                    precision, modelBytes, resolution, noiseDim, tags, msPerImage, batch (of that timing),
//                                    firstImageMs (since navigation start) }
//   window.kyara.generate(noise, labels) -> Promise<Uint8Array> RGBA rows, N*R*R*4. noise: N arrays of
//                                  noise_dim numbers (or one flat array), labels: N arrays in manifest
//                                  tag order (1 on, 0 off, numbers between). Runs the same session as the page.
//   window.kyara.results()         the faces on screen: [{ ref, noise, labels, pixels }] as plain arrays.
//   window.kyara.noise(seed, i)    the noise the page uses for face i of seed `seed`: row i of numpy's
//                                  default_rng(seed).standard_normal((n, noise_dim), float32).
//   window.kyara.generator         the kyara.js Generator the page runs (see kyara.js).
//   window.kyara.upscale(pixels, scale) -> Promise<Uint8Array> one face's RGBA rows (R*R*4) at scale 2 or 4,
//                                  through the page's upscaler (downloaded on first use).
//   window.kyara.idle()            Promise: resolves once every queued job of the page (loading, a batch, a
//                                  model switch, an interpolation, a pasted link, drawing favourites) has finished.
//   window.kyara.favourites()      the favourites library as stored (favourites.js's items).
//   window.kyara.photo()           what the last photo read said (photo.js's tagsFromPhoto: tags, confidence,
//                                  face, faces, readings; never the photo), or null. info.photoReadMs and
//                                  info.photoToFaceMs: from choosing it to its tags, and to the batch drawn.
// Query parameters: ?threads=N overrides the wasm thread count. The URL hash is the share state: it always
// describes the batch on screen (seeds, batch size, tags, lock and model it was made with; for a batch of
// variations, the face varied and the variations' seed); a link pasted into the address bar is drawn as the
// next job. A part of a link that cannot be used (a bad lock, a tag or model this model folder lacks) is
// left out and named in a notice (#link-notice); the rest is drawn.
//
// The page runs one job at a time (a queue): the Generate button, the model menu and Interpolate are
// disabled while a job runs (Variations too), and a link pasted meanwhile waits for its turn.
//
// A batch's noise comes from the noise seed and its labels from the tag seed, each drawn as
// export.runtime draws them; with Random noise both seeds are one, so the batch on screen is what
// `kyara sample --seed S -n N --tags ...` (or kyara.js's generate()) gives for the tags set to On.
// Variations (the button beside the selected face) fill the batch with that face, then faces of its labels
// and of noise a small step from its noise (kyara.js's varyNoise, from a fresh seed each time).
//
// Advanced mode (the switch above the pickers, remembered): every tag a slider (pickers.js). A tag's value is
// written over the drawn labels; an exclusive group's weights are normalised to sum to 1 (an at-most-one
// group's with "none"), share.js's chosenTags. The share link carries the numbers (w, wn), so a visitor's page
// draws the same labels; a link with numbers turns advanced mode on. Values of exactly 0 and 1 are today's
// off and on, labels and pixels alike.
//
// Favourites (favourites.js, library.js): the star on a face, or on the selected face, keeps its noise and
// labels in localStorage; the panel redraws them on demand (when opened), rates them, saves one or all as a
// JSON file, and imports such files, checked first (a file refused changes nothing).
//
// Languages (i18n.js, i18n/*.js): every text of the page, chosen from the browser's languages or the switch
// in the header (remembered). Tag names are translated for display only: links and files keep the model's.
//
// From a photo (photo-page.js): the tags read from a photo become the choices, then a batch is drawn as the
// Generate button draws one. The photo stays in photo-page.js's memory only.
//
// HD (x2 or x4): the selected face, the interpolation strip and the PNG download, and the result grid when
// asked, are redrawn through the upscaler (kyara.js's upscale: one face per run, the page free between runs,
// a progress bar meanwhile). The upscaler is downloaded the first time HD is used, never before. Upscaled
// faces are kept per face and size, so switching back and forth costs nothing.

import {
  FILE_LIMIT, FileError, characterFile, favouriteOf, keyOf, labelsByName, libraryFile, load as loadFavourites, merge, openWith,
  parseFile, save as saveFavourites, STORAGE as FAVOURITES_KEY,
} from './favourites.js';
import {
  LANGUAGES, applyStatic, groupName, language, list, number, percent, pickLanguage, setLanguage, t, tagName,
} from './i18n.js';
import { LoadError, drawFace, fetchManifest, loadGenerator, variantsOf, varyNoise } from './kyara.js';
import { renderLibrary } from './library.js';
import { randomSeed } from './numpy-random.js';
import { setupPhoto } from './photo-page.js';
import { buildPickers, syncPickers } from './pickers.js';
import { chosenTags, decodeState, defaultChoices, encodeState, needsAdvanced, simpleChoice } from './share.js';

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const ORT_BASE = meta('kyara-ort-base');
const MODEL_BASE = meta('kyara-model-base');
const UPSCALER_BASE = meta('kyara-upscaler-base');
const PHOTO_BASE = meta('kyara-photo-base');
const HISTORY_LIMIT = 240;
const ADVANCED_KEY = 'kyara.advanced';

const state = {
  manifest: null, generator: null, choices: {}, seed: 0, tagSeed: 0, n: 8, lock: null,
  results: [], selected: null, a: null, b: null, hd: 1, frames: [],
  shown: null,  // the parameters of the batch on screen: the share link is made from these only
  advanced: false,
  notice: [],   // the keys of the link left out, named in #link-notice
  favourites: [],              // the library (favourites.js's items), newest first
  favouriteKeys: new Set(),    // their keyOf: which faces on screen are favourites
  favouriteFaces: new Map(),   // favourite id -> its face, drawn with the model loaded (never stored)
  photoUrls: [],               // the photo reader's files, once a photo was read (kept for offline use)
};
const info = {
  crossOriginIsolated: self.crossOriginIsolated, msPerImage: null, batch: null, firstImageMs: null, hdMsPerImage: null,
  photoReadMs: null, photoToFaceMs: null,
};
let photoPanel = null;   // photo-page.js's panel, once wired

// The manifest, for the photo panel: a photo chosen before the model's manifest is here waits for it.
let manifestLoaded;
const manifestReady = new Promise((resolve, reject) => { manifestLoaded = { resolve, reject }; });
manifestReady.catch(() => {});   // a failed download is shown by start()

// ---------------------------------------------------------------- loading

function showError(err) {
  const box = $('error');
  box.textContent = err instanceof LoadError ? err.message : t('error.generic', { message: err.message ?? err });
  box.hidden = false;
  $('loading').hidden = true;
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// What each share-link key holds (a message key), for the notice about the parts of a link left out.
const LINK_PARTS = {
  s: 'link.noiseSeed', t: 'link.tagSeed', n: 'link.batch', on: 'link.tags', off: 'link.tags', w: 'link.values',
  wn: 'link.values', lock: 'link.lock', m: 'link.model', v: 'link.variations', of: 'link.variations',
  y: 'link.variations', hd: 'link.hd',
};

/** The keys of a decoded link the page cannot use: decodeState's, and a model file it does not have. */
function unusable(shared) {
  const model = shared.model !== null && variantFor(shared.model).file !== shared.model ? ['m'] : [];
  return [...shared.dropped, ...model];
}

/** Say which parts of the link just read were left out (none: the notice goes). */
function showLinkNotice(keys) {
  state.notice = keys;
  const parts = [...new Set(keys.map((key) => LINK_PARTS[key]))].map((key) => t(key));
  $('link-notice').textContent = parts.length ? t('link.leftOut', { parts: list(parts) }) : '';
  $('link-notice').hidden = parts.length === 0;
}

// ---------------------------------------------------------------- one job at a time

let jobs = Promise.resolve();  // the tail of the queue; never rejects
let running = 0;               // jobs queued or running

/** Queue `work` after every earlier job; returns its result (or error). Controls are off meanwhile. */
function job(work) {
  running += 1;
  updateControls();
  const run = jobs.then(work).finally(() => {
    running -= 1;
    updateControls();
  });
  jobs = run.catch(() => {});
  return run;
}

/** A job started by the user: errors are shown on the page. */
function userJob(work) {
  return job(work).catch(showError);
}

function updateControls() {
  const idle = running === 0 && state.generator !== null;
  $('generate').disabled = !idle;
  $('variant').disabled = !idle;
  $('interpolate').disabled = !(idle && state.a && state.b);
  $('variations').disabled = !(idle && state.selected);
  $('hd').disabled = !idle;
  $('hd-grid').disabled = !idle;
  $('download').disabled = !(idle && state.selected);
  $('save-character').disabled = !state.selected || !state.manifest;
  $('favourite').disabled = !state.selected || !state.manifest;
}

function progress(kind, loaded, total) {
  if (kind === 'upscaler') $('hd-text').textContent = t('hd.downloading');
  const bar = $(kind === 'upscaler' ? 'progress-hd' : `progress-${kind}`);
  if (!total) {                       // size not known (a compressed download): an indeterminate bar
    bar.removeAttribute('value');
    return;
  }
  bar.max = total;
  bar.value = loaded;
}

/** ?threads=N, else the module's choice (several threads only where the page is cross-origin isolated). */
function threadsWanted() {
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  return Number.isInteger(asked) && asked > 0 ? asked : undefined;
}

/** The status line's backend: single-threaded WebAssembly says why, and whether a reload will help. */
function backendText(generator) {
  if (generator.backend === 'WebGPU') return 'WebGPU';
  const threads = t('status.wasm', { count: generator.threads });
  if (self.crossOriginIsolated) return threads;
  // The host sent no COOP/COEP headers. The service worker adds them to what it serves, so the next
  // visit is isolated; without one (a private window, a plain-http host) it stays single-threaded.
  return t('serviceWorker' in navigator ? 'status.notIsolated' : 'status.noThreads', { threads });
}

/** The status line (backend, model, speed) in the language in use. */
function showStatus() {
  const generator = state.generator;
  if (!generator) return;
  $('status-backend').textContent = backendText(generator);
  $('status-model').textContent = `${generator.variant.precision} · ${(generator.modelBytes / 1e6).toFixed(1)} MB`;
  $('status-speed').textContent = info.msPerImage === null ? '–'
    : t('status.speedValue', { ms: info.msPerImage.toFixed(1), n: info.batch });
}

/** The variant named `file`, else the manifest's default one. */
function variantFor(file) {
  const all = variantsOf(state.manifest);
  return all.find((v) => v.file === file) ?? all.find((v) => v.file === state.manifest.file) ?? all[0];
}

/** Load a model variant (run inside a job); the previous generator is released once its queued runs are done. */
async function useVariant(file) {
  const variant = variantFor(file);
  $('loading').hidden = false;
  let generator;
  try {
    generator = await loadGenerator(MODEL_BASE, {
      manifest: state.manifest, variant: variant.file, ortBase: ORT_BASE, threads: threadsWanted(), onProgress: progress,
      upscaler: UPSCALER_BASE,
    });
  } catch (err) {
    $('variant').value = state.generator?.variant.file ?? variant.file;  // the menu shows the model in use
    throw err;
  }
  const previous = state.generator;
  state.generator = generator;
  state.favouriteFaces.clear();   // drawn by the previous model
  previous?.release().catch((err) => console.warn('could not release the previous model:', err));
  $('variant').value = variant.file;
  $('loading').hidden = true;
  hideError();  // a model that loads after a failed attempt clears its message
  Object.assign(info, {
    backend: generator.backend, threads: generator.threads, model: variant.file, precision: variant.precision,
    modelBytes: generator.modelBytes,
  });
  showStatus();
  if ($('favourites-panel').open) await drawFavourites();
}

// ---------------------------------------------------------------- tag pickers

/** The texts pickers.js shows, in the language in use. */
const pickerText = { t, tag: tagName, group: groupName, percent, number };

/** (Re)build the tag pickers in the mode in use, showing state.choices. */
function showPickers() {
  if (!state.manifest) return;
  buildPickers($('tag-groups'), state.manifest, {
    advanced: state.advanced, choices: state.choices, text: pickerText,
    onChange: (key, choice) => {
      state.choices[key] = choice;
      photoPanel?.sync();
    },
  });
  photoPanel?.sync();
}

/**
 * Advanced mode on or off (remembered when the visitor switched it). Turning it off rounds each value to
 * the nearest choice the simple pickers offer (share.js's simpleChoice), which is what they then show.
 */
function setAdvanced(on, { remember = false } = {}) {
  state.advanced = on;
  $('advanced').checked = on;
  $('advanced-help').hidden = !on;
  if (!on) simplifyChoices();
  if (remember) {
    try {
      localStorage.setItem(ADVANCED_KEY, on ? '1' : '0');
    } catch {
      // not remembered where storage is refused
    }
  }
  showPickers();
}

/** Each choice as the nearest one the simple pickers offer (exact for 0, 1 and a mix of one tag). */
function simplifyChoices() {
  if (!state.manifest) return;
  for (const group of state.manifest.groups) {
    if (group.exclusive || group.at_most_one) state.choices[group.name] = simpleChoice(group, state.choices[group.name]);
    else for (const tag of group.tags) state.choices[tag] = simpleChoice(null, state.choices[tag]);
  }
}

function advancedRemembered() {
  try {
    return localStorage.getItem(ADVANCED_KEY) === '1';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- faces

function noiseFor(seed, i) {
  return state.generator.noise(seed, i + 1).slice(i * state.manifest.noise_dim);
}

/**
 * The labels of a batch of n faces: drawn from `tagSeed` with the tags set to On forced on (the module's
 * draw, as export.runtime's), then the tags set to Off (or a group set to None) cleared. Every group is
 * drawn whatever its choice, so changing one choice leaves the other tags' draws as they were.
 */
function labelsFor(choices, n, tagSeed) {
  const { on, off, values } = chosenTags(state.manifest, choices);
  // The tags set to Off, and advanced mode's numbers, written over the draw (kyara.js's labels option).
  const numbers = Object.fromEntries([...off.map((tag) => [tag, 0]), ...values]);
  const { labels } = state.generator.inputs({ tags: on, labels: numbers, n, seed: tagSeed });
  const T = state.manifest.tags.length;
  return Array.from({ length: n }, (_, i) => labels.slice(i * T, (i + 1) * T));
}

/** A face's tags for display: "blonde hair, smile", the ones not 0 or 1 with their value ("blush 0.4"). */
function describe(named) {
  const shown = Object.entries(named).filter(([, value]) => value !== 0)
    .map(([tag, value]) => (value === 1 ? tagName(tag) : `${tagName(tag)} ${number(value)}`));
  return shown.length ? list(shown) : t('tags.none');
}

/** describe() of a face's labels (manifest tag order). */
const describeLabels = (labels) => describe(labelsByName(state.manifest, labels));

/** Run the model on a list of {noise, labels, ref}; returns the faces (kyara.js's, with their ref). */
async function render(faces) {
  const { noise_dim: Z, tags } = state.manifest;
  const n = faces.length;
  const noise = new Float32Array(n * Z), labels = new Float32Array(n * tags.length);
  faces.forEach((face, i) => { noise.set(face.noise, i * Z); labels.set(face.labels, i * tags.length); });
  const start = performance.now();
  const pixels = await state.generator.run(noise, labels, n);
  const ms = performance.now() - start;
  info.msPerImage = ms / n;
  info.batch = n;
  showStatus();
  return state.generator.faces(noise, labels, pixels).map((face, i) => ({ ...face, ref: faces[i].ref }));
}

/**
 * A face's button and its star (a favourite or not), in one box; `shown` is what its canvas draws (the face,
 * or its HD version). `label` is [message key, params]: the button's name is that text and the face's tags.
 */
function tile(face, onClick, label, shown = face) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'tile';
  button.kyara = { face, label };
  nameTile(button);
  const canvas = document.createElement('canvas');
  drawFace(canvas, shown);
  button.append(canvas);
  button.addEventListener('click', () => onClick(face));
  const box = document.createElement('div');
  box.className = 'tile-box';
  box.append(button, starFor(face));
  return box;
}

function nameTile(button) {
  const { face, label: [key, params] } = button.kyara;
  const tags = describeLabels(face.labels);
  button.setAttribute('aria-label', `${t(key, params)}: ${tags}`);
  button.title = tags;
}

/** The star of a face: keeps it as a favourite, or (filled) lets it go. */
function starFor(face) {
  const star = document.createElement('button');
  star.type = 'button';
  star.className = 'star';
  star.kyara = { face };
  showStar(star);
  star.addEventListener('click', () => toggleFavourite(face));
  return star;
}

function showStar(star) {
  const kept = isFavourite(star.kyara.face);
  star.textContent = kept ? '★' : '☆';
  star.setAttribute('aria-pressed', String(kept));
  star.setAttribute('aria-label', t(kept ? 'star.remove' : 'star.add'));
}

function readControls() {
  const batch = Math.round(Number($('batch').value));
  state.n = Math.min(64, Math.max(1, Number.isFinite(batch) ? batch : 8));
  $('batch').value = state.n;
}

function noiseMode() {
  return document.querySelector('input[name="noise-mode"]:checked').value;
}

function setNoiseMode(mode) {
  for (const input of document.getElementsByName('noise-mode')) input.checked = input.value === mode;
}

/**
 * One batch from the current state (seeds already chosen), or given `variations` ({ seed, ref, noise,
 * labels } of a face: the variations' seed and the face's ref, noise and labels) that face and variations
 * of it; drawn and recorded. The parameters are copied first: what the user changes while it runs (tags,
 * a lock) applies to the next batch, not this one.
 */
async function generateBatch(variations = null) {
  const batch = {
    seed: state.seed, tagSeed: state.tagSeed, n: state.n, choices: { ...state.choices },
    lock: state.lock && { ref: state.lock.ref ?? null, noise: Float32Array.from(state.lock.noise) },
    model: state.generator.variant.file, variations,
  };
  state.results = await render(variations ? variationRows(batch) : seededRows(batch));
  Object.assign(batch, { hd: state.hd, hdGrid: $('hd-grid').checked });
  state.shown = batch;
  const grid = await hdFaces(state.results, gridScale());
  $('results').replaceChildren(...state.results.map((face, i) => tile(face, lockFace, ['tile.face', { n: i + 1 }], grid[i])));
  $('variations-note').hidden = !variations;
  if (variations) $('results').querySelector('.tile').classList.add('varied');
  addToHistory(state.results);
  writeHash();
  hideError();
  info.firstImageMs ??= performance.now();
}

/** A seeded batch's rows: noise of the noise seed (or the locked noise), labels of the tag seed and choices. */
function seededRows(batch) {
  const Z = state.manifest.noise_dim;
  const noise = batch.lock ? null : state.generator.noise(batch.seed, batch.n);
  return labelsFor(batch.choices, batch.n, batch.tagSeed).map((labels, i) => ({
    ref: batch.lock ? batch.lock.ref : `${batch.seed}.${i}`,
    noise: batch.lock ? batch.lock.noise : noise.slice(i * Z, (i + 1) * Z),
    labels,
  }));
}

/** A batch of variations' rows: the face itself (its ref kept), then noise near its own, all with its labels. */
function variationRows({ n, variations: face }) {
  const Z = state.manifest.noise_dim;
  const noise = varyNoise(face.noise, { n, seed: face.seed });
  return Array.from({ length: n }, (_, i) => ({
    ref: i === 0 ? face.ref : null, noise: noise.slice(i * Z, (i + 1) * Z), labels: face.labels,
  }));
}

function onGenerate(event) {
  event?.preventDefault();
  if (running || !state.generator) return;  // the button is disabled meanwhile; Enter in a field is too
  generateNew();
}

/** Queue a new batch of the choices on screen, as the Generate button makes one (and a photo, once read). */
function generateNew() {
  showLinkNotice([]);  // the notice was about the link opened, not this batch
  return userJob(async () => {
    if (!state.generator) return;   // the model never loaded: its error is on screen
    readControls();
    const typed = Number($('seed').value);
    const random = noiseMode() === 'random' || !Number.isInteger(typed) || typed < 0 || typed >= 2 ** 32;
    state.seed = random ? randomSeed() : typed;
    $('seed').value = state.seed;
    state.tagSeed = random ? state.seed : randomSeed();   // one seed: the batch kyara sample --seed gives
    await generateBatch();
  });
}

/** The Variations button: the selected face and variations of it fill the batch (other ones each time). */
function onVariations() {
  if (running || !state.selected) return;
  showLinkNotice([]);
  const face = state.selected;
  userJob(async () => {
    readControls();
    await generateBatch({
      seed: randomSeed(), ref: face.ref ?? null, noise: Float32Array.from(face.noise),
      labels: Float32Array.from(face.labels),
    });
    $('results').scrollIntoView({ block: 'nearest' });  // on a phone the grid is above the button
  });
}

function addToHistory(faces) {
  const gallery = $('history');
  for (const face of [...faces].reverse()) gallery.prepend(tile(face, lockFace, ['tile.earlier', {}]));
  while (gallery.children.length > HISTORY_LIMIT) gallery.lastChild.remove();
}

/** Clicking a face: keep its noise for the next batches and show it large (the batch on screen stays). */
function lockFace(face) {
  state.lock = { noise: face.noise, ref: face.ref };
  setNoiseMode('fixed');
  state.lock.described = 'ref.selected';
  $('lock-ref').textContent = describeRef(face.ref, 'ref.selected');
  $('lock-note').hidden = false;
  select(face);
}

/** "123.4" (seed 123, face index 4) -> "seed 123, face 5"; no ref: the text of the key `otherwise`. */
function describeRef(ref, otherwise) {
  if (!ref) return t(otherwise);
  const [seed, index] = ref.split('.');
  return t('ref.face', { seed, n: Number(index) + 1 });
}

function unlock() {
  state.lock = null;
  $('lock-note').hidden = true;
}

function select(face) {
  state.selected = face;
  $('selected').hidden = false;
  drawFace($('selected-canvas'), upscaled.get(face)?.get(state.hd) ?? face);
  $('download-size').textContent = `${face.width * state.hd} × ${face.height * state.hd} px`;
  $('selected-tags').textContent = describeLabels(face.labels);
  showFavouriteButton();
  updateControls();
  if (state.hd > 1 && !upscaled.get(face)?.has(state.hd)) userJob(drawSelected);
}

// ---------------------------------------------------------------- HD

const upscaled = new WeakMap();   // face -> Map(scale -> the face upscaled)

/**
 * `faces` at `scale` through the upscaler (run inside a job), with a progress bar; faces already upscaled
 * to that size are taken from memory. Scale 1 gives the faces themselves.
 */
async function hdFaces(faces, scale = state.hd) {
  if (scale === 1) return faces;
  const todo = faces.filter((face) => !upscaled.get(face)?.has(scale));
  if (todo.length) {
    $('hd-status').hidden = false;
    $('hd-text').textContent = t('hd.upscaling', { count: todo.length, px: scale * state.manifest.resolution });
    const bar = $('progress-hd');
    bar.max = todo.length;
    bar.value = 0;
    const known = state.generator.upscaling !== null;
    const start = performance.now();
    try {
      const done = await state.generator.upscale(todo, scale, {
        onProgress: (k, total) => {
          $('hd-text').textContent = t('hd.progress', { px: scale * state.manifest.resolution, k, total });
          bar.max = total;
          bar.value = k;
        },
      });
      info.hdMsPerImage = (performance.now() - start) / todo.length;
      todo.forEach((face, i) => {
        if (!upscaled.has(face)) upscaled.set(face, new Map());
        upscaled.get(face).set(scale, done[i]);
      });
    } finally {
      $('hd-status').hidden = true;
    }
    if (!known) cacheForOffline();   // the upscaler's files join the offline set once they are here
  }
  return faces.map((face) => upscaled.get(face).get(scale));
}

/** The grid's faces as shown: HD when both HD and "Results in HD too" are on. */
function gridScale() {
  return $('hd-grid').checked ? state.hd : 1;
}

/** Draw the results and the strip at the sizes the HD controls ask for (run inside a job). */
async function drawResults() {
  const grid = await hdFaces(state.results, gridScale());
  $('results').replaceChildren(...state.results.map((face, i) => tile(face, lockFace, ['tile.face', { n: i + 1 }], grid[i])));
  if (state.shown?.variations) $('results').querySelector('.tile').classList.add('varied');
  const frames = await hdFaces(state.frames);
  $('strip').replaceChildren(...state.frames.map((face, k) => tile(face, lockFace, ['tile.step', { n: k + 1 }], frames[k])));
}

/** Draw the selected face at the HD size (run inside a job). */
async function drawSelected() {
  const face = state.selected;
  if (!face) return;
  const [shown] = await hdFaces([face]);
  if (state.selected === face) drawFace($('selected-canvas'), shown);
  $('download-size').textContent = `${shown.width} × ${shown.height} px`;
}

/** The HD menu or the grid box changed: redraw what is on screen at the new size, and record it in the link. */
function onHdChange() {
  state.hd = Number($('hd').value);
  userJob(async () => {
    if (state.shown) Object.assign(state.shown, { hd: state.hd, hdGrid: $('hd-grid').checked });
    await drawSelected();
    await drawResults();
    writeHash();
  });
}

// ---------------------------------------------------------------- interpolation, download, share

/**
 * Spherical interpolation: Gaussian noise lives near a sphere, so slerp keeps the in-between
 * vectors at a typical length where a straight line would pass through the low-norm middle.
 */
function slerp(a, b, t) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  const cos = Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb || 1)));
  const omega = Math.acos(cos);
  const out = new Float32Array(a.length);
  if (omega < 1e-4) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega), wb = Math.sin(t * omega) / Math.sin(omega);
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
  return out;
}

function setSlot(slot, face) {
  state[slot] = face;
  drawFace($(`slot-${slot}`), face);
  updateControls();
}

function interpolate() {
  if (running || !(state.a && state.b)) return;
  const steps = Math.min(16, Math.max(3, Math.round(Number($('steps').value)) || 8));
  $('steps').value = steps;
  const { a, b } = state;
  const faces = [];
  for (let k = 0; k < steps; k++) {
    const t = k / (steps - 1);
    faces.push({
      ref: null,
      noise: slerp(a.noise, b.noise, t),
      labels: a.labels.map((value, i) => (1 - t) * value + t * b.labels[i]),
    });
  }
  userJob(async () => {
    state.frames = await render(faces);
    const shown = await hdFaces(state.frames);
    $('strip').replaceChildren(...state.frames.map((face, k) => tile(face, lockFace, ['tile.step', { n: k + 1 }], shown[k])));
    hideError();
  });
}

/** The selected face as a PNG, at the HD size (the model's own size when HD is off). */
function download() {
  const face = state.selected, scale = state.hd;
  if (!face || running) return;
  userJob(async () => {
    const [shown] = await hdFaces([face], scale);
    const canvas = drawFace(document.createElement('canvas'), shown);
    const blob = await new Promise((resolve) => { canvas.toBlob(resolve, 'image/png'); });
    const link = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(blob),
      download: `kyara-${(face.ref ?? 'frame').replace('.', '-')}${scale > 1 ? `-${shown.width}px` : ''}.png`,
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
}

/** Put the batch on screen (state.shown) in the URL hash and the share box; nothing before the first batch. */
function writeHash() {
  if (!state.shown || !state.manifest) return;
  const hash = encodeState(state.shown, state.manifest);
  history.replaceState(null, '', `#${hash}`);
  $('share-link').value = location.href;
  $('copy-link').textContent = t('share.copy');
}

/** Whether a decoded link holds a batch to draw: a seeded one (both seeds) or one of variations. */
function holdsBatch(shared) {
  return shared.variations !== null || (shared.seed !== null && shared.tagSeed !== null);
}

/** A link's noise (decodeState's lock or variations.of) as { ref, noise }. */
function linkedNoise(linked) {
  return { ref: linked.ref ?? null, noise: linked.ref ? noiseFor(linked.seed, linked.index) : linked.noise };
}

/**
 * Read a share link into the state. Returns null when the hash holds no batch, else the argument of
 * generateBatch that draws it ({ variations }: null for a seeded batch). A part that cannot be used is
 * left out with a notice: a bad lock, say, must not keep the rest of the link from drawing.
 */
function readHash(hash = location.hash) {
  const shared = decodeState(hash, state.manifest);
  showLinkNotice(unusable(shared));
  if (!holdsBatch(shared)) return null;
  state.hd = shared.hd ?? 1;
  $('hd').value = String(state.hd);
  $('hd-grid').checked = shared.hdGrid;
  if (shared.n) state.n = Math.min(64, Math.max(1, shared.n));
  $('batch').value = state.n;
  state.choices = shared.choices;
  if (needsAdvanced(state.manifest, state.choices) && !state.advanced) setAdvanced(true);
  if (!state.advanced) simplifyChoices();   // a link's 1 and 0 are On and Off
  syncPickers(state.choices);
  photoPanel?.sync();
  if (shared.variations) {  // the next Generate is a fresh batch: no seeds or lock of the link's own
    unlock();
    setNoiseMode('random');
    const { seed, of, labels } = shared.variations;
    return { variations: { seed, ...linkedNoise(of), labels } };
  }
  state.seed = shared.seed;
  state.tagSeed = shared.tagSeed;
  state.lock = shared.lock && linkedNoise(shared.lock);
  $('seed').value = state.seed;
  setNoiseMode('fixed');
  $('lock-note').hidden = !state.lock;
  if (state.lock) state.lock.described = 'ref.link';
  $('lock-ref').textContent = describeRef(state.lock?.ref, 'ref.link');
  return { variations: null };
}

// ---------------------------------------------------------------- offline

/** Register the service worker and hand it the exact URLs this page used, so the next visit works offline. */
async function cacheForOffline() {
  if (!('serviceWorker' in navigator)) return;
  // The page's own files are the ones it links (modules, style, icon, manifest): the server lists them.
  const links = document.querySelectorAll('link[rel="modulepreload"], link[rel="stylesheet"], link[rel="icon"], link[rel="preload"]');
  const urls = [new URL('./', location.href).href, ...Array.from(links, (link) => link.href), ...state.generator.urls,
    ...state.photoUrls];
  try {
    const registration = await navigator.serviceWorker.register('sw.js');
    const worker = registration.active ?? registration.waiting ?? registration.installing;
    worker.postMessage({ type: 'cache', urls });
  } catch (err) {
    console.warn('offline cache unavailable:', err);
  }
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    state.manifest = await fetchManifest(MODEL_BASE);
  } catch (err) {
    manifestLoaded.reject(err);
    throw err;
  }
  state.choices = defaultChoices(state.manifest);
  manifestLoaded.resolve(state.manifest);
  setAdvanced(advancedRemembered());
  showFavourites();
  Object.assign(info, {
    resolution: state.manifest.resolution, noiseDim: state.manifest.noise_dim, tags: [...state.manifest.tags],
  });
  $('variant').replaceChildren(...variantsOf(state.manifest).map((v) => Object.assign(document.createElement('option'), {
    value: v.file, textContent: `${v.precision}${v.bytes ? ` · ${(v.bytes / 1e6).toFixed(1)} MB` : ''}`,
  })));
  showHdOptions();
  const shared = decodeState(location.hash, state.manifest);
  await useVariant(shared.model ?? state.manifest.file);
  const linked = readHash(location.hash);
  if (!linked) {  // no batch in the link: a fresh one, of the size the link asks for if any
    state.seed = randomSeed();
    state.tagSeed = randomSeed();
    $('seed').value = state.seed;
    if (shared.n) $('batch').value = shared.n;
    readControls();
  }
  await generateBatch(linked?.variations);
  return info;
}

/** The "From a photo" panel: what it reads becomes the choices, then a batch is drawn. */
function wirePhoto() {
  photoPanel = setupPhoto({
    photoBase: PHOTO_BASE,
    manifest: () => manifestReady,
    choices: () => state.choices,
    choose(changes) {
      Object.assign(state.choices, changes);
      syncPickers(state.choices);
      photoPanel.sync();
    },
    draw(since) {
      generateNew().then(() => { info.photoToFaceMs = performance.now() - since; });
    },
    text: { t, tag: tagName, group: groupName, percent },
    onReaderLoaded(urls) {
      state.photoUrls = urls;
      if (state.generator) cacheForOffline();
    },
    timing({ readMs }) { info.photoReadMs = readMs; },
  });
}

function wire() {
  wirePhoto();
  $('language').replaceChildren(...Object.entries(LANGUAGES).map(([code, { name }]) => Object.assign(
    document.createElement('option'), { value: code, textContent: name, lang: code },
  )));
  $('language').value = language();
  $('language').addEventListener('change', () => {
    setLanguage($('language').value, { remember: true });
    showTexts();
  });
  $('advanced').addEventListener('change', () => setAdvanced($('advanced').checked, { remember: true }));
  $('favourite').addEventListener('click', () => state.selected && toggleFavourite(state.selected));
  $('save-character').addEventListener('click', () => {
    if (state.selected) saveFile(characterFile(favouriteOf(state.selected, state.manifest, state.generator?.variant.file)), fileName(state.selected.ref));
  });
  $('import-library').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', importFile);
  $('export-library').addEventListener('click', () => saveFile(libraryFile(state.favourites), 'kyara-favourites.json'));
  $('favourites-panel').addEventListener('toggle', () => {
    if ($('favourites-panel').open && state.generator) userJob(drawFavourites);
  });
  window.addEventListener('storage', (event) => {   // another tab changed the library
    if (event.key !== FAVOURITES_KEY) return;
    setFavourites(loadFavourites());
    showFavourites();
    if ($('favourites-panel').open && state.generator) userJob(drawFavourites);
  });
  $('controls').addEventListener('submit', onGenerate);
  $('seed').addEventListener('input', () => setNoiseMode('fixed'));
  $('unlock').addEventListener('click', unlock);
  for (const input of document.getElementsByName('noise-mode')) {
    input.addEventListener('change', () => { if (noiseMode() === 'random') unlock(); });
  }
  $('variations').addEventListener('click', onVariations);
  $('set-a').addEventListener('click', () => setSlot('a', state.selected));
  $('set-b').addEventListener('click', () => setSlot('b', state.selected));
  $('interpolate').addEventListener('click', interpolate);
  $('download').addEventListener('click', download);
  $('hd').addEventListener('change', onHdChange);
  $('hd-grid').addEventListener('change', onHdChange);
  $('copy-link').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('share-link').value);
      $('copy-link').textContent = t('share.copied');
    } catch {
      $('share-link').select();
    }
  });
  $('variant').addEventListener('change', () => {
    const file = $('variant').value;
    userJob(async () => {
      await useVariant(file);
      await generateBatch();
    }).then(cacheIfSwitched(state.generator));
  });
  // A link pasted into the address bar: its model first, then its batch, after any job already running.
  // (event.newURL: a batch finishing before this event fires may have replaced location.hash already)
  window.addEventListener('hashchange', (event) => {
    if (event.newURL === $('share-link').value) return;  // our own hash
    const { hash } = new URL(event.newURL);
    userJob(async () => {
      if (!state.generator) return;  // the model never loaded: the error is on screen
      const shared = decodeState(hash, state.manifest);
      if (holdsBatch(shared) && shared.model && variantFor(shared.model).file !== state.generator.variant.file) {
        await useVariant(shared.model);
      }
      const linked = readHash(hash);
      if (linked) await generateBatch(linked.variations);
    }).then(cacheIfSwitched(state.generator));
  });
}

// ---------------------------------------------------------------- languages

/** The HD menu's sizes in the language in use. */
function showHdOptions() {
  if (!state.manifest) return;
  const R = state.manifest.resolution;
  for (const option of $('hd').options) {
    option.textContent = option.value === '1' ? t('hd.off', { px: R }) : `${R * Number(option.value)} px`;
  }
}

/** A text with one element inside it (`{name}` in the message) put in `box`, keeping that element. */
function fillAround(box, message, name, inner) {
  const [before, after = ''] = message.split(`{${name}}`);
  box.replaceChildren(before, inner, after);
}

/** Every text of the page in the language in use (after a switch, or at the start). */
function showTexts() {
  applyStatic();
  fillAround($('tagline'), t('tagline'), 'model', $('model-name'));
  fillAround($('lock-text'), t('noise.locked'), 'ref', $('lock-ref'));
  if (state.lock) $('lock-ref').textContent = describeRef(state.lock.ref, state.lock.described ?? 'ref.selected');
  showStatus();
  showHdOptions();
  showPickers();
  showLinkNotice(state.notice);
  for (const button of document.querySelectorAll('.tile-box > .tile')) nameTile(button);
  for (const star of document.querySelectorAll('.star')) showStar(star);
  if (state.selected) $('selected-tags').textContent = describeLabels(state.selected.labels);
  showFavouriteButton();
  showFavourites();
  photoPanel?.showTexts();
  if (state.shown) $('copy-link').textContent = t('share.copy');
}

// ---------------------------------------------------------------- favourites

/** Use `items` as the library (not stored: keep() stores). */
function setFavourites(items) {
  state.favourites = items;
  state.favouriteKeys = new Set(items.map((item) => keyOf(item.noise, item.labels)));
}

const faceKeys = new WeakMap();   // face -> its keyOf, made once

function favouriteKey(face) {
  if (!faceKeys.has(face)) faceKeys.set(face, keyOf(face.noise, labelsByName(state.manifest, face.labels)));
  return faceKeys.get(face);
}

function isFavourite(face) {
  return state.manifest !== null && state.favouriteKeys.has(favouriteKey(face));
}

/** A one-line message in the favourites panel (opened to show it); `error` marks a refusal. */
function favouritesMessage(text, error = false) {
  const box = $('favourites-message');
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle('refused', error);
  if (text) $('favourites-panel').open = true;
}

/** Store `items` as the library; refused (storage full), nothing changes and the panel says so. */
function keep(items) {
  try {
    saveFavourites(items);
  } catch (err) {
    if (!(err instanceof FileError)) throw err;
    favouritesMessage(t('file.notKept', { reason: fileReason(err) }), true);
    return false;
  }
  setFavourites(items);
  showFavourites();
  return true;
}

function toggleFavourite(face) {
  if (!state.manifest) return;
  const key = favouriteKey(face);
  if (state.favouriteKeys.has(key)) {
    keep(state.favourites.filter((item) => keyOf(item.noise, item.labels) !== key));
    return;
  }
  const item = favouriteOf(face, state.manifest, state.generator?.variant.file);
  state.favouriteFaces.set(item.id, { ...face, width: state.manifest.resolution, height: state.manifest.resolution });
  if (keep([item, ...state.favourites])) favouritesMessage('');
  else state.favouriteFaces.delete(item.id);
}

/** The star of the selected face, as the tiles' stars. */
function showFavouriteButton() {
  const kept = state.selected ? isFavourite(state.selected) : false;
  $('favourite').textContent = `${kept ? '★' : '☆'} ${t(kept ? 'star.remove' : 'star.add')}`;
  $('favourite').setAttribute('aria-pressed', String(kept));
}

/** The panel, its count and every star on the page, as the library now is. */
function showFavourites() {
  const items = state.favourites;
  $('favourites-count').textContent = `(${items.length})`;
  $('favourites-empty').hidden = items.length > 0;
  $('export-library').disabled = items.length === 0;
  for (const star of document.querySelectorAll('.star')) showStar(star);
  showFavouriteButton();
  if (!state.manifest) return;
  renderLibrary($('favourites'), items, {
    manifest: state.manifest, faces: state.favouriteFaces, draw: drawFace,
    text: { t, describe },
    actions: {
      onOpen: (item) => userJob(async () => {
        await drawFavourites();
        const face = state.favouriteFaces.get(item.id);
        if (face) {
          lockFace(face);
          $('selected').scrollIntoView({ block: 'nearest' });
        }
      }),
      onRate: (item, step) => keep(state.favourites.map((other) => (other.id === item.id
        ? { ...other, rating: Math.max(-1_000_000, Math.min(1_000_000, other.rating + step)) } : other))),
      onSave: (item) => saveFile(characterFile(item), fileName(item.ref ?? item.id)),
      onRemove: (item) => keep(state.favourites.filter((other) => other.id !== item.id)),
    },
  });
}

/** Draw the favourites not drawn yet with the model loaded (run inside a job), then show the panel. */
async function drawFavourites() {
  const todo = state.favourites.map((item) => [item, openWith(item, state.manifest)])
    .filter(([item, check]) => check.ok && !state.favouriteFaces.has(item.id));
  for (let start = 0; start < todo.length; start += 64) {
    const chunk = todo.slice(start, start + 64);
    const { noise_dim: Z, tags } = state.manifest;
    const noise = new Float32Array(chunk.length * Z), labels = new Float32Array(chunk.length * tags.length);
    chunk.forEach(([, check], i) => { noise.set(check.noise, i * Z); labels.set(check.labels, i * tags.length); });
    const pixels = await state.generator.run(noise, labels, chunk.length);
    state.generator.faces(noise, labels, pixels).forEach((face, i) => {
      state.favouriteFaces.set(chunk[i][0].id, { ...face, ref: chunk[i][0].ref ?? null });
    });
  }
  showFavourites();
}

/** A FileError's message, its place in the file named in the language in use. */
function fileReason(err) {
  const { where } = err.params;
  const place = where === undefined ? '' : where === 'character' ? t('file.whereCharacter') : t('file.whereItem', { n: where });
  return t(err.key, { ...err.params, where: place });
}

/** The file chosen in the file box: a character (added and opened) or a library (merged); checked first. */
async function importFile() {
  const file = $('import-file').files[0];
  $('import-file').value = '';
  if (!file || !state.manifest) return;
  let parsed, merged;
  try {
    const text = file.size > FILE_LIMIT ? '' : await file.text();   // too large: refused unread
    parsed = parseFile(text, state.manifest, file.size);
    merged = merge(state.favourites, parsed.items);
  } catch (err) {
    if (!(err instanceof FileError)) throw err;
    favouritesMessage(t('file.refused', { reason: fileReason(err) }), true);
    return;
  }
  if (!keep(merged.items)) return;
  favouritesMessage(t('file.imported', { count: merged.added, skipped: merged.skipped })
    + (merged.skipped ? ` ${t('file.skipped', { count: merged.skipped })}` : ''));
  if (!state.generator) return;
  await userJob(async () => {
    await drawFavourites();
    if (parsed.kind !== 'character') return;
    const key = keyOf(parsed.items[0].noise, parsed.items[0].labels);   // a character is opened
    const item = state.favourites.find((other) => keyOf(other.noise, other.labels) === key);
    const face = item && state.favouriteFaces.get(item.id);
    if (face) lockFace(face);
  });
}

/** Let the visitor save `text` as the JSON file `name`. */
function saveFile(text, name) {
  const link = Object.assign(document.createElement('a'), {
    href: URL.createObjectURL(new Blob([text], { type: 'application/json' })), download: name,
  });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

const fileName = (ref) => `kyara-character-${String(ref ?? 'face').replace('.', '-')}.json`;

/** After a job: if it loaded another model, hand the new file list to the service worker. */
function cacheIfSwitched(before) {
  return () => { if (state.generator && state.generator !== before) cacheForOffline(); };
}

/** N rows (arrays or typed arrays) or one flat array -> one Float32Array, checked against the row width. */
function flatten(values, width) {
  const flat = Float32Array.from(Array.isArray(values[0]) || ArrayBuffer.isView(values[0]) ? values.flatMap((row) => [...row]) : values);
  if (flat.length % width) throw new Error(`expected rows of ${width} numbers`);
  return flat;
}

setLanguage(pickLanguage());
setFavourites(loadFavourites());
wire();
showTexts();
const ready = job(start);
ready.then(cacheForOffline, showError);

window.kyara = {
  ready,
  info,
  async generate(noise, labels) {
    await ready;
    const z = flatten(noise, state.manifest.noise_dim), y = flatten(labels, state.manifest.tags.length);
    return state.generator.run(z, y, z.length / state.manifest.noise_dim);
  },
  results: () => state.results.map((face) => ({
    ref: face.ref, noise: [...face.noise], labels: [...face.labels], pixels: [...face.pixels],
  })),
  noise: (seed, i) => [...noiseFor(seed, i)],
  async upscale(pixels, scale) {
    await ready;
    const R = state.manifest.resolution;
    const [face] = await state.generator.upscale([{ pixels: Uint8ClampedArray.from(pixels), width: R, height: R }], scale);
    return face.pixels;
  },
  idle: () => jobs,
  favourites: () => JSON.parse(JSON.stringify(state.favourites)),
  photo: () => photoPanel.reading(),
  get generator() { return state.generator; },
};
