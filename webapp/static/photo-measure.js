// What a photo's pixels say about one face, given its 68 landmarks (face-api's, in the iBUG 300-W order):
// the hair colour and how far down the hair falls, the iris colour, how open the mouth is and whether
// glasses cross the nose. Numbers only: photo.js turns them into tags (photo-colours.js names the colours).
//
// Everything is measured in the face's own frame, so a tilted head reads like an upright one: the origin
// between the eye centres, u along the eye line (to the right of the picture), v down the face, both in
// units of the face's width (landmark 0 to landmark 16, the face's edges at the eyes). The eyebrows sit
// near v = -0.2, the chin near v = 0.85 and the top of the hair near v = -0.9.
//
// face-api gives no hair or person mask, so the hair is looked for as a person would: along rays from the
// face outwards, over the top of the head and down both sides, past the skin, the longest stretch of one
// colour that is not the background (the colour the ray ends in, or the colours far beside and above the
// head). Light and shade of one hair (lit on top, shaded at the sides) are joined as colours a chain of
// close ones links. Hair shows both over the face and beside it; where the top and the sides disagree (a hat,
// a cap, a hood) the reading is less sure.

import { labToSrgb, srgbToLab } from './photo-colours.js';

// The rays, in face units: from an oval just past the brows and the eyes, every RAY_STEP degrees from straight
// up to RAY_SPREAD degrees either side (a little below the horizontal), at most RAY_LENGTH long.
const OVAL = { centre: 0.15, across: 0.40, above: 0.04 };      // above: how far above the brows the oval passes
const RAY_SPREAD = 135;
const RAY_STEP = 5;
const RAY_LENGTH = 0.9;
const RAY_SAMPLES = 120;         // points a face's width, at most: a large photo is sampled as a small one
const SIDEWAYS = 45;             // rays further than this from straight up go down the sides
const BOTH_SIDES = 0.15;         // a colour this share of the rays on each side find is seen on both sides
const DISAGREE = 0.4;            // how much less sure a hair colour is when the top and the sides disagree
// Beside the jaw and the neck: where long hair falls and short hair does not.
const BELOW = { u: [0.45, 0.80], v: [0.55, 1.05] };
// Background: anything far beside the head (down to the shoulders) or far above it.
const FAR_SIDE = 1.0;            // |u| from which a pixel above the shoulders is background
const SHOULDERS = 0.35;          // v of the shoulders' top, about
const FAR_ABOVE = 1.05;          // how far above the brows the background starts
// Skin: the cheeks below the eyes, beside the nose.
const CHEEK = { u: [0.12, 0.30], v: [0.18, 0.38] };
// The nose bridge between the eyes, where a pair of glasses has its bridge.
const BRIDGE = { u: [-0.06, 0.06], v: [-0.10, 0.08] };

const SKIN_DISTANCE = [12, 20];  // Lab distance within which a pixel is taken for skin (the least and the most)
const BACKGROUND_DISTANCE = 12;  // ... for one of the background's colours
const HAIR_DISTANCE = 14;        // ... for the hair colour, below the jaw
const STRETCH = 24;              // ... for a pixel from the mean of the stretch of hair it continues
const SKIN_START = 30;           // ... for a ray's first pixel from the cheeks' colour, to start on skin
const SKIN_STEP = 24;            // ... for a pixel from the skin just before it, to stay on skin
const SKIN_REACH = 0.35;         // the most skin a ray crosses (face units): a forehead, not a bald head's top
const SHADES = 32;               // colour groups of the hair this close (Lab) are its light and shade
const LEAST_STRETCH = 0.02;      // a stretch shorter than this (face units, and 3 pixels) is a line or an edge

const mean = (points) => points.reduce(([x, y], [px, py]) => [x + px / points.length, y + py / points.length], [0, 0]);
const distance = ([x1, y1], [x2, y2]) => Math.hypot(x2 - x1, y2 - y1);
const labDistance = ([L1, a1, b1], [L2, a2, b2]) => Math.hypot(L1 - L2, a1 - a2, b1 - b2);

