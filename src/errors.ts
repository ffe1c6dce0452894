/**
 * Every error pointstream raises or reports carries one of these stable codes. Codes never change
 * meaning; new ones are only added. docs/errors.md documents each.
 */
export const ErrorCodes = {
  // Chunk header (protocol pointstream/1). These are fatal for the channel: once a header cannot
  // be read the byte stream cannot be trusted any more.
  CHUNK_TRUNCATED: 'PS_ERR_CHUNK_TRUNCATED',
  CHUNK_BAD_VERSION: 'PS_ERR_CHUNK_BAD_VERSION',
  CHUNK_BAD_TYPE: 'PS_ERR_CHUNK_BAD_TYPE',
  CHUNK_BAD_HEADER: 'PS_ERR_CHUNK_BAD_HEADER',
  // Chunk sequencing: the frame concerned is rejected, the channel goes on.
  CHUNK_OUT_OF_ORDER: 'PS_ERR_CHUNK_OUT_OF_ORDER',
  CHUNK_UNKNOWN_FRAME: 'PS_ERR_CHUNK_UNKNOWN_FRAME',
  CHUNK_OVERFLOW: 'PS_ERR_CHUNK_OVERFLOW',
  // Frame level: the frame is rejected, the channel goes on.
  FRAME_DUPLICATE: 'PS_ERR_FRAME_DUPLICATE',
  FRAME_TOO_LARGE: 'PS_ERR_FRAME_TOO_LARGE',
  FRAME_TOO_MANY_POINTS: 'PS_ERR_FRAME_TOO_MANY_POINTS',
  FRAME_TOO_MANY_CHUNKS: 'PS_ERR_FRAME_TOO_MANY_CHUNKS',
  FRAME_UNSUPPORTED_FORMAT: 'PS_ERR_FRAME_UNSUPPORTED_FORMAT',
  FRAME_LENGTH_MISMATCH: 'PS_ERR_FRAME_LENGTH_MISMATCH',
  FRAME_CHECKSUM: 'PS_ERR_FRAME_CHECKSUM',
  FRAME_NON_FINITE: 'PS_ERR_FRAME_NON_FINITE',
  FRAME_INCOMPLETE: 'PS_ERR_FRAME_INCOMPLETE',
  SERVER_MEMORY: 'PS_ERR_SERVER_MEMORY',
  DECODE_BUDGET: 'PS_ERR_DECODE_BUDGET',
  // .npy payloads
  NPY_BAD_MAGIC: 'PS_ERR_NPY_BAD_MAGIC',
  NPY_BAD_VERSION: 'PS_ERR_NPY_BAD_VERSION',
  NPY_BAD_HEADER: 'PS_ERR_NPY_BAD_HEADER',
  NPY_UNSUPPORTED_DTYPE: 'PS_ERR_NPY_UNSUPPORTED_DTYPE',
  NPY_BAD_SHAPE: 'PS_ERR_NPY_BAD_SHAPE',
  NPY_FORTRAN_ORDER: 'PS_ERR_NPY_FORTRAN_ORDER',
  NPY_TRUNCATED: 'PS_ERR_NPY_TRUNCATED',
  // Point encodings (q16 and compressed payloads, src/wire/encodings)
  ENCODING_UNSUPPORTED: 'PS_ERR_ENCODING_UNSUPPORTED',
  ENCODING_CORRUPT: 'PS_ERR_ENCODING_CORRUPT',
  // Per-point fields (docs/protocol.md, "Per-point fields")
  FIELDS_INVALID: 'PS_ERR_FIELDS_INVALID',
  FIELDS_UNSUPPORTED: 'PS_ERR_FIELDS_UNSUPPORTED',
  // Point files (send --from)
  SOURCE_UNREADABLE: 'PS_ERR_SOURCE_UNREADABLE',
  SOURCE_EMPTY: 'PS_ERR_SOURCE_EMPTY',
  PLY_BAD_HEADER: 'PS_ERR_PLY_BAD_HEADER',
  PLY_UNSUPPORTED: 'PS_ERR_PLY_UNSUPPORTED',
  PLY_TRUNCATED: 'PS_ERR_PLY_TRUNCATED',
  PLY_BAD_DATA: 'PS_ERR_PLY_BAD_DATA',
  PCD_BAD_HEADER: 'PS_ERR_PCD_BAD_HEADER',
  PCD_UNSUPPORTED: 'PS_ERR_PCD_UNSUPPORTED',
  PCD_TRUNCATED: 'PS_ERR_PCD_TRUNCATED',
  PCD_BAD_DATA: 'PS_ERR_PCD_BAD_DATA',
  // Plain form (one whole frame per message)
  PLAIN_BAD_LENGTH: 'PS_ERR_PLAIN_BAD_LENGTH',
  // Control messages (receipts and notices)
  CONTROL_INVALID: 'PS_ERR_CONTROL_INVALID',
  // Session
  PROTOCOL_UNSUPPORTED: 'PS_ERR_PROTOCOL_UNSUPPORTED',
  TOO_MANY_ERRORS: 'PS_ERR_TOO_MANY_ERRORS',
  TOO_MANY_CHANNELS: 'PS_ERR_TOO_MANY_CHANNELS',
  SESSION_CLOSED: 'PS_ERR_SESSION_CLOSED',
  SESSION_NOT_FOUND: 'PS_ERR_SESSION_NOT_FOUND',
  // Cluster: the node is draining (SIGTERM) or leaving; reconnect through the front at once.
  SESSION_MOVED: 'PS_ERR_SESSION_MOVED',
  // No message from the server within the liveness timeout (its heartbeat stopped).
  PEER_SILENT: 'PS_ERR_PEER_SILENT',
  // Streams (a sensor's name, kept across its sessions)
  STREAM_INVALID: 'PS_ERR_STREAM_INVALID',
  STREAM_FORBIDDEN: 'PS_ERR_STREAM_FORBIDDEN',
  STREAM_REPLACED: 'PS_ERR_STREAM_REPLACED',
  NO_FRAME_YET: 'PS_ERR_NO_FRAME_YET',
  // Bus (NATS JetStream: serve --bus, consume; docs/bus.md)
  BUS_UNAVAILABLE: 'PS_ERR_BUS_UNAVAILABLE',
  BUS_MESSAGE_INVALID: 'PS_ERR_BUS_MESSAGE_INVALID',
  BUS_STREAM_MISMATCH: 'PS_ERR_BUS_STREAM_MISMATCH',
  // HTTP signaling (each answered with the HTTP status in docs/errors.md)
  HTTP_BAD_REQUEST: 'PS_ERR_HTTP_BAD_REQUEST',
  HTTP_NOT_FOUND: 'PS_ERR_HTTP_NOT_FOUND',
  HTTP_METHOD_NOT_ALLOWED: 'PS_ERR_HTTP_METHOD_NOT_ALLOWED',
  HTTP_BODY_TOO_LARGE: 'PS_ERR_HTTP_BODY_TOO_LARGE',
  HTTP_UNSUPPORTED_MEDIA_TYPE: 'PS_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
  SERVER_FULL: 'PS_ERR_SERVER_FULL',
  TOO_MANY_REQUESTS: 'PS_ERR_TOO_MANY_REQUESTS',
  UNAUTHORIZED: 'PS_ERR_UNAUTHORIZED',
  SHUTTING_DOWN: 'PS_ERR_SHUTTING_DOWN',
  INTERNAL: 'PS_ERR_INTERNAL',
  // Signaling and connection set-up
  SDP_INVALID: 'PS_ERR_SDP_INVALID',
  SDP_NO_DATACHANNEL: 'PS_ERR_SDP_NO_DATACHANNEL',
  CANDIDATE_REFUSED: 'PS_ERR_CANDIDATE_REFUSED',
  SIGNALING_FAILED: 'PS_ERR_SIGNALING_FAILED',
  SIGNALING_REJECTED: 'PS_ERR_SIGNALING_REJECTED',
  SIGNALING_TLS: 'PS_ERR_SIGNALING_TLS',
  CONNECT_TIMEOUT: 'PS_ERR_CONNECT_TIMEOUT',
  CONNECTION_FAILED: 'PS_ERR_CONNECTION_FAILED',
  CHANNEL_CLOSED: 'PS_ERR_CHANNEL_CLOSED',
  // Client
  FRAME_REJECTED: 'PS_ERR_FRAME_REJECTED',
  FRAME_LOST: 'PS_ERR_FRAME_LOST',
  ABORTED: 'PS_ERR_ABORTED',
  INVALID_OPTION: 'PS_ERR_INVALID_OPTION',
  INVALID_FRAME: 'PS_ERR_INVALID_FRAME',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/** True when `code` is one of pointstream's stable error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && knownCodes.has(code);
}

/** Extra, machine-readable facts about an error (sequence number, limits, sizes...). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

/**
 * The one error class of pointstream. `code` is stable; `message` is for people. Serialises to
 * JSON with its code, message, details and cause, so it survives logs and receipts.
 */
export class PointstreamError extends Error {
  override readonly name = 'PointstreamError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { details?: ErrorDetails; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): {
    name: string;
    code: ErrorCode;
    message: string;
    details?: ErrorDetails;
    cause?: unknown;
  } {
    const json: {
      name: string;
      code: ErrorCode;
      message: string;
      details?: ErrorDetails;
      cause?: unknown;
    } = {
      name: this.name,
      code: this.code,
      message: this.message,
    };
    if (this.details !== undefined) json.details = this.details;
    if (this.cause !== undefined) json.cause = serializeCause(this.cause);
    return json;
  }
}

function serializeCause(cause: unknown): unknown {
  if (cause instanceof PointstreamError) return cause.toJSON();
  if (cause instanceof Error) return { name: cause.name, message: cause.message };
  if (typeof cause === 'string' || typeof cause === 'number' || typeof cause === 'boolean')
    return cause;
  return typeof cause === 'object' ? cause : typeof cause;
}

/** Argument errors at API boundaries: a `TypeError` that names the field and carries a code. */
export function invalidOption(
  field: string,
  expected: string,
  got: unknown,
): TypeError & { code: ErrorCode } {
  const error = new TypeError(
    `option "${field}" must be ${expected}; got ${describe(got)}`,
  ) as TypeError & {
    code: ErrorCode;
  };
  error.code = ErrorCodes.INVALID_OPTION;
  return error;
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
