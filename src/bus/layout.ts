/**
 * The bus layout (docs/bus.md): how a verified frame travels on NATS JetStream. Pure: subjects,
 * header names, chunking and the checks a consumer makes of every chunk's headers before it
 * allocates anything. The publisher (src/bus/publisher.ts) and the consumer (src/bus/consumer.ts)
 * share it; a consumer in another language follows docs/bus.md.
 */
import { ErrorCodes, PointstreamError } from '../errors.js';
import { isStreamName } from '../wire/control.js';
import {
  FIELD_TYPES,
  MAX_FIELD_TABLE_BYTES,
  encodeFieldTable,
  parseFieldTable,
} from '../wire/fields.js';
import type { FieldTable } from '../wire/fields.js';

/** Version of this layout, in every chunk's `Ps-V` header. */
export const BUS_LAYOUT_VERSION = 1;
/** The JetStream stream that holds frames, unless configured otherwise. */
export const DEFAULT_BUS_STREAM = 'PS_FRAMES';
/** Subjects: `ps.frames.<tenant>.<stream>`; the JetStream stream covers `ps.frames.>`. */
export const FRAME_SUBJECT_PREFIX = 'ps.frames';
/**
 * Payload bytes per message: 1 MiB measured best here (lower latency and server CPU than whole
 * 12 MB messages or 256 KiB chunks; ../shared/notes/cluster-design.md §4) and far under NATS's
 * 8 MB advice; encoded frames are chunked too, so consumers have one code path.
 */
export const BUS_CHUNK_BYTES = 1024 * 1024;

/** Header names of a chunk message (values are ASCII decimal unless said otherwise). */
export const BusHeader = {
  /** `<session>:<seq>:<part>`: JetStream drops a re-published chunk within its duplicate window. */
  MSG_ID: 'Nats-Msg-Id',
  VERSION: 'Ps-V',
  STREAM: 'Ps-Stream',
  SESSION: 'Ps-Session',
  NODE: 'Ps-Node',
  SEQ: 'Ps-Seq',
  /**
   * The session's count of frames published before this one (0, 1, 2, ...): unlike `Ps-Seq` (the
   * client's number, with gaps where frames were rejected), a gap here is a frame the consumer
   * missed (expired from the stream, or its publish failed).
   */
  INDEX: 'Ps-Index',
  PART: 'Ps-Part',
  PARTS: 'Ps-Parts',
  /** Payload bytes per part (every part but the last carries exactly this many). */
  CHUNK: 'Ps-Chunk',
  /** The whole payload's size. */
  BYTES: 'Ps-Bytes',
  /** CRC-32 (IEEE, as zlib) of the whole payload, unsigned decimal. */
  CRC32: 'Ps-Crc32',
  /** `npy` (a complete .npy file), `q16` or `qrice` (docs/encodings.md). */
  ENCODING: 'Ps-Encoding',
  POINTS: 'Ps-Points',
  /** Sender's capture time, ms since the Unix epoch (may be fractional); absent when unknown. */
  CAPTURE_TIME: 'Ps-Capture-Time',
  /** Ingest node's clock when it verified the frame, ms since the Unix epoch. */
  RECEIVED_AT: 'Ps-Received-At',
  /**
   * When the session started on its node, ms since the Unix epoch: recordings name a session's
   * folder `<stream>/<UTC start>_<session>`, the same from `serve --record` and `consume --record`.
   */
  SESSION_START: 'Ps-Session-Start',
  /**
   * Base64 (RFC 4648, padded) of the frame's field table, exactly the START chunk's
   * (docs/protocol.md, "Per-point fields"); absent when the frame has no fields.
   */
  FIELDS: 'Ps-Fields',
} as const;

/** Longest `Ps-Fields` value: the largest field table, in base64. Checked before decoding. */
export const MAX_FIELDS_HEADER_CHARS = 4 * Math.ceil(MAX_FIELD_TABLE_BYTES / 3);

