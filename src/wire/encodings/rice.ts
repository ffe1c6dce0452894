/**
 * The block Rice coder shared by `qrice` (each axis) and the coded field columns: blocks of up
 * to {@link QRICE_BLOCK} zigzagged integers, each block `k` in 5 bits then per value either `q`
 * ones, a zero and the `k` low bits (q = value >>> k < 16), or 16 ones, the bit length L in 6
 * bits and the value in L bits. Bit streams are little-endian u32 words, bits LSB first.
 * Prediction, the stream's layout and the checks on the decoded values are the callers'. The
 * per-code decoding loop stays inline in `decodeQrice` and field-columns' `decodeStream`: shared
 * (per block or per code) it measured about 30% slower on qrice's decode.
 */

/** Values per block (its own `k`). */
export const QRICE_BLOCK = 32;
/** Unary prefixes of this length mark an escape: value stored with its bit length. */
export const ESC = 16;
export const MAX_K = 24;
/** Longest code: escape prefix, 6-bit length, 32-bit value. */
export const MAX_CODE_BITS = ESC + 6 + 32;
/** Worst-case words one block can take, with its 5-bit k. */
export const MAX_BLOCK_WORDS = Math.ceil((QRICE_BLOCK * MAX_CODE_BITS + 5) / 32) + 1;

/** A bit stream being written: whole words, then `nb` bits in `acc`. */
export interface AxisStream {
  words: Int32Array;
  /** Bits not yet in `words`, from bit 0. */
  acc: number;
  nb: number;
  pos: number;
}

/**
 * Windows a stride search looks at (qrice's points, a field's values): two of 512 values in big
 * frames, else the start.
 */
export function strideWindows(n: number): { window: number; starts: number[] } {
  const window = Math.min(512, n);
  return { window, starts: n >= 4 * window ? [n >>> 2, n >>> 1] : [0] };
}

/** LOCO-I's rule: the smallest k (at most 24) with count * 2^k >= sum. */
export function riceParameter(sum: number, count: number): number {
  if (count === QRICE_BLOCK) {
    // 32 * 2^k >= sum  <=>  k >= bitLength(sum - 1) - 5.
    return sum <= QRICE_BLOCK ? 0 : sum > 2 ** 29 ? MAX_K : 27 - Math.clz32(sum - 1);
  }
  let k = 0;
  while (k < MAX_K && count * (1 << k) < sum) k++;
  return k;
}

/** Appends one block: `k` in 5 bits, then the code of each of z[from .. from + count). */
export function putBlock(
  s: AxisStream,
  z: Int32Array,
  from: number,
  count: number,
  k: number,
): void {
  if (s.pos + MAX_BLOCK_WORDS > s.words.length) {
    const grown = new Int32Array(s.words.length * 2);
    grown.set(s.words.subarray(0, s.pos));
    s.words = grown;
  }
  const out = s.words;
  let pos = s.pos;
  let acc = s.acc | (k << s.nb);
  let nb = s.nb + 5;
  if (nb >= 32) {
    out[pos++] = acc;
    nb -= 32;
    acc = nb === 0 ? 0 : k >>> (5 - nb);
  }
  const mask = (1 << k) - 1;
  for (let j = from, end = from + count; j < end; j++) {
    const v = z[j] as number;
    const high = v >>> k;
    if (high < ESC) {
      const len = high + 1 + k;
      if (len <= 32) {
        const code = ((1 << high) - 1) | ((v & mask) << (high + 1));
        acc |= code << nb;
        nb += len;
        if (nb >= 32) {
          out[pos++] = acc;
          nb -= 32;
          acc = nb === 0 ? 0 : code >>> (len - nb);
        }
      } else {
        const unary = (1 << high) - 1;
        acc |= unary << nb;
        nb += high + 1;
        if (nb >= 32) {
          out[pos++] = acc;
          nb -= 32;
          acc = nb === 0 ? 0 : unary >>> (high + 1 - nb);
        }
        const low = v & mask;
        acc |= low << nb;
        nb += k;
        if (nb >= 32) {
          out[pos++] = acc;
          nb -= 32;
          acc = nb === 0 ? 0 : low >>> (k - nb);
        }
      }
    } else {
      const bits = 32 - Math.clz32(v);
      const prefix = ((1 << ESC) - 1) | (bits << ESC);
      acc |= prefix << nb;
      nb += ESC + 6;
      if (nb >= 32) {
        out[pos++] = acc;
        nb -= 32;
        acc = nb === 0 ? 0 : prefix >>> (ESC + 6 - nb);
      }
      acc |= v << nb;
      nb += bits;
      if (nb >= 32) {
        out[pos++] = acc;
        nb -= 32;
        acc = nb === 0 ? 0 : v >>> (bits - nb);
      }
    }
  }
  s.acc = acc;
  s.nb = nb;
  s.pos = pos;
}

/**
 * Whether a stream read up to bit `pos` ends in its last word (of `totalBits`), with the unused
 * bits of that word zero.
 */
export function endsCleanly(words: Int32Array, pos: number, totalBits: number): boolean {
  return !(
    pos <= totalBits - 32 ||
    (pos & 31 && (words[pos >>> 5] as number) >>> (pos & 31) !== 0)
  );
}