/** The face frame of 68 landmarks ([x, y] pixels): converts between image pixels and face units. */
export function faceFrame(points) {
  const left = mean(points.slice(36, 42)), right = mean(points.slice(42, 48));
  const length = distance(left, right) || 1;
  const u = [(right[0] - left[0]) / length, (right[1] - left[1]) / length];
  const v = [-u[1], u[0]];
  const origin = mean([left, right]);
  const width = distance(points[0], points[16]) || length * 2;
  const toFace = ([x, y]) => {
    const dx = x - origin[0], dy = y - origin[1];
    return [(dx * u[0] + dy * u[1]) / width, (dx * v[0] + dy * v[1]) / width];
  };
  const toImage = ([s, t]) => [origin[0] + (s * u[0] + t * v[0]) * width, origin[1] + (s * u[1] + t * v[1]) * width];
  const brows = Math.min(...points.slice(17, 27).map((p) => toFace(p)[1]));
  return { width, toFace, toImage, brows };
}

/** Lab of the pixel at (x, y) of `pixels` (an ImageData), or null outside it; remembered by colour. */
function reader(pixels) {
  const cache = new Map();
  return (x, y) => {
    const xi = Math.round(x), yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= pixels.width || yi >= pixels.height) return null;
    const i = (yi * pixels.width + xi) * 4;
    const key = (pixels.data[i] << 16) | (pixels.data[i + 1] << 8) | pixels.data[i + 2];
    let lab = cache.get(key);
    if (!lab) {
      lab = srgbToLab([pixels.data[i], pixels.data[i + 1], pixels.data[i + 2]]);
      cache.set(key, lab);
    }
    return lab;
  };
}

/**
 * The pixels of a band of the face frame ({ u: [from, to], v: [from, to] }; `side` -1 mirrors u to the left
 * of the face), sampled on a grid of at most `across` points a side and at least one pixel apart: their Lab
 * colours, and the share of the band that lies inside the photo.
 */
function band(read, frame, { u, v }, side = 1, across = 40) {
  const [u0, u1] = side > 0 ? u : [-u[1], -u[0]];
  const step = Math.max(1 / frame.width, Math.max(u1 - u0, v[1] - v[0]) / across);
  const colours = [];
  let total = 0;
  for (let t = v[0] + step / 2; t < v[1]; t += step) {
    for (let s = u0 + step / 2; s < u1; s += step) {
      total += 1;
      const lab = read(...frame.toImage([s, t]));
      if (lab) colours.push(lab);
    }
  }
  return { colours, inside: total ? colours.length / total : 0 };
}

/** The component-wise median of Lab colours. */
function median(colours) {
  return [0, 1, 2].map((c) => {
    const values = colours.map((lab) => lab[c]).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  });
}

/**
 * k-means of Lab colours (plain distance), started from the colours at evenly spaced lightness ranks so the
 * same pixels always give the same groups. Returns the centres and each colour's group.
 */
export function clusters(colours, k, rounds = 10) {
  if (colours.length <= k) return { centres: colours.map((c) => [...c]), groups: colours.map((_, i) => i) };
  const byLightness = [...colours].sort((a, b) => a[0] - b[0]);
  const centres = Array.from({ length: k }, (_, i) => [...byLightness[Math.floor(((i + 0.5) * colours.length) / k)]]);
  const groups = new Array(colours.length).fill(0);
  for (let round = 0; round < rounds; round++) {
    colours.forEach((lab, i) => {
      let best = 0;
      for (let j = 1; j < k; j++) if (labDistance(lab, centres[j]) < labDistance(lab, centres[best])) best = j;
      groups[i] = best;
    });
    for (let j = 0; j < k; j++) {
      const members = colours.filter((_, i) => groups[i] === j);
      if (members.length) centres[j] = [0, 1, 2].map((c) => members.reduce((sum, lab) => sum + lab[c], 0) / members.length);
    }
  }
  return { centres, groups };
}

