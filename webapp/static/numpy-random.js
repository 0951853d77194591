// numpy's `default_rng(seed)` in JavaScript: the same seed gives the same numbers as in Python, so the page,
// the embedding module and `export.runtime` draw the same noise and the same "random" tags.
//
// Only what the sampling rule of docs/model-contract.md uses is here: SeedSequence seeding of PCG64
// (numpy's default bit generator), `random()` (float64 in [0, 1)), `standard_normal(dtype=float32)`
// (numpy's float32 ziggurat) and `choice(k, n, p)` with `p`. Every step follows numpy's C code operation
// by operation, in float64 or float32 as it does, so the numbers are bit for bit numpy's: the ziggurat's
// rare wedge and tail steps go through exp and log1p, where the browser's last bit may differ from C's.

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULTIPLIER = 0x2360ed051fc65da44385df649fccf645n;

// numpy.random.SeedSequence's hash constants (bit_generator.pyx).
const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715, XSHIFT = 16, POOL_SIZE = 4;

/** A seed as numpy accepts it: a whole number >= 0 (a Number up to 2^53 - 1, or a BigInt). */
function checkSeed(seed) {
  const whole = typeof seed === 'bigint' || (Number.isSafeInteger(seed));
  if (!whole || seed < 0) {
    throw new RangeError(`seed must be a whole number >= 0 (as numpy's default_rng takes), got ${String(seed)}`);
  }
  return BigInt(seed);
}

/** A fresh random 32-bit seed, for callers that give none (numpy would take one from the OS). */
export function randomSeed() {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** The 32-bit words of a seed, least significant first (numpy's _coerce_to_uint32_array; 0 is [0]). */
function seedWords(seed) {
  const words = [];
  do {
    words.push(Number(seed & MASK32));
    seed >>= 32n;
  } while (seed > 0n);
  return words;
}

/** SeedSequence(seed).generate_state(4, uint64), as 4 BigInts. */
function seedState(seed) {
  const entropy = seedWords(seed);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> XSHIFT)) >>> 0;
  };
  const mix = (x, y) => {
    const result = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (result ^ (result >>> XSHIFT)) >>> 0;
  };
  const pool = Array.from({ length: POOL_SIZE }, (_, i) => hashmix(i < entropy.length ? entropy[i] : 0));
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  let constB = INIT_B;
  const words = [];
  for (let i = 0; i < 8; i++) {
    let value = (pool[i % POOL_SIZE] ^ constB) >>> 0;
    constB = Math.imul(constB, MULT_B) >>> 0;
    value = Math.imul(value, constB) >>> 0;
    words.push((value ^ (value >>> XSHIFT)) >>> 0);
  }
  return [0, 1, 2, 3].map((k) => BigInt(words[2 * k]) | (BigInt(words[2 * k + 1]) << 32n));
}

// The float32 ziggurat's tables (numpy's ziggurat_constants.h), rebuilt the way Marsaglia and Tsang
// define them: 256 strips of equal area V under exp(-x^2/2), the last one ending at R. Computed in
// float64, they equal numpy's tables entry for entry (the rounding of each `ki` is at least 3e-4 away
// from a tie, so the browser's exp and log cannot change one).
const ZIG_R = 3.6541528853610088;
const ZIG_V = 0.00492867323399;
const ZIG_R_F = Math.fround(ZIG_R);
const ZIG_INV_R_F = Math.fround(0.27366123732975828);
const ZIGGURAT = (() => {
  const f = (x) => Math.exp(-0.5 * x * x);
  const ki = new Uint32Array(256), wi = new Float32Array(256), fi = new Float32Array(256);
  const m = 2 ** 23;                               // a float32 draw has 23 bits below the strip index
  const base = ZIG_V / f(ZIG_R);                   // the base strip's width (its tail continues to infinity)
  ki[0] = Math.floor((ZIG_R / base) * m);
  ki[1] = 0;
  wi[0] = base / m;
  wi[255] = ZIG_R / m;
  fi[0] = 1;
  fi[255] = f(ZIG_R);
  let x = ZIG_R;
  for (let i = 254; i >= 1; i--) {
    const next = Math.sqrt(-2 * Math.log(ZIG_V / x + f(x)));
    ki[i + 1] = Math.round((next / x) * m);
    x = next;
    fi[i] = f(x);
    wi[i] = x / m;
  }
  return { ki, wi, fi };
})();

