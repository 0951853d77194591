// Favourites: faces kept in the browser's storage (localStorage), and the files they travel in.
//
// A favourite is what redraws a face, never its pixels: { id, noise (noise_dim numbers), labels ({ tag name:
// value } for the tags not 0: 1 on, other numbers advanced mode's), model ({ name, version, file } of the
// manifest it was made with), rating (a whole number, +1 / -1 at a time), created (ISO time), ref
// ("seed.index" where it has one) }. By tag name, so a favourite made with another model opens on this one
// where this model has its tags (and its noise size).
//
// Storage: one localStorage entry, { format: 'kyara-favourites', version: 1, favourites: [...] }, at most
// LIMIT favourites and STORAGE_LIMIT characters. Files: the library is that same object; a single
// character is { format: 'kyara-character', version: 1, ...one favourite }. A file read back (parseFile) is
// checked before anything is used, against the model's manifest: at most FILE_LIMIT bytes, JSON, the
// format and version, and each favourite's fields (types, noise_dim finite numbers, tag names of the
// manifest with finite values in VALUE_RANGE, short texts). A file that fails any check is refused as a
// whole with one FileError ({ key, params }: a message of the page's languages), and nothing changes.

import { VALUE_RANGE } from './share.js';

export const LIBRARY_FORMAT = 'kyara-favourites';
export const CHARACTER_FORMAT = 'kyara-character';
export const VERSION = 1;
export const LIMIT = 500;                  // favourites in the library
export const FILE_LIMIT = 2 * 1024 * 1024; // bytes of a file to import
const STORAGE_LIMIT = 3_000_000;           // characters of the stored library (localStorage holds ~5 M)
const STORAGE_KEY = 'kyara.favourites';
const TEXT_LIMIT = 100;                    // characters of a model name, version or file
const NOISE_LIMIT = 100;                   // |noise| values: standard normal noise stays well inside
const REF = /^\d{1,10}\.\d{1,2}$/;