/** The skin's colour and how widely it varies, from both cheeks; null where the cheeks are off the photo. */
function skinOf(read, frame) {
  const colours = [...band(read, frame, CHEEK).colours, ...band(read, frame, CHEEK, -1).colours];
  if (colours.length < 8) return null;
  const centre = median(colours);
  const spread = median(colours.map((lab) => [Math.abs(lab[0] - centre[0]), Math.abs(lab[1] - centre[1]), Math.abs(lab[2] - centre[2])]));
  const [least, most] = SKIN_DISTANCE;
  return { lab: centre, reach: Math.min(most, Math.max(least, 3 * Math.hypot(...spread))) };
}

/**
 * The background's main colours (each at least 5 % of it): the photo's pixels far beside the head above the
 * shoulders, and far above it, on a grid of about 64 x 64 points over the photo.
 */
function backgroundOf(read, frame, pixels) {
  const step = Math.max(1, Math.max(pixels.width, pixels.height) / 64);
  const colours = [];
  for (let y = step / 2; y < pixels.height; y += step) {
    for (let x = step / 2; x < pixels.width; x += step) {
      const [u, v] = frame.toFace([x, y]);
      if ((Math.abs(u) >= FAR_SIDE && v <= SHOULDERS) || v <= frame.brows - FAR_ABOVE) colours.push(read(x, y));
    }
  }
  if (colours.length < 30) return [];
  const { centres, groups } = clusters(colours, 5);
  return centres.filter((_, j) => groups.filter((g) => g === j).length >= 0.05 * colours.length);
}

/**
 * The pixels of `ray` (Lab colours) cut into runs of one colour: each pixel within STRETCH of the mean of the
 * run so far, one or two odd pixels (a strand, noise) not ending it. [{ lab (the run's median), length }].
 */
function runsOf(ray, step) {
  const runs = [];
  let run = [], sum = [0, 0, 0], strays = 0;
  const close = () => {
    if (run.length) runs.push({ lab: median(run), length: run.length * step });
    run = [];
    sum = [0, 0, 0];
    strays = 0;
  };
  for (const lab of ray) {
    if (run.length && labDistance(lab, sum.map((total) => total / run.length)) > STRETCH) {
      strays += 1;
      if (strays <= 2) continue;
      close();
    }
    strays = 0;
    run.push(lab);
    sum = sum.map((total, c) => total + lab[c]);
  }
  close();
  return runs;
}

/**
 * One ray's stretch of hair: from `start` (face units) along `direction`, past the skin, the longest run of
 * one colour at least LEAST_STRETCH long that is not the background: not the colour of the ray's last run
 * (where it crossed something else first), nor one of the photo's `background` colours. Null when there is
 * none; else { lab, length }.
 *
 * Skin is followed as it changes (a forehead lit more than the cheeks): the ray starts on skin when its first
 * pixel is near the cheeks' colour, and stays on it while its pixels are near the cheeks' colour or the skin
 * just before them; it leaves the skin at the first of three pixels in a row that are neither.
 */
function stretchAlong(read, frame, start, direction, skin, background) {
  const step = Math.max(1 / frame.width, 1 / RAY_SAMPLES);   // a pixel, or coarser: the same edges at any size
  const ray = [];
  for (let along = 0; along < RAY_LENGTH; along += step) {
    const lab = read(...frame.toImage([start[0] + along * direction[0], start[1] + along * direction[1]]));
    if (!lab) break;
    ray.push(lab);
  }
  let first = 0;                                  // the first pixel past the skin
  if (skin && ray.length && labDistance(ray[0], skin.lab) < SKIN_START) {
    let local = ray[0];
    const onSkin = (lab) => labDistance(lab, skin.lab) < skin.reach || labDistance(lab, local) < SKIN_STEP;
    const reach = Math.min(ray.length, Math.round(SKIN_REACH / step));
    while (first < reach && [0, 1, 2].some((k) => onSkin(ray[Math.min(first + k, ray.length - 1)]))) {
      if (onSkin(ray[first])) local = local.map((value, c) => 0.8 * value + 0.2 * ray[first][c]);
      first += 1;
    }
    if (first === reach) return null;             // skin as far as a forehead goes: a bald head, or the photo's edge
  }
  const runs = runsOf(ray.slice(first), step);
  // The ray's background: the colour it ends in (at its end, or at the photo's edge), where it crossed
  // anything else first; else the photo's far colours.
  const behind = runs.length > 1 ? [runs.at(-1).lab, ...background] : background;
  const isBehind = (run) => behind.some((colour) => labDistance(run.lab, colour) < BACKGROUND_DISTANCE);
  const hair = runs.filter((run) => run.length >= Math.max(LEAST_STRETCH, 3 * step) && !isBehind(run))
    .reduce((longest, run) => (!longest || run.length > longest.length ? run : longest), null);
  return hair;
}

