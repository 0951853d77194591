// A photo of a person -> the tags of the model that describe them: hair colour, eye colour, hair length,
// smile, and where the model has them, open mouth, glasses and male. Read on the device, never sent.
//
//   const { tags, confidence, face } = await tagsFromPhoto(file, manifest);
//   const faces = await generator.generate({ tags, n: 8 });
//
// The faces are found and their landmarks, expression and sex estimated by face-api (@vladmandic/face-api,
// MIT: a TensorFlow.js build with its weights in its npm package), run on TensorFlow.js's WebAssembly
// backend (@tensorflow/tfjs-backend-wasm, Apache-2.0). Both are downloaded from `photoBase` (default:
// node_modules/ beside this package) the first time a photo is read, never before, and only the networks
// the model's tags need: the detector and the landmarks always, the expression network for `smile`, the
// age and sex network for `male`. photo-measure.js measures the colours around the landmarks;
// photo-colours.js names them.
//
// Every tag comes with a confidence (0 to 1). A tag is set only when the reader is fairly sure (SURE):
// dark irises, hair the photo does not show, or a face between two colours leave the tag to the model's
// draw, with what the reader made of it still in `confidence`.

import { EYE_COLOURS, HAIR_COLOURS, nearestColourTag, rgbToHex } from './photo-colours.js';
import { measureFace } from './photo-measure.js';

/** How sure the reader must be to set a tag (on, or off). */
export const SURE = 0.6;
/** Photos are scaled down so that their longer side is at most this many pixels before they are read. */
export const MAX_SIDE = 1280;
/** A photo whose shorter side is below this many pixels is refused: no face can be found in it. */
export const MIN_SIDE = 32;
/** The largest file read, in bytes (a phone's photo is a few MB). */
export const FILE_LIMIT = 50 * 1024 * 1024;

// The files, as npm lays them out under node_modules/.
export const LIBRARY = {
  script: '@vladmandic/face-api/dist/face-api.esm.js',
  models: '@vladmandic/face-api/model/',
  wasm: '@tensorflow/tfjs-backend-wasm/dist/',
};
const DEFAULT_BASE = new URL('../../../', import.meta.url).href;
const DETECTOR_SIZES = [416, 608, 224];  // the detector's input sizes tried in turn until one finds a face

// Each PhotoError's message in English; the page shows the same line in the visitor's language (i18n/).
const MESSAGES = {
  'photo.notImage': '{name} is not an image this browser can read.',
  'photo.tooSmall': '{name} is too small to find a face in ({width} × {height} px).',
  'photo.tooLarge': '{name} is too large to read ({mb} MB; at most 50 MB).',
  'photo.noFace': 'No face was found in {name}: try a photo where the face is larger, lit from the front and not covered.',
  'photo.noReader': 'The photo reader could not be loaded ({reason}); the rest of the page works as before.',
};

/** A photo that cannot be read: `message` is one line to show; `key` and `params` name it for translations. */
export class PhotoError extends Error {
  constructor(key, params = {}) {
    super(MESSAGES[key].replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole)));
    this.name = 'PhotoError';
    this.key = key;
    this.params = params;
  }
}

// ---------------------------------------------------------------- the library

const readers = new Map();   // photoBase -> Promise of { faceapi, nets: Map(name -> Promise) }

/** face-api on its WebAssembly backend, loaded once per base URL (a failed load is tried again next time). */
function library(base) {
  if (!readers.has(base)) {
    const loading = (async () => {
      const faceapi = await import(new URL(LIBRARY.script, base).href);
      const { tf } = faceapi;
      // The threaded build starts its workers from blob: URLs, which the page's CSP refuses; one thread is
      // plenty for networks this small.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      tf.setWasmPaths(new URL(LIBRARY.wasm, base).href);
      if (!(await tf.setBackend('wasm').catch(() => false))) await tf.setBackend('cpu');
      await tf.ready();
      return { faceapi, nets: new Map() };
    })();
    readers.set(base, loading);
    loading.catch(() => readers.delete(base));
  }
  return readers.get(base);
}

/** Load face-api's network `name` (tinyFaceDetector, faceLandmark68Net, ...) from the base, once. */
function network(reader, base, name) {
  if (!reader.nets.has(name)) {
    const loading = reader.faceapi.nets[name].loadFromUri(new URL(LIBRARY.models, base).href);
    reader.nets.set(name, loading);
    loading.catch(() => reader.nets.delete(name));
  }
  return reader.nets.get(name);
}

/**
 * Download and start the photo reader ahead of time, with the networks `manifest`'s tags need. Rejects with
 * a PhotoError ('photo.noReader') saying what failed.
 */
