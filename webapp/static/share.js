// The page's tag choices, and its share-link state <-> URL hash. A link holds the seeds (the noise seed s
// and the tag seed t), so it redraws the same faces: noise and labels are drawn from them as
// export.runtime draws them (kyara.js), and when s == t the batch is `generate({ tags, n, seed: s })`.
// A batch of variations of one face holds that face's noise and labels and the variations' seed instead.

export const RANDOM = 'random';
export const NONE = 'none';  // the choice "no tag of this at-most-one group" (neither long nor short hair)

// Advanced mode's choices are numbers. A tag outside an exclusive or at-most-one group is a value (a number:
// 0 is off, 1 on, 0.4 "a little"); a group is a mix { weights: { tag: weight }, none: weight } whose weights
// (0 to 1, as its sliders go) are normalised to sum to 1, as the one-hot labels the model was trained on do
// (at-most-one groups count `none` among them). The model saw only 0 and 1 for a tag: a tag's value may go
// beyond, within VALUE_RANGE, and the page marks it.
export const VALUE_RANGE = [-2, 3];
export const WEIGHT_RANGE = [0, 1];

/** Whether `value` is one the model saw in training for a tag (0 to 1). */
export const inTraining = (value) => value >= 0 && value <= 1;

/** Whether a choice is a group's mix. */
export const isMix = (choice) => choice !== null && typeof choice === 'object';

/** A group's mix as one value per tag of the group (normalised: with `none`, they sum to 1); null when every
 * weight is 0 (a mix of nothing: the group is drawn). */
export function mixValues(group, choice) {
  const weights = group.tags.map((tag) => choice.weights[tag] ?? 0);
  const total = weights.reduce((sum, w) => sum + w, 0) + (group.at_most_one ? choice.none ?? 0 : 0);
  return total > 0 ? weights.map((w) => w / total) : null;
}

/**
 * The simplest choice that gives the same labels: a value of exactly 0 or 1 is 'off' or 'on'; a mix with one
 * weight above 0 is that tag (NONE for `none` alone), and with none, RANDOM. `group` is null for a tag outside
 * an exclusive or at-most-one group.
 */
export function canonical(group, choice) {
  if (typeof choice === 'number') return choice === 1 ? 'on' : choice === 0 ? 'off' : choice;
  if (!isMix(choice)) return choice;
  const used = group.tags.filter((tag) => (choice.weights[tag] ?? 0) > 0);
  const none = Boolean(group.at_most_one) && (choice.none ?? 0) > 0;
  if (used.length + Number(none) === 0) return RANDOM;
  if (used.length + Number(none) === 1) return none ? NONE : used[0];
  return choice;
}

/** The nearest choice the simple pickers offer (random / on / off, a tag, none): what turning advanced mode
 * off shows. A value is on from 0.5; a mix is its heaviest weight (the first of equal ones). */
export function simpleChoice(group, choice) {
  const exact = canonical(group, choice);
  if (typeof exact === 'number') return exact >= 0.5 ? 'on' : 'off';
  if (!isMix(exact)) return exact;
  const entries = [...group.tags.map((tag) => [tag, exact.weights[tag] ?? 0]), ...(group.at_most_one ? [[NONE, exact.none ?? 0]] : [])];
  return entries.reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0];
}

/** Whether any choice needs advanced mode to be shown (a value other than 0 and 1, or a mix). */
export function needsAdvanced(manifest, choices) {
  return manifest.groups.some((group) => (group.exclusive || group.at_most_one
    ? isMix(canonical(group, choices[group.name]))
    : group.tags.some((tag) => typeof canonical(null, choices[tag]) === 'number')));
}

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
 * to None has all its tags off. Everything on Random is left to the draw. `values` ([tag, number] pairs)
 * are the tags advanced mode sets to other numbers, written over the draw: a value as it is, and every tag
 * of a mixed group its normalised weight. A number or mix that is a simple choice (canonical) counts as it.
 */