/**
 * The hair: { rgb, lab, quality, sides, top, below } or null where no ray finds any. `sides` and `top` are
 * the shares of the rays down the sides and over the top that found hair of that colour; `below` the share
 * of the bands beside the jaw and the neck that have it (null where the photo stops above them).
 * `quality` (0 to 1): half the rays on the sides or over the top finding it counts fully.
 */
function hairOf(read, frame, skin, background) {
  const isSkin = (lab) => skin !== null && labDistance(lab, skin.lab) < skin.reach;
  const rays = [];
  for (let angle = -RAY_SPREAD; angle <= RAY_SPREAD; angle += RAY_STEP) {
    const turn = (angle * Math.PI) / 180;
    const direction = [Math.sin(turn), -Math.cos(turn)];
    const above = OVAL.centre - frame.brows + OVAL.above;
    const start = [OVAL.across * direction[0], OVAL.centre + above * direction[1]];
    const side = Math.abs(angle) <= SIDEWAYS ? 'top' : angle < 0 ? 'left' : 'right';
    rays.push({ side, stretch: stretchAlong(read, frame, start, direction, skin, background) });
  }
  const found = rays.filter((ray) => ray.stretch);
  if (found.length < 3) return null;
  const { centres, groups } = clusters(found.map((ray) => ray.stretch.lab), 4);
  // The groups a chain of close colours links together are one hair's light and shade.
  const parts = centres.map((_, j) => j);
  const joined = (j) => {
    const hair = new Set([j]);
    for (let grown = true; grown;) {
      grown = false;
      for (const other of parts) {
        if (!hair.has(other) && [...hair].some((h) => labDistance(centres[other], centres[h]) < SHADES)) {
          hair.add(other);
          grown = true;
        }
      }
    }
    return hair;
  };
  // Each colour's share of the rays on the left, on the right and over the top. Hair shows beside a face and
  // over it. Where the colour most rays find over the top is not the one most find beside the face (a hat, a
  // cap, a hood; a shadow), the colour beside it is believed if both sides show it, else the one over the top,
  // and the reading is less sure either way.
  const shares = (hair) => Object.fromEntries(['left', 'right', 'top'].map((side) => [side,
    found.filter((ray, i) => ray.side === side && hair.has(groups[i])).length / rays.filter((ray) => ray.side === side).length]));
  const candidates = [...new Map(parts.map(joined).map((set) => [[...set].sort().join(), set])).values()]
    .map((set) => ({ set, ...shares(set) }));
  const beside = (c) => (c.left + c.right) / 2;
  const overTop = candidates.reduce((best, c) => (c.top > best.top ? c : best));
  const besideMost = candidates.reduce((best, c) => (beside(c) > beside(best) ? c : best));
  const agree = overTop === besideMost;
  const chosen = agree || Math.min(besideMost.left, besideMost.right) >= BOTH_SIDES ? besideMost : overTop;
  const hair = chosen.set;
  const members = found.filter((_, i) => hair.has(groups[i]));
  // Its colour as a person sees it: the lit half of it, not the shade.
  const lit = members.map((ray) => ray.stretch.lab).sort((a, b) => b[0] - a[0]);
  const lab = median(lit.slice(0, Math.ceil(lit.length / 2)));
  const sides = (chosen.left + chosen.right) / 2, { top } = chosen;
  const below = [1, -1].map((side) => band(read, frame, BELOW, side));
  const belowShare = below.every((zone) => zone.inside >= 0.6)
    ? below.reduce((sum, zone) => sum + zone.colours.filter((c) => !isSkin(c) && labDistance(c, lab) < HAIR_DISTANCE).length
      / zone.colours.length, 0) / 2
    : null;
  return {
    lab, rgb: labToSrgb(lab), sides, top, below: belowShare,
    quality: Math.min(1, Math.max(sides, top) / 0.5) * (agree ? 1 : DISAGREE),
  };
}