/** How a payload on the bus is encoded. */
export type BusEncoding = 'npy' | 'q16' | 'qrice';
export const BUS_ENCODINGS: readonly BusEncoding[] = ['npy', 'q16', 'qrice'];

/** What describes a frame on the bus; every chunk carries all of it. */
export interface BusFrameMeta {
  readonly stream: string;
  readonly session: string;
  /** When the session started on its node (ms since the Unix epoch). */
  readonly sessionStart: number;
  readonly node: string;
  readonly seq: number;
  /** The session's published-frame count before this frame ({@link BusHeader.INDEX}). */
  readonly index: number;
  readonly bytes: number;
  readonly crc32: number;
  readonly encoding: BusEncoding;
  readonly points: number;
  readonly captureTime: number | undefined;
  readonly receivedAt: number;
  /**
   * The frame's field table, when it has fields: the payload is then its points part
   * (`pointsBytes`) and the columns (docs/protocol.md, "Per-point fields").
   */
  readonly fieldTable?: FieldTable;
}

/** One chunk's headers, read and checked. */
export interface BusChunk extends BusFrameMeta {
  readonly part: number;
  readonly parts: number;
  readonly chunkBytes: number;
}

/** What a consumer accepts at most; a chunk claiming more is refused before any allocation. */
export interface BusChunkLimits {
  /** Largest payload. Default 64 MiB (the server's largest frame). */
  readonly maxFrameBytes: number;
  /** Most points. Default 16,777,216. */
  readonly maxPoints: number;
  /** Largest part. Default 8 MiB (NATS's advice for a message). */
  readonly maxChunkBytes: number;
}

export const DEFAULT_BUS_CHUNK_LIMITS: BusChunkLimits = Object.freeze({
  maxFrameBytes: 64 * 1024 * 1024,
  maxPoints: 16 * 1024 * 1024,
  maxChunkBytes: 8 * 1024 * 1024,
});

/** Node ids and tenants: what a NATS subject token and a header value can carry. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A session id: 1-64 of A-Z a-z 0-9 _ -, on a cluster node prefixed `<node id>.` (src/cluster). */
const SESSION = /^(?:[A-Za-z0-9_-]{1,64}\.)?[A-Za-z0-9_-]{1,64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;
const TIME = /^-?[0-9]{1,16}(\.[0-9]{1,6})?$/;

export function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && NAME.test(value);
}

/**
 * A stream name as one subject token: stream names may hold `.`, which separates NATS tokens, and
 * never `~`, so `.` becomes `~` (the `Ps-Stream` header carries the name itself).
 */
export function subjectTokenOf(stream: string): string {
  return stream.replaceAll('.', '~');
}

/** The tenant of a token (`TokenAuth.verify`'s id, 8 hex digits), or `public` without auth. */
export function tenantOf(tokenId: string | undefined): string {
  return tokenId === undefined ? 'public' : `t${tokenId}`;
}

/** `ps.frames.<tenant>.<stream>` */
export function frameSubject(tenant: string, stream: string): string {
  return `${FRAME_SUBJECT_PREFIX}.${tenant}.${subjectTokenOf(stream)}`;
}

/** The subject filter for one stream of any tenant (`*`) or every stream (`ps.frames.>`). */
export function frameSubjectFilter(stream: string | undefined, tenant = '*'): string {
  return stream === undefined
    ? `${FRAME_SUBJECT_PREFIX}.>`
    : `${FRAME_SUBJECT_PREFIX}.${tenant}.${subjectTokenOf(stream)}`;
}

/** How many parts a payload of `bytes` takes (at least one: an empty payload is one empty part). */
export function partsOf(bytes: number, chunkBytes = BUS_CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(bytes / chunkBytes));
}

/** The byte range `[start, end)` of the payload that part `part` carries. */
export function partRange(
  bytes: number,
  part: number,
  chunkBytes = BUS_CHUNK_BYTES,
): [number, number] {
  const start = part * chunkBytes;
  return [start, Math.min(bytes, start + chunkBytes)];
}