export function chosenTags(manifest, choices) {
  const on = [], off = [], values = [];
  for (const group of manifest.groups) {
    if (group.exclusive || group.at_most_one) {
      const choice = canonical(group, choices[group.name]);
      if (choice === NONE) off.push(...group.tags);
      else if (isMix(choice)) mixValues(group, choice).forEach((value, i) => values.push([group.tags[i], value]));
      else if (choice && choice !== RANDOM) on.push(choice);
    } else {
      for (const tag of group.tags) {
        const choice = canonical(null, choices[tag]);
        if (choice === 'on') on.push(tag);
        if (choice === 'off') off.push(tag);
        if (typeof choice === 'number') values.push([tag, choice]);
      }
    }
  }
  return { on, off, values };
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
 * and hg=1 when the result grid is shown in HD too. Advanced mode's numbers follow off: w, comma-separated
 * tag:number pairs (a tag's value, or a mixed group's weights as set, those above 0), and wn, group:number
 * pairs (an at-most-one group's weight of none); a value of 0 or 1, or a mix of one tag, is in on / off.
 * The numbers are written as JavaScript writes them, so the visitor's page normalises the same numbers.
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
  const { w, wn } = valueTexts(manifest, choices);
  if (w.length) params.set('w', w.join(','));
  if (wn.length) params.set('wn', wn.join(','));
  if (lock) params.set('lock', noiseText(lock));
  if (model) params.set('m', model);
  return withHd(params);
}

/** The w and wn entries of a link (encodeState) for the choices that are numbers. */
function valueTexts(manifest, choices) {
  const w = [], wn = [];
  for (const group of manifest.groups) {
    if (group.exclusive || group.at_most_one) {
      const choice = canonical(group, choices[group.name]);
      if (!isMix(choice)) continue;
      for (const tag of group.tags) if ((choice.weights[tag] ?? 0) > 0) w.push(`${tag}:${choice.weights[tag]}`);
      if (group.at_most_one && (choice.none ?? 0) > 0) wn.push(`${group.name}:${choice.none}`);
    } else {
      for (const tag of group.tags) {
        const choice = canonical(null, choices[tag]);
        if (typeof choice === 'number') w.push(`${tag}:${choice}`);
      }
    }
  }
  return { w, wn };
}

/** "name:number" -> [name, number], or null (the number is the last part: a name may hold a colon). */
function readPair(text) {
  const at = text.lastIndexOf(':');
  const number = text.slice(at + 1);
  if (at < 1 || !/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(number)) return null;
  const value = Number(number);
  return Number.isFinite(value) ? [text.slice(0, at), value] : null;
}

const within = (value, [least, most]) => value >= least && value <= most;

/**
 * Read w and wn (encodeState) into `choices`, where on / off left a tag or group on Random: a value in
 * VALUE_RANGE for a tag, weights in WEIGHT_RANGE for a group. Anything else (an unknown tag or group, a
 * number out of range, a tag or group that on / off already set) adds the key to `dropped`, entry by entry.
 */
function readValues(params, manifest, choices, dropped) {
  const groupOf = new Map(manifest.groups.flatMap((g) => g.tags.map((t) => [t, g])));
  const byName = new Map(manifest.groups.map((g) => [g.name, g]));
  const mixes = new Map();  // group -> its mix, read in full before it is used
  const mixOf = (group) => {
    if (!mixes.has(group)) mixes.set(group, { weights: {}, none: 0 });
    return mixes.get(group);
  };
  for (const key of ['w', 'wn']) {
    for (const entry of (params.get(key) ?? '').split(',').filter(Boolean)) {
      const pair = readPair(entry);
      const group = pair && (key === 'w' ? groupOf.get(pair[0]) : byName.get(pair[0]));
      const grouped = group && (group.exclusive || group.at_most_one);
      const ok = group && (key === 'w' ? within(pair[1], grouped ? WEIGHT_RANGE : VALUE_RANGE)
        : group.at_most_one && within(pair[1], WEIGHT_RANGE));
      if (!ok) dropped.add(key);
      else if (!grouped) {
        if (choices[pair[0]] === RANDOM) choices[pair[0]] = pair[1];
        else dropped.add(key);
      } else if (key === 'w') mixOf(group).weights[pair[0]] = pair[1];
      else mixOf(group).none = pair[1];
    }
  }
  for (const [group, mix] of mixes) {
    if (choices[group.name] === RANDOM) choices[group.name] = mix;
    else dropped.add('w');
  }
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
 * not one value in VALUE_RANGE per tag, a value or weight out of its range, an hd that is not 2 or 4) is
 * left out, and its key listed in `dropped`,
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
  readValues(params, manifest, choices, dropped);
  const lock = params.has('lock') ? readNoiseText(params.get('lock'), manifest) : null;
  if (params.has('lock') && !lock) dropped.add('lock');
  let variations = null;
  if (params.has('v')) {
    const seed = uint('v');
    const face = readNoiseText(params.get('of') ?? '', manifest);
    const labels = decodeFloats(params.get('y') ?? '');
    const labelsOk = labels?.length === manifest.tags.length && labels.every((value) => within(value, VALUE_RANGE));
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
