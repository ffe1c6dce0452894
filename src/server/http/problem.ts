import type { FastifyError, FastifyReply } from 'fastify';
import { ErrorCodes, PointstreamError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';

/**
 * The one reply signaling sends for a refused request: a status and a JSON problem
 * `{"error": {"code", "message"}}` whose code is documented in docs/errors.md.
 */
export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: ErrorCode,
  message: string,
): FastifyReply {
  return reply.code(status).type('application/json').send({ error: { code, message } });
}

/** A request refused for now (`503` full or closing, `429` over a client limit): retry later. */
export interface Refusal {
  readonly status: 429 | 503;
  readonly code: ErrorCode;
  readonly reason: string;
  readonly retryAfterSeconds: number;
}

/** Sends a {@link Refusal} with its `Retry-After`. */
export function sendRefusal(reply: FastifyReply, refusal: Refusal): FastifyReply {
  void reply.header('Retry-After', String(refusal.retryAfterSeconds));
  return sendProblem(reply, refusal.status, refusal.code, refusal.reason);
}

/** HTTP status for each error code signaling can answer with (any other: 400). */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.SDP_INVALID]: 400,
  [ErrorCodes.SDP_NO_DATACHANNEL]: 400,
  [ErrorCodes.CANDIDATE_REFUSED]: 400,
  [ErrorCodes.TOO_MANY_REQUESTS]: 429,
  [ErrorCodes.SESSION_NOT_FOUND]: 404,
  [ErrorCodes.SESSION_CLOSED]: 409,
  [ErrorCodes.STREAM_INVALID]: 400,
  [ErrorCodes.STREAM_FORBIDDEN]: 403,
  [ErrorCodes.UNAUTHORIZED]: 401,
  [ErrorCodes.CONNECTION_FAILED]: 500,
};

/** Fastify's own request errors, as pointstream codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCodes.HTTP_BODY_TOO_LARGE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCodes.HTTP_BAD_REQUEST,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCodes.HTTP_BAD_REQUEST,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCodes.HTTP_BAD_REQUEST,
};

/** What a thrown error becomes on the wire; `internal` errors are logged and answered vaguely. */
export interface Problem {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly internal: boolean;
}

/** The problem reply for an error thrown by a handler or raised by fastify. */
export function problemOf(error: FastifyError | PointstreamError): Problem {
  if (error instanceof PointstreamError)
    return {
      status: HTTP_STATUS[error.code] ?? 400,
      code: error.code,
      message: error.message,
      internal: false,
    };
  const status = error.statusCode ?? 500;
  if (status >= 500)
    return { status: 500, code: ErrorCodes.INTERNAL, message: 'internal error', internal: true };
  const code =
    FASTIFY_CODES[error.code] ??
    (status === 413
      ? ErrorCodes.HTTP_BODY_TOO_LARGE
      : status === 415
        ? ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE
        : ErrorCodes.HTTP_BAD_REQUEST);
  return { status, code, message: error.message, internal: false };
}