/** Whether (x, y) lies inside the polygon `points`. */
function inside([x, y], points) {
  let within = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) within = !within;
  }
  return within;
}

/**
 * The irises: { rgb, lab, pixels } or null. The pixels inside each eye's outline (drawn in a little, off the
 * lids), less the whites, the skin and the highlights; of those, the lighter half, so the pupil and the
 * lashes do not darken the colour.
 */
function irisOf(read, points, skin) {
  const colours = [];
  for (const [from, to] of [[36, 42], [42, 48]]) {
    const outline = points.slice(from, to);
    const [cx, cy] = mean(outline);
    const drawn = outline.map(([x, y]) => [cx + 0.8 * (x - cx), cy + 0.8 * (y - cy)]);
    const xs = drawn.map(([x]) => x), ys = drawn.map(([, y]) => y);
    for (let y = Math.floor(Math.min(...ys)); y <= Math.ceil(Math.max(...ys)); y++) {
      for (let x = Math.floor(Math.min(...xs)); x <= Math.ceil(Math.max(...xs)); x++) {
        if (!inside([x, y], drawn)) continue;
        const lab = read(x, y);
        if (!lab) continue;
        const chroma = Math.hypot(lab[1], lab[2]);
        const white = lab[0] > 55 && chroma < 10;
        if (white || lab[0] > 88 || (skin && labDistance(lab, skin.lab) < skin.reach)) continue;
        colours.push(lab);
      }
    }
  }
  if (colours.length < 4) return null;
  const lighter = [...colours].sort((a, b) => b[0] - a[0]).slice(0, Math.ceil(colours.length / 2));
  const lab = median(lighter);
  return { lab, rgb: labToSrgb(lab), pixels: colours.length };
}

/** How open the mouth is: the gap between the inner lips over the mouth's width (closed about 0). */
export function mouthOpening(points) {
  const gap = (distance(points[61], points[67]) + distance(points[62], points[66]) + distance(points[63], points[65])) / 3;
  return gap / (distance(points[48], points[54]) || 1);
}

/**
 * How strongly a line crosses the nose bridge between the eyes (a pair of glasses' bridge): the largest
 * difference in lightness between a row of the bridge and the bridge's median row, in L units (skin alone
 * stays within a few units).
 */
function bridgeLine(read, frame) {
  const rows = [];
  const step = Math.max(1 / frame.width, 0.01);
  for (let t = BRIDGE.v[0]; t <= BRIDGE.v[1]; t += step) {
    const values = [];
    for (let s = BRIDGE.u[0]; s <= BRIDGE.u[1]; s += step) {
      const lab = read(...frame.toImage([s, t]));
      if (lab) values.push(lab[0]);
    }
    if (values.length) rows.push(values.reduce((a, b) => a + b, 0) / values.length);
  }
  if (rows.length < 3) return null;
  const middle = [...rows].sort((a, b) => a - b)[Math.floor(rows.length / 2)];
  return Math.max(...rows.map((row) => Math.abs(row - middle)));
}

/**
 * Everything measured on one face: { hair, iris, mouth, bridge } (hairOf's, irisOf's, mouthOpening's and
 * bridgeLine's). `pixels` is the photo's ImageData, `points` the face's 68 landmarks in its pixels.
 */
export function measureFace(pixels, points) {
  const read = reader(pixels);
  const frame = faceFrame(points);
  const skin = skinOf(read, frame);
  return {
    hair: hairOf(read, frame, skin, backgroundOf(read, frame, pixels)),
    iris: irisOf(read, points, skin),
    mouth: mouthOpening(points),
    bridge: bridgeLine(read, frame),
  };
}
