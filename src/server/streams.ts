import { ErrorCodes, PointstreamError } from '../errors.js';
import { isStreamName } from '../wire/control.js';
import type { ReceivedFrame, StreamStats } from './types.js';

/**
 * Streams: a sensor's name, kept across its sessions. A stream belongs to the token that named it
 * first (with auth on), has at most one live session (a new one replaces it: a reconnecting
 * sender must never be refused because its old session is still timing out), and is forgotten
 * `holdMs` after its last session ended, so that a sender coming back within that time keeps its
 * name, its viewers and its place in `/stats`.
 */

interface StreamEntry {
  readonly name: string;
  /** The token id that owns the name (undefined without auth). */
  readonly token: string | undefined;
  readonly createdAt: number;
  /** The live session, if any. */
  session: string | undefined;
  /** Where the live (or last) session records, when the server records. */
  recording: string | undefined;
  sessionsOpened: number;
  framesReceived: number;
  framesRejected: number;
  bytesReceived: number;
  pointsReceived: number;
  lastFrameAt: number | undefined;
  expiry: NodeJS.Timeout | undefined;
}

/** What the registry tells its server. */
export interface StreamHooks {
  /** A stream was forgotten (no session for `holdMs`): its viewers can go. */
  expired(name: string): void;
}

/** The stream an offer names: JSON body field `stream`, or `?stream=` (WHIP-style offers). */
export function streamOfOffer(
  query: unknown,
  body: Record<string, unknown> | undefined,
): string | undefined {
  const fromQuery = (query as Record<string, unknown> | undefined)?.stream;
  const fromBody = body?.stream;
  if (Array.isArray(fromQuery))
    throw new PointstreamError(ErrorCodes.STREAM_INVALID, 'give "stream" once');
  if (fromQuery !== undefined && fromBody !== undefined && fromQuery !== fromBody)
    throw new PointstreamError(
      ErrorCodes.STREAM_INVALID,
      'the query and the body name different streams',
    );
  const name = fromBody ?? fromQuery;
  if (name === undefined) return undefined;
  if (!isStreamName(name))
    throw new PointstreamError(
      ErrorCodes.STREAM_INVALID,
      `stream name ${typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : `of type ${typeof name}`} is invalid: use 1-64 of A-Z a-z 0-9 . _ -`,
    );
  return name;
}

export class StreamRegistry {
  readonly #streams = new Map<string, StreamEntry>();
  readonly #holdMs: number;
  readonly #hooks: StreamHooks;

  constructor(holdMs: number, hooks: StreamHooks) {
    this.#holdMs = holdMs;
    this.#hooks = hooks;
  }

  /**
   * Refuses a name held by another token (`PS_ERR_STREAM_FORBIDDEN`); otherwise returns the
   * session the new one replaces, if the stream has a live one. Changes nothing.
   */
  check(name: string, token: string | undefined): string | undefined {
    const entry = this.#streams.get(name);
    if (entry === undefined) return undefined;
    if (entry.token !== token)
      throw new PointstreamError(
        ErrorCodes.STREAM_FORBIDDEN,
        `stream ${JSON.stringify(name)} belongs to another token: pick another name`,
      );
    return entry.session;
  }

  /** `session` now feeds `name` (after {@link check}). */
  open(name: string, token: string | undefined, session: string, recording?: string): void {
    let entry = this.#streams.get(name);
    if (entry === undefined) {
      entry = {
        name,
        token,
        createdAt: Date.now(),
        session: undefined,
        recording: undefined,
        sessionsOpened: 0,
        framesReceived: 0,
        framesRejected: 0,
        bytesReceived: 0,
        pointsReceived: 0,
        lastFrameAt: undefined,
        expiry: undefined,
      };
      this.#streams.set(name, entry);
    }
    clearTimeout(entry.expiry);
    entry.expiry = undefined;
    entry.session = session;
    entry.recording = recording;
    entry.sessionsOpened++;
  }

  /** A session ended; the stream is held for `holdMs` unless another session took it already. */
  closed(name: string, session: string): void {
    const entry = this.#streams.get(name);
    if (entry === undefined || entry.session !== session) return;
    entry.session = undefined;
    entry.expiry = setTimeout(() => {
      this.#streams.delete(name);
      this.#hooks.expired(name);
    }, this.#holdMs);
    entry.expiry.unref();
  }

  frame(frame: ReceivedFrame): void {
    const entry = this.#streams.get(frame.stream);
    if (entry === undefined) return;
    entry.framesReceived++;
    entry.bytesReceived += frame.byteLength;
    entry.pointsReceived += frame.pointCount;
    entry.lastFrameAt = frame.receivedAt;
  }

  rejected(name: string): void {
    const entry = this.#streams.get(name);
    if (entry !== undefined) entry.framesRejected++;
  }

  has(name: string): boolean {
    return this.#streams.has(name);
  }

  ownerOf(name: string): { token: string | undefined } | undefined {
    const entry = this.#streams.get(name);
    return entry && { token: entry.token };
  }

  /** The live session of `name`, if any. */
  sessionOf(name: string): string | undefined {
    return this.#streams.get(name)?.session;
  }

  /** Streams of `token` (all of them when `token` is undefined and `all` is set). */
  stats(filter: (token: string | undefined) => boolean): StreamStats[] {
    return [...this.#streams.values()]
      .filter((entry) => filter(entry.token))
      .map((entry) => ({
        name: entry.name,
        state: entry.session === undefined ? 'waiting' : 'live',
        session: entry.session,
        recording: entry.recording,
        createdAt: entry.createdAt,
        sessionsOpened: entry.sessionsOpened,
        framesReceived: entry.framesReceived,
        framesRejected: entry.framesRejected,
        bytesReceived: entry.bytesReceived,
        pointsReceived: entry.pointsReceived,
        lastFrameAt: entry.lastFrameAt,
      }));
  }

  /** Forgets every stream (server shutdown). */
  clear(): void {
    for (const entry of this.#streams.values()) clearTimeout(entry.expiry);
    this.#streams.clear();
  }
}
