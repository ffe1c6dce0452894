/**
 * CRC-32 (IEEE 802.3, the one zlib, PNG and Python's `zlib.crc32` compute), incremental: pass the
 * previous result as `initial` to continue. Node code uses `zlib.crc32`, which is much faster;
 * this portable version exists for runtimes without it (browsers) and as its test oracle.
 */
export type Checksum = (data: Uint8Array, initial?: number) => number;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export const crc32Portable: Checksum = (data, initial = 0) => {
  let crc = (initial ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) {
    crc = (TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
};
