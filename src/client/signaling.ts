import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * The client's side of HTTP signaling, WHIP-style (RFC 9725): POST the offer as application/sdp,
 * get the answer and the session's URL, PATCH trickled candidates to it, DELETE it to end.
 * node:http(s) rather than fetch, so that a private CA (`ca`) can be trusted per client.
 */

export interface SignalingContext {
  readonly signal: AbortSignal;
  /** Bearer token sent as `Authorization`. */
  readonly token?: string | undefined;
  /** PEM CA certificate(s) to trust for an HTTPS signaling server with a private certificate. */
  readonly ca?: string | Buffer | undefined;
}

export interface SignaledAnswer {
  readonly sdp: string;
  /** Absolute URL of the session resource (from `Location`). */
  readonly sessionUrl: string | undefined;
}

const MAX_RESPONSE_BYTES = 256 * 1024;
const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|SSL|EPROTO/;

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  url: string,
  method: string,
  context: SignalingContext,
  what: string,
  contentType?: string,
  body?: string,
): Promise<Response> {
  const target = new URL(url);
  const headers: Record<string, string> = {};
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  if (context.token !== undefined) headers.authorization = `Bearer ${context.token}`;
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    const req = request(
      target,
      {
        method,
        headers,
        signal: context.signal,
        ...(context.ca === undefined ? {} : { ca: context.ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES)
            req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (cause: Error & { code?: string }) => {
      if (cause.name === 'AbortError') {
        reject(cause);
        return;
      }
      const detail = cause.code ?? cause.message;
      const tls = TLS_ERRORS.test(detail);
      reject(
        new PointstreamError(
          tls ? ErrorCodes.SIGNALING_TLS : ErrorCodes.SIGNALING_FAILED,
          `${what} ${url} failed: ${detail}${tls ? ' (is the server certificate trusted? see --ca)' : ''}`,
          { cause, details: { networkCode: cause.code ?? null } },
        ),
      );
    });
    req.end(body);
  });
}

function refused(response: Response, what: string): PointstreamError {
  let serverCode: string | null = null;
  let serverMessage = response.body.slice(0, 200);
  try {
    const json = JSON.parse(response.body) as { error?: { code?: string; message?: string } };
    serverCode = json.error?.code ?? null;
    serverMessage = json.error?.message ?? serverMessage;
  } catch {
    // not JSON: keep the text
  }
  const retryAfter = response.headers['retry-after'] ?? null;
  return new PointstreamError(
    response.status === 401 ? ErrorCodes.UNAUTHORIZED : ErrorCodes.SIGNALING_REJECTED,
    `${what} was refused: HTTP ${response.status}${serverMessage ? ` (${serverMessage})` : ''}`,
    { details: { status: response.status, serverCode, retryAfter } },
  );
}

/** A 404 for the offer: the URL is wrong, so say which one `pointstream serve` takes. */
function notAnOfferEndpoint(url: string, response: Response): PointstreamError {
  const offer = new URL('/offer', url).toString();
  const error = refused(response, 'offer');
  return new PointstreamError(
    error.code,
    new URL(url).pathname === '/offer'
      ? `no offer endpoint at ${url} (HTTP 404): is this a pointstream server?`
      : `no offer endpoint at ${url} (HTTP 404): pointstream serve takes offers at ${offer}`,
    { details: error.details },
  );
}

export async function postOffer(
  url: string,
  sdp: string,
  context: SignalingContext,
): Promise<SignaledAnswer> {
  const response = await send(url, 'POST', context, 'offer', 'application/sdp', sdp);
  if (response.status === 404) throw notAnOfferEndpoint(url, response);
  if (response.status !== 201 && response.status !== 200) throw refused(response, 'offer');
  const location = response.headers.location;
  return {
    sdp: response.body,
    sessionUrl: location === undefined ? undefined : new URL(location, url).toString(),
  };
}

export async function patchCandidates(
  sessionUrl: string,
  fragment: string,
  context: SignalingContext,
): Promise<void> {
  const response = await send(
    sessionUrl,
    'PATCH',
    context,
    'candidate update',
    'application/trickle-ice-sdpfrag',
    fragment,
  );
  if (response.status !== 204 && response.status !== 200)
    throw refused(response, 'candidate update');
}

export async function deleteSession(sessionUrl: string, context: SignalingContext): Promise<void> {
  const response = await send(sessionUrl, 'DELETE', context, 'session end');
  if (response.status !== 200 && response.status !== 204) throw refused(response, 'session end');
}
