import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * LZF decompression (liblzf's format, as PCL's `binary_compressed` `.pcd` files use it). Every
 * read and write is bounds-checked: corrupt input gives PS_ERR_PCD_BAD_DATA, never a read or write
 * outside the buffers. Pure, browser-safe.
 *
 * The stream is a sequence of runs: a control byte `c < 32` is followed by `c + 1` literal bytes;
 * otherwise `len = c >> 5` (7: plus the next byte) and the back-reference copies `len + 2` bytes
 * from `((c & 31) << 8 | next byte) + 1` bytes back (the copy may overlap what it writes).
 */

/** At most this many output bytes per input byte (a 3-byte back-reference copies 264 bytes). */
export const LZF_MAX_RATIO = 88;

function corrupt(message: string): PointstreamError {
  return new PointstreamError(ErrorCodes.PCD_BAD_DATA, `LZF data corrupt: ${message}`);
}

/** Decompresses `input` into exactly `outputBytes` bytes (the size the file declares). */
export function lzfDecompress(input: Uint8Array, outputBytes: number): Uint8Array {
  if (outputBytes > input.length * LZF_MAX_RATIO)
    throw corrupt(`${input.length} bytes cannot decompress to ${outputBytes}`);
  const out = new Uint8Array(outputBytes);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++] as number;
    if (ctrl < 32) {
      const length = ctrl + 1;
      if (ip + length > input.length) throw corrupt(`literal run past the end at byte ${ip - 1}`);
      if (op + length > outputBytes)
        throw corrupt(`output exceeds the declared ${outputBytes} bytes`);
      // At most 32 bytes: a loop beats subarray + set (an object per run).
      for (const end = ip + length; ip < end;) out[op++] = input[ip++] as number;
      continue;
    }
    let length = ctrl >> 5;
    if (length === 7) {
      if (ip >= input.length) throw corrupt(`back-reference cut at byte ${ip - 1}`);
      length += input[ip++] as number;
    }
    if (ip >= input.length) throw corrupt(`back-reference cut at byte ${ip - 1}`);
    const distance = (((ctrl & 0x1f) << 8) | (input[ip++] as number)) + 1;
    length += 2;
    let ref = op - distance;
    if (ref < 0) throw corrupt(`back-reference before the start at byte ${ip - 1}`);
    if (op + length > outputBytes)
      throw corrupt(`output exceeds the declared ${outputBytes} bytes`);
    if (distance >= length) {
      out.copyWithin(op, ref, ref + length);
      op += length;
    } else {
      // Byte by byte: a reference closer than its length repeats what it just wrote.
      for (const end = op + length; op < end;) out[op++] = out[ref++] as number;
    }
  }
  if (op !== outputBytes)
    throw corrupt(`decompressed to ${op} bytes; the file declares ${outputBytes}`);
  return out;
}