export async function loadPhotoReader(manifest, { photoBase = DEFAULT_BASE } = {}) {
  const base = new URL(photoBase, location.href).href;
  try {
    const reader = await library(base);
    const names = ['tinyFaceDetector', 'faceLandmark68Net'];
    if (manifest.tags.includes('smile')) names.push('faceExpressionNet');
    if (manifest.tags.includes('male')) names.push('ageGenderNet');
    await Promise.all(names.map((name) => network(reader, base, name)));
    return { ...reader, names, base };
  } catch (err) {
    throw new PhotoError('photo.noReader', { reason: String(err?.message ?? err).split('\n')[0] });
  }
}

/** The URLs of the reader's files this page has downloaded (to keep for offline use). */
export function photoReaderUrls(photoBase = DEFAULT_BASE) {
  const base = new URL(photoBase, location.href).href;
  return performance.getEntriesByType('resource').map((entry) => entry.name).filter((url) => url.startsWith(base));
}

// ---------------------------------------------------------------- the photo

const nameOf = (image) => (typeof image?.name === 'string' && image.name ? image.name : 'the photo');

/**
 * A photo as a canvas no larger than MAX_SIDE, with the photo's own size: { canvas, width, height, scale }
 * (scale: the canvas's pixels per photo pixel). `image` is a Blob (a File), decoded here, or an <img>, a
 * <video>, a canvas, an ImageBitmap or an ImageData, drawn. Rejects with a PhotoError: not an image, too
 * small or too large; `name` names the photo in its message.
 */
export async function loadPhoto(image, name = nameOf(image)) {
  let source = image, decoded = null;
  if (typeof Blob !== 'undefined' && image instanceof Blob) {
    if (image.size > FILE_LIMIT) throw new PhotoError('photo.tooLarge', { name, mb: Math.round(image.size / 2 ** 20) });
    try {
      source = decoded = await createImageBitmap(image);
    } catch {
      throw new PhotoError('photo.notImage', { name });
    }
  } else if (typeof HTMLImageElement !== 'undefined' && image instanceof HTMLImageElement) {
    await image.decode().catch(() => {});
    if (!image.naturalWidth) throw new PhotoError('photo.notImage', { name });
  } else if (typeof ImageData !== 'undefined' && image instanceof ImageData) {
    source = document.createElement('canvas');
    Object.assign(source, { width: image.width, height: image.height });
    source.getContext('2d').putImageData(image, 0, 0);
  } else if (!['HTMLCanvasElement', 'OffscreenCanvas', 'ImageBitmap', 'HTMLVideoElement'].some(
    (type) => typeof globalThis[type] !== 'undefined' && image instanceof globalThis[type])) {
    throw new PhotoError('photo.notImage', { name });
  }
  const width = source.naturalWidth || source.videoWidth || source.width;
  const height = source.naturalHeight || source.videoHeight || source.height;
  try {
    if (!(width >= MIN_SIDE && height >= MIN_SIDE)) throw new PhotoError('photo.tooSmall', { name, width, height });
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext('2d', { willReadFrequently: true }).drawImage(source, 0, 0, canvas.width, canvas.height);
    return { canvas, width, height, scale };
  } finally {
    decoded?.close();
  }
}

/** The faces face-api finds in `canvas`, largest first, each with its landmarks (and expression and sex). */
async function findFaces(reader, canvas) {
  const { faceapi, names } = reader;
  for (const inputSize of DETECTOR_SIZES) {
    let task = faceapi.detectAllFaces(canvas, new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.5 }))
      .withFaceLandmarks();
    if (names.includes('faceExpressionNet')) task = task.withFaceExpressions();
    if (names.includes('ageGenderNet')) task = task.withAgeAndGender();
    const found = await task;
    if (found.length) return found.sort((a, b) => b.detection.box.area - a.detection.box.area);
  }
  return [];
}

// ---------------------------------------------------------------- tags

/** Where `tag` is set among the page's choices: its group's name for an exclusive or at-most-one group, else itself. */
function keyOf(manifest, tag) {
  const group = manifest.groups.find((g) => g.tags.includes(tag));
  return group && (group.exclusive || group.at_most_one) ? group.name : tag;
}

/** The group of `manifest` holding any tag of `tags` (the hair colours, ...), or null. */
const groupWith = (manifest, tags) => manifest.groups.find((g) => g.tags.some((tag) => tags.includes(tag))) ?? null;

const clamp = (x) => Math.min(1, Math.max(0, x));

/**
 * A yes/no reading: `probability` (0 to 1) that `tag` applies; `on` is the likelier answer, `confidence`
 * the likelihood of that answer.
 */
const yesNo = (tag, probability) => ({ tag, on: probability >= 0.5, confidence: Math.max(probability, 1 - probability) });

/**
 * What the measurements say, as readings of the model's tags: [{ key, tag, on, confidence, sure, colour }].
 * `key` is where the page keeps the choice (the group's name, or the tag's), `on` true or false for a yes/no
 * tag and null for a colour, `sure` whether the confidence reaches SURE, `colour` the measured colour
 * ('#rrggbb') for hair and eyes.
 *
 * measured: photo-measure.js's measureFace ({ hair, iris, mouth, bridge }), plus `happy` (face-api's probability
 * of a happy expression) and `male` (its probability that the face is a man's), each absent where not estimated.
 */