/** A file or library refused, or storage that failed: `key` and `params` name the message. */
export class FileError extends Error {
  constructor(key, params = {}) {
    super(`${key} ${JSON.stringify(params)}`);
    this.name = 'FileError';
    this.key = key;
    this.params = params;
  }
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const isText = (value, limit = TEXT_LIMIT) => typeof value === 'string' && value.length <= limit && !/[\u0000-\u001f\u007f]/.test(value);
const finite = (value) => typeof value === 'number' && Number.isFinite(value);

/** A face's identity: its noise and labels (the same face drawn twice is one favourite). */
export function keyOf(noise, labels) {
  const values = Object.entries(labels).filter(([, v]) => v !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${Array.from(noise, (x) => Math.fround(x)).join(',')}|${values.map(([t, v]) => `${t}=${Math.fround(v)}`).join(',')}`;
}

/** The labels of a face (manifest tag order) by tag name, the tags not 0 only. */
export function labelsByName(manifest, labels) {
  const named = {};
  manifest.tags.forEach((tag, i) => { if (labels[i] !== 0) named[tag] = labels[i]; });
  return named;
}

/** A manifest's text as a favourite keeps it (what checkItem accepts back). */
const shortText = (value) => String(value ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, TEXT_LIMIT);

const newId = () => `f${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** A favourite of `face` ({ noise, labels, ref }) made with `manifest`'s model, file `file`. */
export function favouriteOf(face, manifest, file) {
  return {
    id: newId(),
    noise: Array.from(face.noise, Number),
    labels: labelsByName(manifest, face.labels),
    model: { name: shortText(manifest.name), version: shortText(manifest.version), file: shortText(file) },
    rating: 0,
    created: new Date().toISOString(),
    ...(face.ref ? { ref: face.ref } : {}),
  };
}

/**
 * Whether a favourite can be drawn with `manifest`'s model: { ok: true, labels (Float32Array, tag order),
 * noise } or { ok: false, key, params } saying why not (a tag the model lacks, another noise size).
 */
export function openWith(item, manifest) {
  if (item.noise.length !== manifest.noise_dim) {
    return { ok: false, key: 'favourites.otherNoise', params: { n: item.noise.length, m: manifest.noise_dim } };
  }
  const labels = new Float32Array(manifest.tags.length);
  for (const [tag, value] of Object.entries(item.labels)) {
    const col = manifest.tags.indexOf(tag);
    if (col < 0) return { ok: false, key: 'favourites.noTag', params: { tag } };
    labels[col] = value;
  }
  return { ok: true, labels, noise: Float32Array.from(item.noise) };
}

/** Whether the favourite was made with another model than `manifest`'s (name or version). */
export const otherModel = (item, manifest) => item.model.name !== shortText(manifest.name)
  || item.model.version !== shortText(manifest.version);

/**
 * One favourite read from JSON (`raw`), checked: a clean copy holding only its known fields, or a FileError
 * naming `where` (its place in the file). With `manifest`, the noise must be of its size and the tags its
 * tags; without (the stored library, which may hold other models' favourites), any size up to 4096.
 */
function checkItem(raw, where, manifest) {
  if (!isObject(raw)) throw new FileError('file.notObject', { where });
  const size = manifest?.noise_dim;
  const { noise, labels } = raw;
  if (!Array.isArray(noise) || (size ? noise.length !== size : noise.length < 1 || noise.length > 4096)
      || !noise.every((x) => finite(x) && Math.abs(x) <= NOISE_LIMIT)) {
    throw new FileError('file.noise', { where, n: size ?? '1–4096' });
  }
  if (!isObject(labels) || Object.keys(labels).length > (manifest?.tags.length ?? 4096)) {
    throw new FileError('file.labels', { where, min: VALUE_RANGE[0], max: VALUE_RANGE[1] });
  }
  const clean = Object.create(null);   // a tag named __proto__ is a key like any other, refused below
  for (const [tag, value] of Object.entries(labels)) {
    if (!isText(tag) || !tag) throw new FileError('file.labels', { where, min: VALUE_RANGE[0], max: VALUE_RANGE[1] });
    if (manifest && !manifest.tags.includes(tag)) throw new FileError('file.unknownTag', { where, tag: tag.slice(0, 40) });
    if (!finite(value) || value < VALUE_RANGE[0] || value > VALUE_RANGE[1]) {
      throw new FileError('file.labels', { where, min: VALUE_RANGE[0], max: VALUE_RANGE[1] });
    }
    if (value !== 0) clean[tag] = value;
  }
  const model = raw.model ?? {};
  if (!isObject(model) || !['name', 'version', 'file'].every((key) => model[key] === undefined || isText(model[key]))) {
    throw new FileError('file.model', { where });
  }
  const rating = raw.rating ?? 0;
  if (!Number.isInteger(rating) || Math.abs(rating) > 1_000_000) throw new FileError('file.rating', { where });
  if (raw.created !== undefined && !isText(raw.created, 40)) throw new FileError('file.text', { where, field: 'created' });
  if (raw.ref !== undefined && !(typeof raw.ref === 'string' && REF.test(raw.ref))) throw new FileError('file.text', { where, field: 'ref' });
  if (raw.id !== undefined && !isText(raw.id, 40)) throw new FileError('file.text', { where, field: 'id' });
  return {
    id: raw.id || newId(),
    noise: [...noise],
    labels: clean,
    model: { name: model.name ?? '', version: model.version ?? '', file: model.file ?? '' },
    rating,
    created: raw.created ?? '',
    ...(raw.ref ? { ref: raw.ref } : {}),
  };
}

/**
 * A file's text read back, checked against `manifest` (see the top): { kind: 'library' | 'character',
 * items }. `bytes` is the file's size, refused above FILE_LIMIT before the text is parsed.
 */
export function parseFile(text, manifest, bytes = text.length) {
  if (bytes > FILE_LIMIT) throw new FileError('file.tooBig', { max: Math.round(FILE_LIMIT / 1024) });
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    throw new FileError('file.notJson');
  }
  if (!isObject(data) || (data.format !== LIBRARY_FORMAT && data.format !== CHARACTER_FORMAT)) {
    throw new FileError('file.notKyara');
  }
  if (data.version !== VERSION) throw new FileError('file.version', { version: String(data.version).slice(0, 20) });
  if (data.format === CHARACTER_FORMAT) return { kind: 'character', items: [checkItem(data, 'character', manifest)] };
  if (!Array.isArray(data.favourites)) throw new FileError('file.notKyara');
  if (data.favourites.length > LIMIT) throw new FileError('file.tooMany', { max: LIMIT });
  return { kind: 'library', items: data.favourites.map((item, i) => checkItem(item, i + 1, manifest)) };
}

/** The library as a file's text. */
export function libraryFile(items) {
  return `${JSON.stringify({ format: LIBRARY_FORMAT, version: VERSION, favourites: items }, null, 1)}\n`;
}

/** One favourite as a character file's text (without its id and rating: those are the library's). */
export function characterFile(item) {
  const { id, rating, ...character } = item;
  return `${JSON.stringify({ format: CHARACTER_FORMAT, version: VERSION, ...character }, null, 1)}\n`;
}

/**
 * `incoming` added to `items` (a new list), leaving out the faces already there (by keyOf): { items, added,
 * skipped }. More than LIMIT in all is a FileError, and nothing is added.
 */
export function merge(items, incoming) {
  const known = new Set(items.map((item) => keyOf(item.noise, item.labels)));
  const ids = new Set(items.map((item) => item.id));
  const fresh = [];
  for (const item of incoming) {
    const key = keyOf(item.noise, item.labels);
    if (known.has(key)) continue;
    known.add(key);
    fresh.push(ids.has(item.id) ? { ...item, id: newId() } : item);
    ids.add(fresh.at(-1).id);
  }
  if (items.length + fresh.length > LIMIT) throw new FileError('file.full', { max: LIMIT });
  return { items: [...fresh, ...items], added: fresh.length, skipped: incoming.length - fresh.length };
}

// ---------------------------------------------------------------- storage

let memory = null;   // the library when localStorage cannot be used (kept for this visit only)

/** The stored library (favourites made with any model), newest first; [] when none or unreadable. */
export function load() {
  let text = null;
  try {
    text = localStorage.getItem(STORAGE_KEY);
  } catch {
    return memory ?? [];
  }
  if (!text) return [];
  try {
    const data = JSON.parse(text);
    if (!isObject(data) || data.format !== LIBRARY_FORMAT || data.version !== VERSION || !Array.isArray(data.favourites)) return [];
    const items = [];
    for (const [i, raw] of data.favourites.slice(0, LIMIT).entries()) {
      try {
        items.push(checkItem(raw, i + 1, null));
      } catch {
        // a damaged entry is skipped; the others still open
      }
    }
    return items;
  } catch {
    return [];
  }
}

/** Store the library; a FileError ('storage.full') when it is too large or the browser refuses. */
export function save(items) {
  if (items.length > LIMIT) throw new FileError('file.full', { max: LIMIT });
  const text = JSON.stringify({ format: LIBRARY_FORMAT, version: VERSION, favourites: items });
  if (text.length > STORAGE_LIMIT) throw new FileError('storage.full');
  try {
    localStorage.setItem(STORAGE_KEY, text);
    memory = null;
  } catch (err) {
    if (err?.name === 'QuotaExceededError') throw new FileError('storage.full');
    memory = items;   // no storage at all: kept for this visit
  }
}

export const STORAGE = STORAGE_KEY;
