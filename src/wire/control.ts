import { ErrorCodes, PointstreamError, isErrorCode } from '../errors.js';
import type { ErrorCode } from '../errors.js';

/**
 * Control messages travel as DataChannel text messages holding one JSON object each, server to
 * client, on the channel the frames came on. JSON keeps them readable from any client (Python,
 * browsers) and they are few: one per frame.
 */

/**
 * A stream names one sensor across its sessions (reconnects): safe in a URL, a file name and a
 * log line as it is.
 */
export const STREAM_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** True for a valid stream name: 1-64 of `A-Z a-z 0-9 . _ -`, and not `.` or `..`. */
export function isStreamName(value: unknown): value is string {
  return (
    typeof value === 'string' && STREAM_NAME_PATTERN.test(value) && value !== '.' && value !== '..'
  );
}

/**
 * A valid stream name made from any text (a host name, say): other characters become `-`, cut to
 * 64. Used for defaults, never for names a user typed (those are refused when invalid).
 */
export function toStreamName(text: string): string {
  const name = text.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return isStreamName(name) ? name : 'stream';
}

/** Sent once when the channel opens: the session id and the limits frames must respect. */
export interface HelloMessage {
  readonly type: 'hello';
  readonly session: string;
  /** The stream the session feeds; absent from older servers. */
  readonly stream?: string;
  /** Where the server records this session (a directory on the server), when it records. */
  readonly recording?: string;
  readonly protocol: string;
  readonly maxFrameBytes: number;
  readonly maxPointsPerFrame: number;
  readonly maxFramesInReassembly: number;
  /** Payload encodings the server decodes (docs/encodings.md); absent from older servers: `[1]`. */
  readonly encodings?: readonly number[];
  /**
   * The server accepts NaN and infinite coordinates (`--allow-non-finite`); absent from older
   * servers: false. Clients check frames before sending them to a server that does not.
   */
  readonly allowNonFinite?: boolean;
  /**
   * The server sends a {@link HeartbeatMessage} on a channel that sent nothing else for this many
   * ms, once the client asked for them ({@link CLIENT_HEARTBEAT_TEXT}); absent from older servers:
   * no heartbeats, and no liveness check.
   */
  readonly heartbeatMs?: number;
  /**
   * The server reads field tables (docs/protocol.md, "Per-point fields"); absent from older
   * servers, which refuse them: clients then refuse to send fields (`PS_ERR_FIELDS_UNSUPPORTED`).
   */
  readonly fields?: boolean;
}

/**
 * The server is alive and the channel works: sent when the channel carried nothing else for the
 * hello's `heartbeatMs`, only to clients that asked for it (older clients log unknown types).
 */
export interface HeartbeatMessage {
  readonly type: 'heartbeat';
}

/** One per frame: it arrived intact and was handed to consumers, or it was rejected. */
export type ReceiptMessage =
  | {
      readonly type: 'receipt';
      readonly seq: number;
      readonly ok: true;
      /** Server clock, ms since the Unix epoch, when the frame was verified. */
      readonly receivedAt: number;
      readonly points: number;
    }
  | {
      readonly type: 'receipt';
      readonly seq: number;
      readonly ok: false;
      readonly receivedAt: number;
      readonly code: ErrorCode;
      readonly message: string;
    };

/** The server is ending the session; the channel closes right after. */
export interface ClosingMessage {
  readonly type: 'closing';
  readonly code: ErrorCode;
  readonly message: string;
}

export type ServerMessage = HelloMessage | ReceiptMessage | ClosingMessage | HeartbeatMessage;

/**
 * The one text message a client sends: after a hello with `heartbeatMs`, it asks the server for
 * heartbeats on this channel. Sent only to servers that announced them (older servers log text
 * from clients); the server compares the exact text.
 */
export const CLIENT_HEARTBEAT_TEXT = '{"type":"heartbeat"}';

/** The heartbeat's text, encoded once. */
export const HEARTBEAT_TEXT = CLIENT_HEARTBEAT_TEXT;

/** Longest control message accepted; receipts are about 100 bytes. */
export const MAX_CONTROL_MESSAGE_CHARS = 4096;

/** Longest `message` text a control message carries; longer ones are cut. */
const MAX_REASON_CHARS = 512;

/**
 * Encodes a control message. Reason texts are cut to 512 characters and lone surrogates
 * replaced, so that the result always fits `MAX_CONTROL_MESSAGE_CHARS` and decodes again.
 */
