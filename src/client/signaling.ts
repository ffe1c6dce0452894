import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * The client's side of HTTP signaling, WHIP-style (RFC 9725): POST the offer as application/sdp,
 * get the answer and the session's URL, PATCH trickled candidates to it, DELETE it to end.
 */

export interface SignaledAnswer {
  readonly sdp: string;
  /** Absolute URL of the session resource (from `Location`). */
  readonly sessionUrl: string | undefined;
}

async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error' });
  } catch (cause) {
    if ((cause as Error).name === 'AbortError' || (cause as Error).name === 'TimeoutError')
      throw cause;
    const reason = (cause as { cause?: { code?: string; message?: string } }).cause;
    throw new PointstreamError(
      ErrorCodes.SIGNALING_FAILED,
      `${what} ${url} failed: ${reason?.code ?? reason?.message ?? (cause as Error).message}`,
      { cause },
    );
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    let serverCode: string | undefined;
    let serverMessage = text.slice(0, 200);
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
      serverCode = body.error?.code;
      serverMessage = body.error?.message ?? serverMessage;
    } catch {
      // not JSON: keep the text
    }
    const retryAfter = response.headers.get('retry-after');
    throw new PointstreamError(
      ErrorCodes.SIGNALING_REJECTED,
      `${what} was refused: HTTP ${response.status}${serverMessage ? ` (${serverMessage})` : ''}`,
      { details: { status: response.status, serverCode: serverCode ?? null, retryAfter } },
    );
  }
  return response;
}

export async function postOffer(
  url: string,
  sdp: string,
  signal: AbortSignal,
): Promise<SignaledAnswer> {
  const response = await request(
    url,
    { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp, signal },
    'offer',
  );
  const answer = await response.text();
  const location = response.headers.get('location');
  return {
    sdp: answer,
    sessionUrl: location === null ? undefined : new URL(location, url).toString(),
  };
}

export async function patchCandidates(
  sessionUrl: string,
  fragment: string,
  signal: AbortSignal,
): Promise<void> {
  await request(
    sessionUrl,
    {
      method: 'PATCH',
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      body: fragment,
      signal,
    },
    'candidate update',
  );
}

export async function deleteSession(sessionUrl: string, signal: AbortSignal): Promise<void> {
  await request(sessionUrl, { method: 'DELETE', signal }, 'session end');
}
