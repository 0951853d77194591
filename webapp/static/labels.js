// Tag choices -> label vectors, and the share-link state <-> URL hash.
// Everything random here is drawn from a seed, so a hash with the seeds redraws the same faces.

import { mix, uniform } from './rng.js';

export const RANDOM = 'random';
export const NONE = 'none';  // the choice "no tag of this at-most-one group" (neither long nor short hair)

/**
 * Every tag, exclusive group and at-most-one group starts on "random". A group of either kind is one
 * choice (keyed by the group's name), so the page cannot ask for two of its tags at once.
 */
export function defaultChoices(manifest) {
  const choices = {};
  for (const group of manifest.groups) {
    if (group.exclusive || group.at_most_one) choices[group.name] = RANDOM;
    else for (const tag of group.tags) choices[tag] = RANDOM;
  }
  return choices;
}

function priorsOf(group) {
  const given = Array.isArray(group.priors) && group.priors.length === group.tags.length;
  if (!given) {
    const share = group.exclusive ? 1 / group.tags.length : group.at_most_one ? 1 / (group.tags.length + 1) : 0.5;
    return group.tags.map(() => share);
  }
  return group.priors.map(Number);
}

/**
 * The label vector (manifest tag order, 1 on / 0 off) for one face. Random tags follow the manifest's
 * priors, drawn from `seed`. One draw is made for every group and tag whatever the choice, so setting
 * one tag leaves the random picks of all the others as they were. The draws are those of Python's
 * `Vocabulary.sample_labels` for one face, in the same order: fed the same uniform numbers, both give the
 * same labels.
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
    } else if (group.at_most_one) {
      // One draw picks a tag with its frequency, or none with what is left (frequencies summing over 1
      // are scaled down to 1).
      const p = priors.map((x) => Math.max(x, 0));
      const scale = Math.max(p.reduce((a, b) => a + b, 0), 1);
      const u = rand();
      let pick = null;
      let edge = 0;
      for (let j = 0; j < group.tags.length; j++) {
        edge += p[j] / scale;
        if (u < edge) { pick = group.tags[j]; break; }
      }
      const chosen = choices[group.name] ?? RANDOM;
      const on = chosen === RANDOM ? pick : chosen === NONE ? null : chosen;
      if (on !== null) labels[index.get(on)] = 1;
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
 * comma-separated; an exclusive or at-most-one group's pick is in `on`, an at-most-one group set to None
 * lists all its tags in `off`), m (model file), and lock: the locked noise
 * as "seed.index" or, for a face without one (an interpolation frame), the Float32 noise in base64url.
 */
export function encodeState({ seed, tagSeed, n, choices, lock, model }, manifest) {
  const on = [], off = [];
  for (const group of manifest.groups) {
    if (group.exclusive || group.at_most_one) {
      const choice = choices[group.name];
      if (choice === NONE) off.push(...group.tags);
      else if (choice && choice !== RANDOM) on.push(choice);
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
 * "seed.index" nor noise of the model's size, two tags of an at-most-one group at once) is left out, and
 * its key listed in `dropped`, so the page can say so and still draw the rest. Never throws.
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
  const named = new Map();  // at-most-one group -> { on, off }: the tags the link names, read as a whole below
  for (const [key, value] of [['on', 'on'], ['off', 'off']]) {
    for (const tag of (params.get(key) ?? '').split(',').filter(Boolean)) {
      const group = groupOf.get(tag);
      if (!group || (group.exclusive && value === 'off')) dropped.add(key);
      else if (group.exclusive) choices[group.name] = tag;
      else if (group.at_most_one) {
        if (!named.has(group)) named.set(group, { on: new Set(), off: new Set() });
        named.get(group)[value].add(tag);
      } else choices[tag] = value;
    }
  }
  for (const [group, { on, off }] of named) {
    if (on.size > 1 || [...on].some((tag) => off.has(tag))) dropped.add('on');  // long and short hair at once
    else if (on.size === 1) choices[group.name] = [...on][0];
    else if (off.size === group.tags.length) choices[group.name] = NONE;
    else dropped.add('off');  // "not long hair" alone is no choice the page offers
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