export function encodeServerMessage(message: ServerMessage): string {
  const safe = 'message' in message ? { ...message, message: safeText(message.message) } : message;
  const text = JSON.stringify(safe);
  if (text.length > MAX_CONTROL_MESSAGE_CHARS)
    throw new RangeError(`control message of ${text.length} characters`);
  return text;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function safeText(text: string): string {
  const clean = text.replace(new RegExp(LONE_SURROGATE, 'g'), '\ufffd');
  return clean.length > MAX_REASON_CHARS ? `${clean.slice(0, MAX_REASON_CHARS - 3)}...` : clean;
}

/** What the encoder could have written: at most 512 characters, no lone surrogates. */
const isReason = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= MAX_REASON_CHARS && !LONE_SURROGATE.test(value);

function invalid(reason: string): PointstreamError {
  return new PointstreamError(ErrorCodes.CONTROL_INVALID, `invalid control message: ${reason}`);
}

const isCount = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;
const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

function encodingList(value: unknown): number[] {
  if (
    !Array.isArray(value) ||
    value.length > 255 ||
    !value.every((id) => Number.isInteger(id) && id >= 0 && id <= 255)
  )
    throw invalid('hello with bad encodings');
  return value as number[];
}

function flag(value: unknown, name = 'allowNonFinite'): boolean {
  if (typeof value !== 'boolean') throw invalid(`hello with a non-boolean ${name}`);
  return value;
}

function streamName(value: unknown): string {
  if (!isStreamName(value)) throw invalid('hello with a bad stream name');
  return value;
}

function recordingPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 1024 || LONE_SURROGATE.test(value))
    throw invalid('hello with a bad recording path');
  return value;
}

function heartbeatPeriod(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 600_000)
    throw invalid('hello with a bad heartbeatMs');
  return value as number;
}

/** Parses and validates a server control message. Throws PS_ERR_CONTROL_INVALID. */
export function decodeServerMessage(text: string): ServerMessage {
  if (text.length > MAX_CONTROL_MESSAGE_CHARS) throw invalid(`${text.length} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('not an object');
  const m = value as Record<string, unknown>;
  switch (m.type) {
    case 'hello':
      if (typeof m.session !== 'string' || typeof m.protocol !== 'string')
        throw invalid('hello without session');
      if (
        !isCount(m.maxFrameBytes) ||
        !isCount(m.maxPointsPerFrame) ||
        !isCount(m.maxFramesInReassembly)
      ) {
        throw invalid('hello without limits');
      }
      return {
        type: 'hello',
        session: m.session,
        protocol: m.protocol,
        maxFrameBytes: m.maxFrameBytes,
        maxPointsPerFrame: m.maxPointsPerFrame,
        maxFramesInReassembly: m.maxFramesInReassembly,
        ...(m.encodings === undefined ? {} : { encodings: encodingList(m.encodings) }),
        ...(m.allowNonFinite === undefined ? {} : { allowNonFinite: flag(m.allowNonFinite) }),
        ...(m.stream === undefined ? {} : { stream: streamName(m.stream) }),
        ...(m.recording === undefined ? {} : { recording: recordingPath(m.recording) }),
        ...(m.heartbeatMs === undefined ? {} : { heartbeatMs: heartbeatPeriod(m.heartbeatMs) }),
        ...(m.fields === undefined ? {} : { fields: flag(m.fields, 'fields') }),
      };
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'receipt':
      if (!isCount(m.seq) || !isTime(m.receivedAt))
        throw invalid('receipt without seq or receivedAt');
      if (m.ok === true) {
        if (!isCount(m.points)) throw invalid('receipt without points');
        return {
          type: 'receipt',
          seq: m.seq,
          ok: true,
          receivedAt: m.receivedAt,
          points: m.points,
        };
      }
      if (m.ok === false) {
        if (!isErrorCode(m.code) || !isReason(m.message)) {
          throw invalid('rejection without code, or with a bad message');
        }
        return {
          type: 'receipt',
          seq: m.seq,
          ok: false,
          receivedAt: m.receivedAt,
          code: m.code,
          message: m.message,
        };
      }
      throw invalid('receipt without ok');
    case 'closing':
      if (!isErrorCode(m.code) || !isReason(m.message)) {
        throw invalid('closing without code, or with a bad message');
      }
      return { type: 'closing', code: m.code, message: m.message };
    default:
      throw invalid(`unknown type ${JSON.stringify(m.type)}`);
  }
}