export function readTags(measured, manifest) {
  const readings = [];
  const known = manifest.tags;
  const colour = (references, seen, quality) => {
    const group = groupWith(manifest, Object.keys(references));
    const nearest = seen && group && nearestColourTag(seen.rgb, references, group.tags, { quality });
    if (nearest) readings.push({ key: group.name, tag: nearest.tag, on: null, confidence: nearest.confidence, colour: rgbToHex(seen.rgb) });
  };
  const { hair, iris } = measured;
  // A line across the nose bridge of 8 L units is skin's own shading at most; from 20, a pair of glasses.
  const glasses = measured.bridge == null ? undefined : clamp((measured.bridge - 8) / 12);
  colour(HAIR_COLOURS, hair, hair?.quality);
  // Dark irises keep their colour to themselves: below L 20 it is no longer told, from L 40 fully; through
  // glasses, half as well.
  colour(EYE_COLOURS, iris, iris && clamp(iris.pixels / 16) * clamp((iris.lab[0] - 20) / 20) * (glasses >= 0.5 ? 0.5 : 1));
  if (hair?.below != null && hair.sides >= 0.15 && known.includes('long hair') && known.includes('short hair')) {
    // Hair beside the neck about as often as beside the face is long; none there, short. Only as sure as the
    // hair was seen at all.
    const reach = hair.below / Math.max(hair.sides, 0.15);
    const long = yesNo('long hair', clamp((reach - 0.15) / 0.35));
    readings.push({ tag: long.on ? 'long hair' : 'short hair', on: true, confidence: long.confidence * hair.quality });
  }
  const yesNoTags = [['smile', measured.happy], ['open mouth', clamp((measured.mouth - 0.06) / 0.14)],
    ['glasses', glasses], ['male', measured.male]];
  for (const [tag, probability] of yesNoTags) {
    if (known.includes(tag) && Number.isFinite(probability)) readings.push(yesNo(tag, probability));
  }
  for (const reading of readings) {
    if (reading.key === undefined) reading.key = keyOf(manifest, reading.tag);
    reading.sure = reading.confidence >= SURE;
  }
  return readings;
}

/**
 * Read a photo of a person: `image` an <img>, a canvas, an ImageBitmap, an ImageData, a <video> (its frame)
 * or a Blob (a File from a file picker or a drop), `manifest` the model's. Resolves to
 *   { tags, off, confidence, face, faces, readings, width, height }
 * tags: the tags to set (read with confidence >= SURE), off: the yes/no tags read as absent (smile when the
 * face does not smile), confidence: { tag: 0..1 } for every tag read, sure or not (an eye colour the reader
 * could not tell is here with a low number, and in neither list), face: { x, y, width, height } the face
 * read, in the photo's pixels, faces: every face found, largest first (`face` is faces[options.face ?? 0]),
 * readings: readTags' list, width and height: the photo's size.
 *
 * options: photoBase (the folder holding @vladmandic/face-api/ and @tensorflow/tfjs-backend-wasm/ as npm lays
 * them out; default node_modules/ beside this package), face (which face to read, an index into faces),
 * name (the photo's name in messages; default a File's name, else "the photo").
 *
 * Rejects with a PhotoError whose message is one line: not an image, too small, too large, no face, or the
 * reader could not be loaded.
 */
export async function tagsFromPhoto(image, manifest, options = {}) {
  const name = options.name ?? nameOf(image);
  const photo = await loadPhoto(image, name);
  const reader = await loadPhotoReader(manifest, options);
  const found = await findFaces(reader, photo.canvas);
  if (!found.length) throw new PhotoError('photo.noFace', { name });
  const index = Math.min(Math.max(0, Math.trunc(options.face ?? 0)), found.length - 1);
  const chosen = found[index];
  const pixels = photo.canvas.getContext('2d', { willReadFrequently: true })
    .getImageData(0, 0, photo.canvas.width, photo.canvas.height);
  const points = chosen.landmarks.positions.map(({ x, y }) => [x, y]);
  const measured = measureFace(pixels, points);
  measured.happy = chosen.expressions?.happy;
  if (chosen.gender) measured.male = chosen.gender === 'male' ? chosen.genderProbability : 1 - chosen.genderProbability;
  const readings = readTags(measured, manifest);
  const box = ({ detection: { box: b } }) => ({
    x: b.x / photo.scale, y: b.y / photo.scale, width: b.width / photo.scale, height: b.height / photo.scale,
  });
  const faces = found.map(box);
  return {
    tags: readings.filter((r) => r.sure && r.on !== false).map((r) => r.tag),
    off: readings.filter((r) => r.sure && r.on === false).map((r) => r.tag),
    confidence: Object.fromEntries(readings.map((r) => [r.tag, r.confidence])),
    face: faces[index],
    faces,
    readings,
    width: photo.width,
    height: photo.height,
  };
}
