// Tag names and "random" tags, the JavaScript twin of common/vocab.py: the same spellings, the same errors
// (word for word) and the same draws as `Vocabulary.parse` and `Vocabulary.sample_labels`, so a seed and
// a tag list give the same label vectors here as in `export.runtime`. The tags, groups and priors come
// from the model's manifest; only the table of other spellings lives here as well as in Python (a test
// checks that the two tables are equal).

import { cumsum, numpySum, searchRight } from './numpy-random.js';

/** Spellings met in real tag files (common/vocab.py's ALIASES). */
export const ALIASES = {
  'gray hair': 'grey hair',
  'blond hair': 'blonde hair',
  'twin tails': 'twintails',
  'twintail': 'twintails',
  'drill': 'drill hair',
  'drills': 'drill hair',
  'pony tail': 'ponytail',
  'blushing': 'blush',
  'smiling': 'smile',
  'eyeglasses': 'glasses',
  'hair ribbon': 'ribbon',
};

/** A tag name that is unknown to the model, or a combination its groups forbid (Python's TagError). */
export class TagError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TagError';
  }
}

// Python's str.split() / str.strip() whitespace, which is not quite JavaScript's \s.
const SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const EDGES = new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, 'g');
const RUNS = new RegExp(`[${SPACE}]+`);
const COLOUR_TAG = /[a-z]+ (?:hair|eyes)/g;

const strip = (text) => text.replace(EDGES, '');
const normalise = (name) => strip(name.toLowerCase().replaceAll('_', ' ')).split(RUNS).filter(Boolean).join(' ');

/**
 * Python's repr() of a string, as the error messages quote tags: its choice of quotes, its escapes, and
 * \xNN / \uNNNN for the control, separator and invisible characters a typed tag may hold.
 */
function pyRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = Array.from(text, (c) => {
    if (c === '\\' || c === quote) return `\\${c}`;
    const named = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }[c];
    if (named) return named;
    const code = c.codePointAt(0);
    if (code < 0x20 || (code >= 0x7f && code <= 0xa0) || code === 0xad) return `\\x${code.toString(16).padStart(2, '0')}`;
    if (/[\p{Z}\p{Cc}\p{Cf}]/u.test(c) && c !== ' ') return `\\u${code.toString(16).padStart(4, '0')}`;
    return c;
  });
  return `${quote}${escaped.join('')}${quote}`;
}

/**
 * A tag text split into names (common/vocab.py's split_tag_text): "silver hair;red eyes", a comma list,
 * or the MLDS format without separators ("aqua hair aqua eyes").
 */
export function splitTagText(text) {
  text = strip(text);
  for (const sep of [';', ',']) {
    if (text.includes(sep)) return text.split(sep).map(strip).filter(Boolean);
  }
  if (!text) return [];
  const found = normalise(text).match(COLOUR_TAG) ?? [];
  return found.length && found.join(' ') === normalise(text) ? found : [text];
}

/** The model's spelling of `tag` (aliases and case, spaces and underscores forgiven), else a TagError. */
function resolveTag(manifest, tag) {
  if (typeof tag !== 'string') throw new TagError(`tags are names (strings), got ${String(tag)}`);
  const name = ALIASES[normalise(tag)] ?? normalise(tag);
  if (!manifest.tags.includes(name)) {
    throw new TagError(`unknown tag ${pyRepr(strip(tag))}; valid tags: ${manifest.tags.join(', ')}`);
  }
  return name;
}

/**
 * A user's choice of tags (a text like "silver hair, red eyes" or a list) as the model's tag names, each
 * once; two tags of one exclusive or at-most-one group are a TagError (Vocabulary.parse).
 */
export function parseTags(manifest, tags) {
  const list = typeof tags === 'string' ? splitTagText(tags) : Array.from(tags ?? []);
  const names = [...new Set(list.map((tag) => resolveTag(manifest, tag)))];
  for (const group of manifest.groups) {
    const chosen = names.filter((tag) => group.tags.includes(tag));
    if (chosen.length > 1 && (group.exclusive || group.at_most_one)) {
      const kind = group.exclusive ? 'exclusive' : 'at-most-one';
      throw new TagError(`${chosen.map(pyRepr).join(' and ')} are both in the ${kind} group ${pyRepr(group.name)}; `
        + `pick one of: ${group.tags.join(', ')}`);
    }
  }
  return names;
}

/**
 * n label vectors (Float32Array n*T, manifest tag order) with the `chosen` tags on and the others drawn
 * from the groups' priors with `rng` (a NumpyRandom): Vocabulary.sample_labels, draw for draw. One tag
 * per exclusive group; in an at-most-one group one uniform draw picks a tag with its frequency, or none
 * with what is left; every other tag on with its own frequency. Every group is drawn whatever was chosen,
 * so fixing one tag leaves the other draws as they were.
 */
export function sampleLabels(manifest, n, rng, chosen = []) {
  const T = manifest.tags.length;
  const column = new Map(manifest.tags.map((tag, i) => [tag, i]));
  const fixed = new Set(chosen);
  const labels = new Float32Array(n * T);
  for (const group of manifest.groups) {
    const cols = group.tags.map((tag) => column.get(tag));
    const priors = group.priors.map(Number);
    const forced = group.tags.findIndex((tag) => fixed.has(tag));
    if (group.exclusive) {
      const p = priors.map((x) => Math.max(x, 1e-6));
      const total = numpySum(p);
      const picks = rng.choice(cols.length, n, p.map((x) => x / total));
      for (let i = 0; i < n; i++) labels[i * T + cols[forced >= 0 ? forced : picks[i]]] = 1;
    } else if (group.at_most_one) {
      const p = priors.map((x) => Math.max(x, 0));
      const scale = Math.max(numpySum(p), 1);
      const edges = cumsum(p.map((x) => x / scale));
      const picks = Array.from(rng.randomArray(n), (u) => searchRight(edges, u));   // cols.length: none
      for (let i = 0; i < n; i++) {
        const pick = forced >= 0 ? forced : picks[i];
        if (pick < cols.length) labels[i * T + cols[pick]] = 1;
      }
    } else {
      const u = rng.randomArray(n * cols.length);
      for (let i = 0; i < n; i++) {
        cols.forEach((col, j) => {
          labels[i * T + col] = fixed.has(group.tags[j]) ? 1 : Number(u[i * cols.length + j] < priors[j]);
        });
      }
    }
  }
  return labels;
}
