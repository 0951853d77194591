// Tag choices -> label vectors, and the share-link state <-> URL hash.
// Everything random here is drawn from a seed, so a hash with the seeds redraws the same faces.

import { mix, uniform } from './rng.js';

export const RANDOM = 'random';

/** Every tag and exclusive group starts on "random". */
export function defaultChoices(manifest) {
  const choices = {};
  for (const group of manifest.groups) {
    if (group.exclusive) choices[group.name] = RANDOM;
    else for (const tag of group.tags) choices[tag] = RANDOM;
  }
  return choices;
}

function priorsOf(group) {
  const given = Array.isArray(group.priors) && group.priors.length === group.tags.length;
  if (!given) return group.tags.map(() => (group.exclusive ? 1 / group.tags.length : 0.5));
  return group.priors.map(Number);
}

/**
 * The label vector (manifest tag order, 1 on / 0 off) for one face. Random tags follow the manifest's
 * priors, drawn from `seed`. One draw is made for every group and tag whatever the choice, so setting
 * one tag leaves the random picks of all the others as they were.
 */
export function labelsFor(manifest, choices, seed) {
  const index = new Map(manifest.tags.map((tag, i) => [tag, i]));
  const labels = new Float32Array(manifest.tags.length);
  const rand = uniform(seed);
  for (const group of manifest.groups) {
    const priors = priorsOf(group);
    if (group.exclusive) {
      const u = rand() * priors.reduce((a, b) => a + b, 0);
      let pick = group.tags[group.tags.length - 1];
      let acc = 0;
      for (let j = 0; j < group.tags.length; j++) {
        acc += priors[j];
        if (u < acc) { pick = group.tags[j]; break; }
      }
      const chosen = choices[group.name];
      labels[index.get(chosen && chosen !== RANDOM ? chosen : pick)] = 1;
    } else {
      group.tags.forEach((tag, j) => {
        const u = rand();
        const choice = choices[tag] ?? RANDOM;
        labels[index.get(tag)] = choice === 'on' ? 1 : choice === 'off' ? 0 : Number(u < priors[j]);
      });
    }
  }
  return labels;
}

/** Seed of the labels of face `i` of a batch (a separate stream from the noise seeds). */
export function labelSeed(tagSeed, i) {
  return mix(tagSeed, i, 1);
}

/** Seed of the noise of face `i` of a batch. */
export function noiseSeed(seed, i) {
  return mix(seed, i);
}

function encodeFloats(values) {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** Float32 values from base64url; null when the text is not base64url of whole, finite floats. */
function decodeFloats(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  let binary;
  try {
    binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  } catch {
    return null;  // a length no base64 text can have
  }
  if (binary.length % 4) return null;
  const values = new Float32Array(Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer);
  return values.every(Number.isFinite) ? values : null;
}

/**
 * The share-link hash: s (noise seed), t (tag seed), n (batch size), on / off (tags forced on or off,
 * comma-separated; an exclusive group's pick is in `on`), m (model file), and lock: the locked noise
 * as "seed.index" or, for a face without one (an interpolation frame), the Float32 noise in base64url.
 */
export function encodeState({ seed, tagSeed, n, choices, lock, model }, manifest) {
  const on = [], off = [];
  for (const group of manifest.groups) {
    if (group.exclusive) {
      if (choices[group.name] && choices[group.name] !== RANDOM) on.push(choices[group.name]);
    } else {
      for (const tag of group.tags) {
        if (choices[tag] === 'on') on.push(tag);
        if (choices[tag] === 'off') off.push(tag);
      }
    }
  }
  const params = new URLSearchParams({ s: String(seed), t: String(tagSeed), n: String(n) });
  if (on.length) params.set('on', on.join(','));
  if (off.length) params.set('off', off.join(','));
  if (lock) params.set('lock', lock.ref ?? encodeFloats(lock.noise));
  if (model) params.set('m', model);
  return params.toString();
}

/**
 * Inverse of encodeState. A link may be hand-edited, truncated or made for another model: a part that
 * cannot be used (a seed that is not a whole number, a tag the model lacks, a lock that is neither
 * "seed.index" nor noise of the model's size) is left out, and its key listed in `dropped`, so the page
 * can say so and still draw the rest. Never throws.
 */
export function decodeState(hash, manifest) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const dropped = new Set();
  const uint = (key, least = 0) => {
    if (!params.has(key)) return null;
    const text = params.get(key);
    if (/^\d{1,10}$/.test(text) && Number(text) >= least && Number(text) < 2 ** 32) return Number(text);
    dropped.add(key);
    return null;
  };
  const choices = defaultChoices(manifest);
  const groupOf = new Map(manifest.groups.flatMap((g) => g.tags.map((t) => [t, g])));
  for (const [key, value] of [['on', 'on'], ['off', 'off']]) {
    for (const tag of (params.get(key) ?? '').split(',').filter(Boolean)) {
      const group = groupOf.get(tag);
      if (!group || (group.exclusive && value === 'off')) dropped.add(key);
      else if (group.exclusive) choices[group.name] = tag;
      else choices[tag] = value;
    }
  }
  let lock = null;
  if (params.has('lock')) {
    const text = params.get('lock');
    const ref = /^(\d{1,10})\.(\d{1,2})$/.exec(text);
    const noise = ref ? null : decodeFloats(text);
    if (ref && Number(ref[1]) < 2 ** 32 && Number(ref[2]) < 64) {
      lock = { ref: text, seed: Number(ref[1]), index: Number(ref[2]) };
    } else if (noise?.length === manifest.noise_dim) {
      lock = { noise };
    } else {
      dropped.add('lock');
    }
  }
  return {
    seed: uint('s'), tagSeed: uint('t'), n: uint('n', 1), choices, lock, model: params.get('m'),
    dropped: [...dropped],
  };
}
