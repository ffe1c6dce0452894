import type { Logger } from '../util/logger.js';

/** Limits of a front's HTTP side (the same names and defaults as a server's). */
export interface FrontLimits {
  /** Largest request body (an offer's SDP). (32768) */
  readonly maxSdpBytes: number;
  /** Offers (sessions and viewers) one client, by token and by address, may make per minute. (60) */
  readonly maxOffersPerMinute: number;
  /** A request's headers and body must arrive within this. (10000) */
  readonly requestTimeoutMs: number;
  /** Open sockets in all. (1024) */
  readonly maxConnections: number;
  /** Open sockets from one address. (64) */
  readonly maxConnectionsPerAddress: number;
}

/** Options of {@link createFront}. Every field but `bus` is optional. */
export interface FrontOptions {
  /** The NATS server(s) the nodes use, `nats://HOST:PORT` (comma-separated for several). */
  readonly bus: string;
  /** Interface for HTTP signaling. ('127.0.0.1') */
  readonly host?: string | undefined;
  /** Port for HTTP signaling; 0 for any free one. (8080) */
  readonly port?: number | undefined;
  /** Serve HTTPS with this PEM certificate and key. (plain HTTP) */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer } | undefined;
  /** Bearer tokens: turns on auth. The nodes must hold the same ones (they check them again). */
  readonly tokens?: readonly string[] | undefined;
  /** Origins allowed to call from a browser (CORS). (none) */
  readonly corsOrigins?: readonly string[] | undefined;
  readonly limits?: Partial<FrontLimits> | undefined;
  /** How long a node may take to answer a forwarded request before the next one is tried. (10000) */
  readonly forwardTimeoutMs?: number | undefined;
  /** Tie-breaks of placement, a number in [0, 1). (Math.random) */
  readonly random?: (() => number) | undefined;
  readonly logger?: Logger | undefined;
}

/** A node as a front's `/stats` shows it. */
export interface FrontNodeStats {
  readonly id: string;
  readonly version: string;
  readonly sessions: number;
  readonly maxSessions: number;
  readonly viewers: number;
  readonly maxViewers: number;
  /** Sessions this front placed on it since its heartbeat (not yet counted there). */
  readonly reservedSessions: number;
  readonly ingressBytesPerSec: number;
  readonly cpu: number;
  readonly loopLagMs: number;
  readonly busHealthy: boolean;
  readonly draining: boolean;
  /** How long ago this front received its heartbeat. */
  readonly heartbeatAgeMs: number;
  readonly uptimeMs: number;
}

/** A front's `/stats`: the cluster as it sees it, and its own totals. */
export interface FrontStats {
  readonly nodes: readonly FrontNodeStats[];
  /**
   * Live sessions and the node each runs on (with auth on: the asking token's only). The shape of
   * a server's `/stats` where it can be (`sessions`, `streams[].name`), so the pages work here.
   */
  readonly sessions: readonly {
    readonly id: string;
    readonly stream: string;
    readonly node: string;
  }[];
  /** Live streams, their node and their live session's counters (from the node's heartbeat). */
  readonly streams: readonly {
    readonly name: string;
    readonly state: 'live';
    readonly session: string;
    readonly node: string;
    readonly framesReceived: number;
    readonly framesRejected: number;
    readonly bytesReceived: number;
    readonly pointsReceived: number;
    readonly lastFrameAt: number | undefined;
  }[];
  readonly totals: {
    /** Offers a node answered with success, sessions and viewers. */
    readonly placements: number;
    /** Offers refused `503` `PS_ERR_SERVER_FULL`: no node had room or answered. */
    readonly refusals: number;
    /** Forwarded requests a node did not answer usably (timeouts included). */
    readonly forwardFailures: number;
    readonly forwardTimeouts: number;
  };
}
