// The page's tag choices, and its share-link state <-> URL hash. A link holds the seeds (the noise seed s
// and the tag seed t), so it redraws the same faces: noise and labels are drawn from them as
// export.runtime draws them (kyara.js), and when s == t the batch is `generate({ tags, n, seed: s })`.
// A batch of variations of one face holds that face's noise and labels and the variations' seed instead.

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

/**
 * The tags a set of choices forces on (passed to the generator as its tags) and off (cleared in the labels
 * it draws): a tag or a group's pick set to On is on, a tag set to Off is off, and an at-most-one group set
 * to None has all its tags off. Everything on Random is left to the draw.
 */
export function chosenTags(manifest, choices) {
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
  return { on, off };
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

/** A face's noise in a link: "seed.index" where it has a ref, else its Float32 values in base64url. */
const noiseText = ({ ref, noise }) => ref ?? encodeFloats(noise);

/**
 * The share-link hash: s (noise seed), t (tag seed), n (batch size), on / off (tags forced on or off,
 * comma-separated; an exclusive or at-most-one group's pick is in `on`, an at-most-one group set to None
 * lists all its tags in `off`), m (model file), and lock: the locked noise
 * as "seed.index" or, for a face without one (an interpolation frame, a variation), the Float32 noise in
 * base64url. A batch of variations (`variations`: { seed, ref, noise, labels } of the face varied) is
 * v (the variations' seed), of (the face's noise, as lock), y (its labels, Float32 in base64url), n and m.
 * Either kind ends with hd (2 or 4: faces shown upscaled to that many times the model's size) when HD is on,
 * and hg=1 when the result grid is shown in HD too.
 */
export function encodeState({ seed, tagSeed, n, choices, lock, model, variations, hd = 1, hdGrid = false }, manifest) {
  const withHd = (params) => {
    if (hd > 1) params.set('hd', String(hd));
    if (hd > 1 && hdGrid) params.set('hg', '1');
    return params.toString();
  };
  if (variations) {
    const params = new URLSearchParams({
      v: String(variations.seed), of: noiseText(variations), y: encodeFloats(variations.labels), n: String(n),
    });
    if (model) params.set('m', model);
    return withHd(params);
  }
  const { on, off } = chosenTags(manifest, choices);
  const params = new URLSearchParams({ s: String(seed), t: String(tagSeed), n: String(n) });
  if (on.length) params.set('on', on.join(','));
  if (off.length) params.set('off', off.join(','));
  if (lock) params.set('lock', noiseText(lock));
  if (model) params.set('m', model);
  return withHd(params);
}

/** The HD sizes a link may ask for (times the model's resolution); 1 is HD off. */
export const HD_SCALES = [1, 2, 4];

/** A link's noise text (noiseText) read back: { ref, seed, index }, { noise }, or null if it is neither. */
function readNoiseText(text, manifest) {
  const ref = /^(\d{1,10})\.(\d{1,2})$/.exec(text);
  if (ref) {
    const [seed, index] = [Number(ref[1]), Number(ref[2])];
    return seed < 2 ** 32 && index < 64 ? { ref: text, seed, index } : null;
  }
  const noise = decodeFloats(text);
  return noise?.length === manifest.noise_dim ? { noise } : null;
}

/**
 * Inverse of encodeState. A link may be hand-edited, truncated or made for another model: a part that
 * cannot be used (a seed that is not a whole number, a tag the model lacks, a lock that is neither
 * "seed.index" nor noise of the model's size, two tags of an at-most-one group at once, labels that are
 * not one value in [0, 1] per tag, an hd that is not 2 or 4) is left out, and its key listed in `dropped`,
 * so the page can say so and still draw the rest. Never throws. `variations` ({ seed, of (as `lock`),
 * labels }) is null unless v, of and y can all be used; hd is null where the link does not say, and hdGrid
 * true only for hg=1.
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
  const lock = params.has('lock') ? readNoiseText(params.get('lock'), manifest) : null;
  if (params.has('lock') && !lock) dropped.add('lock');
  let variations = null;
  if (params.has('v')) {
    const seed = uint('v');
    const face = readNoiseText(params.get('of') ?? '', manifest);
    const labels = decodeFloats(params.get('y') ?? '');
    const labelsOk = labels?.length === manifest.tags.length && labels.every((value) => value >= 0 && value <= 1);
    if (!face) dropped.add('of');
    if (!labelsOk) dropped.add('y');
    if (seed !== null && face && labelsOk) variations = { seed, of: face, labels };
  }
  let hd = null;
  if (params.has('hd')) {
    hd = HD_SCALES.find((scale) => String(scale) === params.get('hd')) ?? null;
    if (hd === null) dropped.add('hd');
  }
  return {
    seed: uint('s'), tagSeed: uint('t'), n: uint('n', 1), choices, lock, model: params.get('m'), variations, hd,
    hdGrid: params.get('hg') === '1',
    dropped: [...dropped],
  };
}
