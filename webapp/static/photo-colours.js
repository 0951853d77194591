// Colours measured on a photo -> the model's colour tags: the one place where a colour becomes a tag.
//
// photo.js measures a hair colour and an iris colour in sRGB; this module turns them into CIELAB (D65, the
// sRGB white), compares them with a reference colour for each hair and eye tag by CIEDE2000 (the CIE's
// perceptual distance: equal numbers look about equally different, which plain distances in RGB or even in
// Lab do not), and names the nearest tag the model knows, with a confidence.
//
// The references are colours of real hair and irises as a phone photographs them (natural ones, and dyed
// ones for the colours no head grows), not the saturated colours of anime art: "black hair" in a photo is a
// dark brown-grey, blonde hair a muted gold. They were picked by hand; tests/test_photo.py checks each with
// swatches, and docs/photo.md lists them.

/** The hair colour tags' reference colours (sRGB), one or more a tag: brown hair runs from dark to light. */
export const HAIR_COLOURS = {
  'black hair': ['#1e1b1a'],
  'brown hair': ['#4b3621', '#735a3c', '#9a7b55'],   // dark, medium, light
  'blonde hair': ['#cdae7a', '#e3cf9f'],
  'orange hair': ['#b4652f'],                        // ginger
  'red hair': ['#a2302b'],
  'pink hair': ['#e29bb6'],
  'purple hair': ['#6b4188'],
  'blue hair': ['#3557a6'],
  'green hair': ['#3f7d4a'],
  'aqua hair': ['#4fb5c0'],
  'white hair': ['#e4e2de'],
  'grey hair': ['#6e6c6a', '#9a9894'],
  'silver hair': ['#bcc1ca'],
};

/** The eye colour tags' reference colours (sRGB): the iris, without the pupil. */
export const EYE_COLOURS = {
  'brown eyes': ['#5e3d24', '#7a5a3a'],
  'black eyes': ['#231c1a'],
  'blue eyes': ['#5b80a8', '#8fa8c0'],
  'green eyes': ['#6a7c48', '#7d8a5e'],
  'aqua eyes': ['#4f9ea6'],
  'purple eyes': ['#6e5a93'],
  'red eyes': ['#9a2d2d'],
  'pink eyes': ['#c57f95'],
  'yellow eyes': ['#b79a3a'],                        // amber
  'orange eyes': ['#b56a2e'],
};

// How far (CIEDE2000) a colour may sit from a reference before it stops counting as a fair example of it:
// the spread of the probabilities between references, and the distance from which confidence falls.
const SPREAD = 5;
const FAIR = 12;
const FALL = 18;

