import { ErrorCodes } from '../../errors.js';
import { ClientLimiter } from '../client-limits.js';
import type { Refusal } from './problem.js';

/** A client's hold on one peer slot, given back once (when the peer ends). */
export interface Ticket {
  /** What the slot is counted under: the token (when there is one) and the remote address. */
  readonly keys: readonly string[];
  /** Gives the slot back; later calls do nothing. */
  release(): void;
}

/** Options of a {@link ClientAdmission}. */
export interface ClientAdmissionOptions {
  /** Peers one client (one token, and one remote address) may hold at once. */
  readonly maxPerClient: number;
  /** Offers one client may make per minute (refused ones count too). */
  readonly maxOffersPerMinute: number;
}

/**
 * Per-client admission of offers (sessions or viewers): offers per minute and peers at once,
 * counted under the token and under the address, refused with `429` and a `Retry-After`.
 */
export class ClientAdmission {
  readonly #limiter: ClientLimiter;

  constructor(options: ClientAdmissionOptions) {
    this.#limiter = new ClientLimiter({
      maxSessions: options.maxPerClient,
      maxOffersPerMinute: options.maxOffersPerMinute,
    });
  }

  /**
   * Counts an offer from `token` (undefined without auth) at `address`. `more` is asked only when
   * the client's own limits allow, for a refusal of the caller's (e.g. half-open slots).
   */
  admit(
    token: string | undefined,
    address: string,
    more?: () => Refusal | undefined,
  ): Refusal | Ticket {
    const keys = [...(token === undefined ? [] : [`token:${token}`]), `addr:${address}`];
    const refused = this.#limiter.admit(keys);
    if (refused !== undefined)
      return {
        status: 429,
        code: ErrorCodes.TOO_MANY_REQUESTS,
        reason: refused.reason,
        retryAfterSeconds: refused.retryAfterSeconds,
      };
    const other = more?.();
    if (other !== undefined) return other;
    this.#limiter.sessionOpened(keys);
    let held = true;
    return {
      keys,
      release: () => {
        if (held) this.#limiter.sessionClosed(keys);
        held = false;
      },
    };
  }
}

/** Options of {@link halfOpenRefusal}. */
export interface HalfOpenOptions {
  /** The offer's remote address. */
  readonly address: string;
  /** Every live peer, with its state and address. */
  readonly peers: Iterable<{ readonly state: string; readonly remoteAddress: string | undefined }>;
  /** Peers still `connecting` one network may hold. */
  readonly limit: number;
  /** How long a peer may stay `connecting` (its ICE timeout), for `Retry-After`. */
  readonly connectingMs: number;
}

/**
 * Half-open peers (ICE not yet connected) of one network prefix (IPv4 /24, IPv6 /48) may take at
 * most `limit` of the slots, so that offers never followed by a connection from a few networks
 * cannot keep every slot busy. Peers are few (64 sessions at most): counting them on each offer
 * costs less than keeping counts in step with every state change.
 */
export function halfOpenRefusal(options: HalfOpenOptions): Refusal | undefined {
  const prefix = networkPrefix(options.address);
  let halfOpen = 0;
  for (const peer of options.peers) {
    if (peer.state === 'connecting' && networkPrefix(peer.remoteAddress ?? '') === prefix)
      halfOpen++;
  }
  if (halfOpen < options.limit) return undefined;
  return {
    status: 429,
    code: ErrorCodes.TOO_MANY_REQUESTS,
    reason: `network ${prefix} already has ${halfOpen} sessions not yet connected (limit ${options.limit})`,
    retryAfterSeconds: Math.ceil(options.connectingMs / 1000),
  };
}

/** The network an address belongs to, for half-open slots: IPv4 /24, IPv6 /48. */
export function networkPrefix(address: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/i.exec(address);
  if (v4) return `${v4[1]}.0/24`;
  const groups = address.split('::')[0]?.split(':') ?? [];
  return `${groups.slice(0, 3).join(':')}::/48`;
}
