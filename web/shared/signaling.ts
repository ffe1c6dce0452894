import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../../src/signaling/sdp.js';
import { RtcChannel } from './rtc-channel.js';

/**
 * The browser's side of pointstream signaling, as the Node client does it (src/client/client.ts):
 * POST the offer without candidates, apply the answer, then PATCH our candidates to the session.
 * The server then never starts ICE and DTLS before we know its fingerprint.
 */

/** The bearer token in the page's URL fragment (`#token=...`), which never leaves the browser. */
export function tokenFromFragment(hash: string = location.hash): string | undefined {
  const token = new URLSearchParams(hash.replace(/^#/, '')).get('token');
  return token !== null && token.length > 0 ? token : undefined;
}

/** Headers for an API call: the bearer token when there is one. */
export function authHeaders(token: string | undefined, extra: Record<string, string> = {}) {
  return token === undefined ? extra : { ...extra, authorization: `Bearer ${token}` };
}

export interface OpenChannelOptions {
  /** Absolute URL of the offer endpoint, e.g. `${location.origin}/offer`. */
  readonly offerUrl: string;
  readonly token?: string | undefined;
  readonly label: string;
  /** Channel protocol: `pointstream/1` for chunked frames. */
  readonly protocol: string;
  /** Gives up with PS_ERR_CONNECT_TIMEOUT when the channel is not open by then. Default 15 s. */
  readonly timeoutMs?: number;
}

export interface OpenedChannel {
  readonly pc: RTCPeerConnection;
  /** The open channel; it holds what it received until its user listens. */
  readonly channel: RtcChannel;
  /** Absolute URL of the session (from `Location`), for PATCH and DELETE. */
  readonly sessionUrl: string | undefined;
}

export type MessageListenerSetter = (listener: (data: unknown) => void) => void;

/**
 * Keeps what `channel` receives until its user listens. The server greets as soon as the channel
 * opens, which can happen while the opener still awaits its PATCH: the message was then
 * dispatched to nobody (seen under load: the page waited 15 s for a hello that had come).
 */
export function holdMessages(channel: RTCDataChannel): MessageListenerSetter {
  const held: unknown[] = [];
  const hold = (event: MessageEvent<unknown>): void => {
    held.push(event.data);
  };
  channel.addEventListener('message', hold);
  return (listener) => {
    channel.removeEventListener('message', hold);
    channel.addEventListener('message', (event: MessageEvent<unknown>) => listener(event.data));
    for (const data of held.splice(0)) listener(data);
  };
}

/** ICE gathering on a host without network can take long; we go on with what we have by then. */
const GATHER_WAIT_MS = 3000;

async function refusal(response: Response, what: string): Promise<PointstreamError> {
  let serverCode: string | null = null;
  let message = '';
  try {
    const json = (await response.json()) as { error?: { code?: string; message?: string } };
    serverCode = json.error?.code ?? null;
    message = json.error?.message ?? '';
  } catch {
    // not JSON
  }
  return new PointstreamError(
    response.status === 401 ? ErrorCodes.UNAUTHORIZED : ErrorCodes.SIGNALING_REJECTED,
    `${what} was refused: HTTP ${response.status}${message ? ` (${message})` : ''}` +
      (response.status === 401 ? ': check the token' : ''),
    {
      details: {
        status: response.status,
        serverCode,
        retryAfter: response.headers.get('retry-after'),
      },
    },
  );
}

async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (cause) {
    if (init.signal?.aborted) throw cause;
    throw new PointstreamError(
      ErrorCodes.SIGNALING_FAILED,
      `${what} ${url} failed: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/** Resolves when ICE gathering is complete, `signal` aborts, or after 3 s (then what is there is used). */
export function gathered(pc: RTCPeerConnection, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = (): void => {
      if (pc.iceGatheringState === 'complete' || signal?.aborted === true) done();
    };
    const timer = setTimeout(done, GATHER_WAIT_MS);
    pc.addEventListener('icegatheringstatechange', check);
    signal?.addEventListener('abort', done, { once: true });
    check();
  });
}

/**
 * Opens a peer connection with one ordered, reliable channel to a pointstream server and resolves
 * once the channel is open. Rejects with a PointstreamError: PS_ERR_UNAUTHORIZED (401),
 * PS_ERR_SIGNALING_REJECTED, PS_ERR_SIGNALING_FAILED or PS_ERR_CONNECT_TIMEOUT.
 */
export async function openChannel(options: OpenChannelOptions): Promise<OpenedChannel> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const channel = pc.createDataChannel(options.label, {
    ordered: true,
    protocol: options.protocol,
  });
  // Made at once: it keeps what arrives before the sender listens (the hello).
  const rtc = new RtcChannel(channel, pc);
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, timeout);
    const local = pc.localDescription?.sdp ?? '';
    const response = await request(
      options.offerUrl,
      {
        method: 'POST',
        headers: authHeaders(options.token, { 'content-type': 'application/json' }),
        body: JSON.stringify({ sdp: withoutCandidates(local), type: 'offer' }),
        signal: timeout,
      },
      'offer',
    );
    if (!response.ok) throw await refusal(response, 'offer');
    const answer = (await response.json()) as { sdp?: unknown };
    if (typeof answer.sdp !== 'string')
      throw new PointstreamError(ErrorCodes.SIGNALING_REJECTED, 'the answer has no SDP');
    const location = response.headers.get('location');
    const sessionUrl =
      location === null ? undefined : new URL(location, options.offerUrl).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    const candidates = candidatesOf(pc.localDescription?.sdp ?? local);
    if (candidates.length > 0 && sessionUrl !== undefined) {
      const patch = await request(
        sessionUrl,
        {
          method: 'PATCH',
          headers: authHeaders(options.token, {
            'content-type': 'application/trickle-ice-sdpfrag',
          }),
          body: toSdpFragment(candidates),
          signal: timeout,
        },
        'candidate update',
      );
      if (!patch.ok) throw await refusal(patch, 'candidate update');
    }
    await new Promise<void>((resolve, reject) => {
      if (channel.readyState === 'open') return resolve();
      const fail = (reason: string): void =>
        reject(new PointstreamError(ErrorCodes.CONNECTION_FAILED, reason));
      channel.addEventListener('open', () => resolve(), { once: true });
      channel.addEventListener('close', () => fail('the data channel closed while opening'), {
        once: true,
      });
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed') fail('ICE/DTLS failed (is UDP to the server open?)');
      });
      timeout.addEventListener('abort', () => fail('timeout'), { once: true });
    });
    return { pc, channel: rtc, sessionUrl };
  } catch (error) {
    pc.close();
    if (timeout.aborted) {
      throw new PointstreamError(
        ErrorCodes.CONNECT_TIMEOUT,
        `channel not open within ${timeoutMs} ms`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Ends a session on the server (best effort); true when the server answered that it did. */
export async function deleteSession(
  sessionUrl: string | undefined,
  token: string | undefined,
): Promise<boolean> {
  if (sessionUrl === undefined) return false;
  const response = await fetch(sessionUrl, {
    method: 'DELETE',
    headers: authHeaders(token),
    signal: AbortSignal.timeout(2000),
  }).catch(() => undefined);
  return response?.ok ?? false;
}