/** '#rrggbb' -> [r, g, b] (0-255). */
export function hexToRgb(hex) {
  const value = Number.parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

/** [r, g, b] (0-255) -> '#rrggbb', rounded and clamped. */
export function rgbToHex(rgb) {
  return `#${rgb.map((c) => Math.round(Math.min(255, Math.max(0, c))).toString(16).padStart(2, '0')).join('')}`;
}

const linear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const WHITE = [0.95047, 1, 1.08883];   // D65
const EPSILON = 216 / 24389;
const KAPPA = 24389 / 27;

/** sRGB [r, g, b] (0-255) -> CIELAB [L, a, b] under D65. */
export function srgbToLab([r, g, b]) {
  const [lr, lg, lb] = [r, g, b].map((c) => linear(c / 255));
  const xyz = [
    0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb,
    0.2126729 * lr + 0.7151522 * lg + 0.0721750 * lb,
    0.0193339 * lr + 0.1191920 * lg + 0.9503041 * lb,
  ];
  const [fx, fy, fz] = xyz.map((v, i) => {
    const t = v / WHITE[i];
    return t > EPSILON ? Math.cbrt(t) : (KAPPA * t + 16) / 116;
  });
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** CIELAB [L, a, b] -> sRGB [r, g, b] (0-255, not rounded; may fall outside the gamut). */
export function labToSrgb([L, a, b]) {
  const fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
  const [x, y, z] = [fx, fy, fz].map((f, i) => (f ** 3 > EPSILON ? f ** 3 : (116 * f - 16) / KAPPA) * WHITE[i]);
  const rgb = [
    3.2404542 * x - 1.5371385 * y - 0.4985314 * z,
    -0.9692660 * x + 1.8760108 * y + 0.0415560 * z,
    0.0556434 * x - 0.2040259 * y + 1.0572252 * z,
  ];
  return rgb.map((c) => 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055));
}

const degrees = (radians) => (radians * 180) / Math.PI;
const radians = (deg) => (deg * Math.PI) / 180;

/** CIEDE2000 colour difference between two CIELAB colours (Sharma, Wu and Dalal's formulation). */
export function deltaE2000([L1, a1, b1], [L2, a2, b2]) {
  const C1 = Math.hypot(a1, b1), C2 = Math.hypot(a2, b2);
  const Cbar7 = ((C1 + C2) / 2) ** 7;
  const G = 0.5 * (1 - Math.sqrt(Cbar7 / (Cbar7 + 25 ** 7)));
  const a1p = (1 + G) * a1, a2p = (1 + G) * a2;
  const C1p = Math.hypot(a1p, b1), C2p = Math.hypot(a2p, b2);
  const hue = (a, b) => (a === 0 && b === 0 ? 0 : (degrees(Math.atan2(b, a)) + 360) % 360);
  const h1p = hue(a1p, b1), h2p = hue(a2p, b2);
  const dLp = L2 - L1, dCp = C2p - C1p;
  let dhp = 0;
  if (C1p * C2p !== 0) {
    dhp = h2p - h1p;
    if (dhp > 180) dhp -= 360;
    else if (dhp < -180) dhp += 360;
  }
  const dHp = 2 * Math.sqrt(C1p * C2p) * Math.sin(radians(dhp / 2));
  const Lbar = (L1 + L2) / 2, Cbarp = (C1p + C2p) / 2;
  let hbarp = h1p + h2p;
  if (C1p * C2p !== 0) {
    if (Math.abs(h1p - h2p) > 180) hbarp += h1p + h2p < 360 ? 360 : -360;
    hbarp /= 2;
  }
  const T = 1 - 0.17 * Math.cos(radians(hbarp - 30)) + 0.24 * Math.cos(radians(2 * hbarp))
    + 0.32 * Math.cos(radians(3 * hbarp + 6)) - 0.20 * Math.cos(radians(4 * hbarp - 63));
  const dTheta = 30 * Math.exp(-(((hbarp - 275) / 25) ** 2));
  const Cbarp7 = Cbarp ** 7;
  const RC = 2 * Math.sqrt(Cbarp7 / (Cbarp7 + 25 ** 7));
  const SL = 1 + (0.015 * (Lbar - 50) ** 2) / Math.sqrt(20 + (Lbar - 50) ** 2);
  const SC = 1 + 0.045 * Cbarp, SH = 1 + 0.015 * Cbarp * T;
  const RT = -Math.sin(radians(2 * dTheta)) * RC;
  return Math.sqrt((dLp / SL) ** 2 + (dCp / SC) ** 2 + (dHp / SH) ** 2 + RT * (dCp / SC) * (dHp / SH));
}

/**
 * The tag of `references` ({ tag: ['#rrggbb', ...] }) nearest to `rgb`, among the tags in `known` (the
 * model's; a reference the model does not know is not a candidate): a tag is as near as the nearest of its
 * colours. Returns null when none is a candidate, else
 * { tag, confidence, distance, ranking: [{ tag, distance, probability }] nearest first }.
 *
 * `probability` shares 1 between the candidates by how much farther each is than the nearest (a Gaussian of
 * the difference), so a colour halfway between brown and blonde is about 0.5 each. `confidence` is the
 * nearest tag's probability, lowered where even the nearest reference is far (a colour none of the tags
 * describes well), and multiplied by `quality` (0 to 1: how well photo.js could measure the colour at all).
 */
export function nearestColourTag(rgb, references, known, { quality = 1 } = {}) {
  const lab = srgbToLab(rgb);
  const candidates = Object.keys(references).filter((tag) => known.includes(tag));
  if (!candidates.length) return null;
  const scored = candidates.map((tag) => ({
    tag, distance: Math.min(...references[tag].map((hex) => deltaE2000(lab, srgbToLab(hexToRgb(hex))))),
  }));
  scored.sort((x, y) => x.distance - y.distance);
  const weights = scored.map(({ distance }) => Math.exp(-(((distance - scored[0].distance) / SPREAD) ** 2) / 2));
  const total = weights.reduce((sum, w) => sum + w, 0);
  const ranking = scored.map((entry, i) => ({ ...entry, probability: weights[i] / total }));
  const far = Math.max(0, ranking[0].distance - FAIR) / FALL;
  const confidence = ranking[0].probability * Math.exp(-far * far) * Math.min(1, Math.max(0, quality));
  return { tag: ranking[0].tag, confidence, distance: ranking[0].distance, ranking };
}
