import { candidatesOf, toSdpFragment, withoutCandidates } from '../../src/signaling/sdp.js';
import { VIEWER_PROTOCOL } from '../../src/wire/viewer.js';
import { gathered, holdMessages } from '../shared/signaling.js';
import type { MessageListenerSetter } from '../shared/signaling.js';

/** Why watching could not start, in words a person can act on, with the HTTP status if any. */
export class WatchError extends Error {
  override readonly name = 'WatchError';
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, status?: number, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface ViewerConnection {
  readonly pc: RTCPeerConnection;
  readonly channel: RTCDataChannel;
  /** Absolute URL of this viewer on the server (PATCH, DELETE). */
  readonly url: string | undefined;
  /** Starts delivering the channel's messages, those that came before first. */
  readonly listen: MessageListenerSetter;
}

/** ICE gathering on a host without network can take long; we go on with what we have by then. */

export function authHeaders(
  token: string | undefined,
  extra: Record<string, string> = {},
): Record<string, string> {
  return token === undefined ? extra : { ...extra, authorization: `Bearer ${token}` };
}

async function refusal(response: Response): Promise<WatchError> {
  let code: string | undefined;
  let message = '';
  try {
    const json = (await response.json()) as { error?: { code?: string; message?: string } };
    code = json.error?.code;
    message = json.error?.message ?? '';
  } catch {
    // not JSON
  }
  const status = response.status;
  const what =
    status === 401
      ? 'HTTP 401: the server needs a valid token (enter it above, or open /viewer#token=…)'
      : status === 404
        ? 'HTTP 404: no such stream (not started yet, ended, or it belongs to another token)'
        : status === 503
          ? `HTTP 503: the server cannot take another viewer now; retry in ${response.headers.get('retry-after') ?? 'a few'} s`
          : `HTTP ${status}`;
  return new WatchError(`${what}${message ? ` — ${message}` : ''}`, status, code);
}

/**
 * Opens a viewer connection for `stream`: `POST /viewer/offer` without candidates, apply the
 * answer, `PATCH` our candidates (as the Node client does), wait for the channel to open.
 */
export async function openViewer(
  origin: string,
  stream: string,
  token: string | undefined,
  timeoutMs = 15_000,
): Promise<ViewerConnection> {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const channel = pc.createDataChannel('viewer', { ordered: true, protocol: VIEWER_PROTOCOL });
  channel.binaryType = 'arraybuffer';
  const listen = holdMessages(channel);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const local = pc.localDescription?.sdp ?? '';
    const response = await fetch(`${origin}/viewer/offer`, {
      method: 'POST',
      headers: authHeaders(token, { 'content-type': 'application/json' }),
      body: JSON.stringify({ sdp: withoutCandidates(local), type: 'offer', stream }),
      signal,
    });
    if (!response.ok) throw await refusal(response);
    const answer = (await response.json()) as { sdp?: unknown };
    if (typeof answer.sdp !== 'string') throw new WatchError('the answer has no SDP');
    const location = response.headers.get('location');
    const url = location === null ? undefined : new URL(location, origin).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    const candidates = candidatesOf(pc.localDescription?.sdp ?? local);
    if (candidates.length > 0 && url !== undefined) {
      const patch = await fetch(url, {
        method: 'PATCH',
        headers: authHeaders(token, { 'content-type': 'application/trickle-ice-sdpfrag' }),
        body: toSdpFragment(candidates),
        signal,
      });
      if (!patch.ok) throw await refusal(patch);
    }
    await new Promise<void>((resolve, reject) => {
      if (channel.readyState === 'open') return resolve();
      const fail = (reason: string): void => reject(new WatchError(`connection failed: ${reason}`));
      channel.addEventListener('open', () => resolve(), { once: true });
      channel.addEventListener('close', () => fail('the channel closed while opening'), {
        once: true,
      });
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed') fail('ICE/DTLS failed (is UDP to the server open?)');
      });
      signal.addEventListener('abort', () => fail(`not open within ${timeoutMs} ms`), {
        once: true,
      });
    });
    return { pc, channel, url, listen };
  } catch (error) {
    pc.close();
    if (error instanceof WatchError) throw error;
    if (signal.aborted) throw new WatchError(`connection failed: not open within ${timeoutMs} ms`);
    throw new WatchError(`connection failed: ${(error as Error).message}`);
  }
}