/** The headers of one chunk, as name/value pairs (the publisher copies them into NATS headers). */
export function chunkHeaders(
  meta: BusFrameMeta,
  part: number,
  chunkBytes = BUS_CHUNK_BYTES,
): [string, string][] {
  const headers: [string, string][] = [
    [BusHeader.MSG_ID, `${meta.session}:${meta.seq}:${part}`],
    [BusHeader.VERSION, String(BUS_LAYOUT_VERSION)],
    [BusHeader.STREAM, meta.stream],
    [BusHeader.SESSION, meta.session],
    [BusHeader.SESSION_START, String(meta.sessionStart)],
    [BusHeader.NODE, meta.node],
    [BusHeader.SEQ, String(meta.seq)],
    [BusHeader.INDEX, String(meta.index)],
    [BusHeader.PART, String(part)],
    [BusHeader.PARTS, String(partsOf(meta.bytes, chunkBytes))],
    [BusHeader.CHUNK, String(chunkBytes)],
    [BusHeader.BYTES, String(meta.bytes)],
    [BusHeader.CRC32, String(meta.crc32 >>> 0)],
    [BusHeader.ENCODING, meta.encoding],
    [BusHeader.POINTS, String(meta.points)],
    [BusHeader.RECEIVED_AT, String(meta.receivedAt)],
  ];
  if (meta.captureTime !== undefined)
    headers.push([BusHeader.CAPTURE_TIME, String(meta.captureTime)]);
  if (meta.fieldTable !== undefined)
    headers.push([BusHeader.FIELDS, fieldsHeaderOf(meta.fieldTable, meta.points)]);
  return headers;
}

const invalid = (message: string): PointstreamError =>
  new PointstreamError(ErrorCodes.BUS_MESSAGE_INVALID, message);

/** Bytes of a NATS header block: `NATS/1.0\r\n`, then `Name: value\r\n` per header, then `\r\n`. */
export function headerBlockBytes(pairs: readonly (readonly [string, string])[]): number {
  let bytes = 'NATS/1.0\r\n'.length + 2;
  for (const [name, value] of pairs) bytes += name.length + 2 + value.length + 2;
  return bytes;
}