/** numpy's pairwise sum of a short float64 array (eight partial sums from eight values up), bit for bit. */
export function numpySum(values) {
  const n = values.length;
  if (n < 8) {
    let sum = -0;
    for (const value of values) sum += value;
    return sum;
  }
  if (n > 128) throw new RangeError('numpySum: more than 128 values is not implemented');
  const r = values.slice(0, 8);
  let i = 8;
  for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[i + j];
  let sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; i++) sum += values[i];
  return sum;
}

/** The cumulative sums of `values`, left to right (numpy.cumsum). */
export function cumsum(values) {
  let total = 0;
  return values.map((value) => (total += value));
}

/** Index of the first edge greater than `u` (numpy.searchsorted(edges, u, side='right')). */
export function searchRight(edges, u) {
  let lo = 0, hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (u < edges[mid]) hi = mid; else lo = mid + 1;
  }
  return lo;
}

/** numpy.random.default_rng(seed): a numpy Generator on PCG64, for the methods the sampling rule uses. */
export class NumpyRandom {
  constructor(seed) {
    const [stateHigh, stateLow, incHigh, incLow] = seedState(checkSeed(seed));
    this.inc = ((((incHigh << 64n) | incLow) << 1n) | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + ((stateHigh << 64n) | stateLow)) & MASK128;
    this.step();
    this.buffered = null;                          // the upper half of a 64-bit draw, for the next 32-bit one
  }

  step() {
    this.state = (this.state * PCG_MULTIPLIER + this.inc) & MASK128;
  }

  /** The next 64-bit output (XSL-RR), as a BigInt. */
  nextUint64() {
    this.step();
    const s = this.state;
    const xored = ((s >> 64n) ^ s) & MASK64;
    const rot = s >> 122n;
    return ((xored >> rot) | (xored << ((64n - rot) & 63n))) & MASK64;
  }

  /** The next 32 bits: the lower half of a 64-bit output, then its upper half (numpy's pcg64_next32). */
  nextUint32() {
    if (this.buffered !== null) {
      const value = this.buffered;
      this.buffered = null;
      return value;
    }
    const next = this.nextUint64();
    this.buffered = Number(next >> 32n);
    return Number(next & MASK32);
  }

  /** One float64 in [0, 1): 53 random bits (numpy's next_double; leaves the 32-bit buffer alone). */
  random() {
    return Number(this.nextUint64() >> 11n) * (1 / 9007199254740992);
  }

  /** `count` float64 draws in [0, 1) (Generator.random(count)). */
  randomArray(count) {
    return Float64Array.from({ length: count }, () => this.random());
  }

  nextFloat() {
    return Math.fround((this.nextUint32() >>> 8) * Math.fround(1 / 16777216));
  }

  /** One standard normal float32 (numpy's random_standard_normal_f). */
  standardNormalF32() {
    const { ki, wi, fi } = ZIGGURAT;
    for (;;) {
      const r = this.nextUint32();
      const idx = r & 0xff;
      const sign = (r >>> 8) & 0x1;
      const rabs = (r >>> 9) & 0x7fffff;
      let x = Math.fround(rabs * wi[idx]);
      if (sign) x = -x;
      if (rabs < ki[idx]) return x;                // 99.3 % of the draws end here
      if (idx === 0) {                             // the tail beyond R
        for (;;) {
          const xx = Math.fround(-ZIG_INV_R_F * Math.fround(Math.log1p(-this.nextFloat())));
          const yy = Math.fround(-Math.fround(Math.log1p(-this.nextFloat())));
          if (Math.fround(yy + yy) > Math.fround(xx * xx)) {
            return Math.fround((rabs >>> 8) & 0x1 ? -(ZIG_R_F + xx) : ZIG_R_F + xx);
          }
        }
      }
      const y = Math.fround(Math.fround(Math.fround(fi[idx - 1] - fi[idx]) * this.nextFloat()) + fi[idx]);
      if (y < Math.exp(-0.5 * x * x)) return x;
    }
  }

  /** `count` standard normal float32 values (Generator.standard_normal(count, dtype=float32)). */
  standardNormal(count) {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.standardNormalF32();
    return out;
  }

  /** `n` indices in 0..k-1 drawn with probabilities `p` (Generator.choice(k, size=n, p=p)). */
  choice(k, n, p) {
    if (p.length !== k) throw new RangeError(`choice: ${p.length} probabilities for ${k} items`);
    const cdf = cumsum(Array.from(p));
    const last = cdf[cdf.length - 1];
    for (let i = 0; i < cdf.length; i++) cdf[i] /= last;
    return Array.from(this.randomArray(n), (u) => searchRight(cdf, u));
  }
}