/** The `Ps-Fields` value of a table: base64 of its bytes (checked by `encodeFieldTable`). */
export function fieldsHeaderOf(table: FieldTable, points: number): string {
  return Buffer.from(encodeFieldTable(table, points)).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Reads a `Ps-Fields` value: its length checked before anything is decoded, canonical base64
 * only, then the table checked against the frame's points and payload size (`parseFieldTable`).
 * Throws `PS_ERR_BUS_MESSAGE_INVALID` (a bad table's `PS_ERR_FIELDS_INVALID` as its cause).
 */
export function readFieldsHeader(value: string, points: number, bytes: number): FieldTable {
  if (value.length > MAX_FIELDS_HEADER_CHARS)
    throw invalid(
      `header ${BusHeader.FIELDS} of ${value.length} characters exceeds ${MAX_FIELDS_HEADER_CHARS}`,
    );
  if (!BASE64.test(value)) throw invalid(`header ${BusHeader.FIELDS} is not base64`);
  const table = Buffer.from(value, 'base64');
  // Non-zero bits after the last character decode to the same bytes: only one spelling is valid.
  if (table.toString('base64') !== value)
    throw invalid(`header ${BusHeader.FIELDS} is not canonical base64`);
  try {
    return parseFieldTable(table, points, bytes);
  } catch (error) {
    throw new PointstreamError(
      ErrorCodes.BUS_MESSAGE_INVALID,
      `header ${BusHeader.FIELDS}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Reads and checks one chunk's headers against its body size and the consumer's limits. Throws a
 * `PS_ERR_BUS_MESSAGE_INVALID` PointstreamError naming what is wrong; nothing is allocated first.
 */
export function readChunkHeaders(
  header: (name: string) => string | undefined,
  bodyBytes: number,
  limits: BusChunkLimits = DEFAULT_BUS_CHUNK_LIMITS,
): BusChunk {
  const text = (name: string, pattern: RegExp): string => {
    const value = header(name);
    if (value === undefined || value.length === 0) throw invalid(`missing header ${name}`);
    if (!pattern.test(value))
      throw invalid(`malformed header ${name}: ${JSON.stringify(value.slice(0, 80))}`);
    return value;
  };
  const integer = (name: string, max: number): number => {
    const value = Number(text(name, DECIMAL));
    if (value > max) throw invalid(`header ${name} ${value} exceeds ${max}`);
    return value;
  };
  const version = text(BusHeader.VERSION, DECIMAL);
  if (version !== String(BUS_LAYOUT_VERSION))
    throw invalid(`unsupported layout version ${version}`);
  const stream = header(BusHeader.STREAM);
  if (!isStreamName(stream)) throw invalid(`malformed header ${BusHeader.STREAM}`);
  const session = text(BusHeader.SESSION, SESSION);
  const sessionStart = Number(text(BusHeader.SESSION_START, TIME));
  const node = text(BusHeader.NODE, NAME);
  const seq = integer(BusHeader.SEQ, 0xffff_ffff);
  const index = integer(BusHeader.INDEX, Number.MAX_SAFE_INTEGER);
  const bytes = integer(BusHeader.BYTES, limits.maxFrameBytes);
  const chunkBytes = integer(BusHeader.CHUNK, limits.maxChunkBytes);
  if (chunkBytes === 0) throw invalid(`header ${BusHeader.CHUNK} is 0`);
  const parts = integer(BusHeader.PARTS, partsOf(limits.maxFrameBytes, 1));
  if (parts !== partsOf(bytes, chunkBytes)) {
    throw invalid(`${parts} parts cannot carry ${bytes} bytes in chunks of ${chunkBytes}`);
  }
  const part = integer(BusHeader.PART, parts - 1);
  const [start, end] = partRange(bytes, part, chunkBytes);
  if (bodyBytes !== end - start) {
    throw invalid(`part ${part} of ${parts} must carry ${end - start} bytes, not ${bodyBytes}`);
  }
  const crc32 = integer(BusHeader.CRC32, 0xffff_ffff);
  const encoding = header(BusHeader.ENCODING);
  if (!BUS_ENCODINGS.includes(encoding as BusEncoding)) {
    throw invalid(`unknown encoding ${JSON.stringify(String(encoding).slice(0, 32))}`);
  }
  const points = integer(BusHeader.POINTS, limits.maxPoints);
  const receivedAt = Number(text(BusHeader.RECEIVED_AT, TIME));
  const capture = header(BusHeader.CAPTURE_TIME);
  const captureTime =
    capture === undefined ? undefined : Number(text(BusHeader.CAPTURE_TIME, TIME));
  const msgId = header(BusHeader.MSG_ID);
  if (msgId !== undefined && msgId !== `${session}:${seq}:${part}`) {
    throw invalid(`header ${BusHeader.MSG_ID} does not name this chunk`);
  }
  const fields = header(BusHeader.FIELDS);
  // Read from every part (a few microseconds): a bad table is refused before the frame's buffer
  // is allocated, and every part must carry the same one.
  const fieldTable = fields === undefined ? undefined : readFieldsHeader(fields, points, bytes);
  if (fieldTable !== undefined) {
    // Coded columns decode to N values each: a few MB of Rice codes could claim gigabytes. Their
    // decoded size is held to what the fields could take raw in a frame (`maxFrameBytes`).
    let decoded = 0;
    for (const column of fieldTable.columns) decoded += points * FIELD_TYPES[column.type].bytes;
    if (decoded > limits.maxFrameBytes)
      throw invalid(
        `the fields of ${points} points take ${decoded} bytes decoded, over ${limits.maxFrameBytes}`,
      );
  }
  const chunk: BusChunk = {
    stream,
    session,
    sessionStart,
    node,
    seq,
    index,
    part,
    parts,
    chunkBytes,
    bytes,
    crc32,
    encoding: encoding as BusEncoding,
    points,
    captureTime,
    receivedAt,
  };
  return fieldTable === undefined ? chunk : { ...chunk, fieldTable };
}
