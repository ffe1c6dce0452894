/**
 * Where a front places an offer (pure: no sockets, no clocks, an injected random source).
 *
 * Among the nodes the directory holds fresh, those that are bus-healthy, not draining and have a
 * free slot are candidates. A node's free slots are its capacity less what its last heartbeat
 * counted less what this front placed on it since that heartbeat: without those reservations, a
 * burst of offers between two heartbeats (1 s) would all land on the node that looked emptiest.
 * Reservations belong to the heartbeat they were made against (its `at`), so the next heartbeat,
 * which counts the sessions itself, clears them: no clock is shared with the node.
 *
 * The candidate with the most free slots wins; among equals, the one with fewest sessions (so
 * that unequal capacities still spread evenly: 2/4/4 and 8 offers end 2/3/3), and among exact ties
 * a random one, so that fronts holding the same view do not all pick the same node.
 */
import type { NodeHeartbeat } from '../cluster/protocol.js';

/** What is placed: a sender's session, or a viewer. */
export type PlacementKind = 'session' | 'viewer';

/** A viewer's stream: the node that ingests it is preferred. */
export interface WatchedStream {
  readonly tenant: string;
  readonly stream: string;
  /** The node a legacy `{"session": id}` viewer offer names (its id's node), if any. */
  readonly node?: string | undefined;
}

/** The slots of one node as placement counts them. */
export interface NodeLoad {
  readonly id: string;
  readonly used: number;
  readonly capacity: number;
  readonly reserved: number;
  readonly free: number;
}

interface Reservation {
  /** The heartbeat (`at`) the reservations were made against. */
  readonly at: number;
  sessions: number;
  viewers: number;
}

/** Options of {@link Placement}. */
export interface PlacementOptions {
  /** A number in [0, 1), for tie-breaks. (Math.random) */
  readonly random?: () => number;
}

/** One front's placement state: its reservations since each node's heartbeat. */
export class Placement {
  readonly #reservations = new Map<string, Reservation>();
  readonly #random: () => number;

  constructor(options: PlacementOptions = {}) {
    this.#random = options.random ?? Math.random;
  }

  /** Whether a node may take anything new at all (bus healthy, not draining). */
  static eligible(node: NodeHeartbeat): boolean {
    return node.busHealthy && !node.draining;
  }

  /** Slots of `kind` on `node`: used (heartbeat), reserved (this front, since it), free. */
  load(node: NodeHeartbeat, kind: PlacementKind): NodeLoad {
    const used = kind === 'session' ? node.sessions : node.viewers;
    const capacity = kind === 'session' ? node.maxSessions : node.maxViewers;
    const reservation = this.#current(node);
    const reserved =
      reservation === undefined
        ? 0
        : kind === 'session'
          ? reservation.sessions
          : reservation.viewers;
    return { id: node.id, used, capacity, reserved, free: Math.max(0, capacity - used - reserved) };
  }

  /**
   * The node for the next offer of `kind`, among `nodes` (fresh heartbeats) less `exclude` (nodes
   * that already failed this request), and reserves a slot on it; undefined when none has room.
   * A viewer goes to the node that ingests its stream when that one has a free viewer slot.
   */
  choose(
    nodes: readonly NodeHeartbeat[],
    kind: PlacementKind,
    options: { readonly exclude?: ReadonlySet<string>; readonly watch?: WatchedStream } = {},
  ): NodeHeartbeat | undefined {
    const candidates = nodes.filter(
      (node) =>
        Placement.eligible(node) &&
        options.exclude?.has(node.id) !== true &&
        this.load(node, kind).free > 0,
    );
    if (candidates.length === 0) return undefined;
    const watch = options.watch;
    if (kind === 'viewer' && watch !== undefined) {
      const ingesting = candidates.find(
        (node) =>
          node.id === watch.node ||
          node.streams.some((s) => s.tenant === watch.tenant && s.stream === watch.stream),
      );
      if (ingesting !== undefined) return this.#reserve(ingesting, kind);
    }
    let best: NodeHeartbeat[] = [];
    let bestFree = -1;
    let bestUsed = Number.POSITIVE_INFINITY;
    for (const node of candidates) {
      const load = this.load(node, kind);
      const used = load.used + load.reserved;
      if (load.free > bestFree || (load.free === bestFree && used < bestUsed)) {
        best = [node];
        bestFree = load.free;
        bestUsed = used;
      } else if (load.free === bestFree && used === bestUsed) best.push(node);
    }
    const index = Math.min(best.length - 1, Math.floor(this.#random() * best.length));
    const chosen = best[index];
    return chosen === undefined ? undefined : this.#reserve(chosen, kind);
  }

  /** Gives back a slot {@link choose} reserved (the node refused or failed the offer). */
  release(node: NodeHeartbeat, kind: PlacementKind): void {
    const reservation = this.#current(node);
    if (reservation === undefined) return;
    if (kind === 'session') reservation.sessions = Math.max(0, reservation.sessions - 1);
    else reservation.viewers = Math.max(0, reservation.viewers - 1);
  }

  /** Forgets nodes no longer listed (bounded state: one entry per live node). */
  prune(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const id of this.#reservations.keys()) if (!keep.has(id)) this.#reservations.delete(id);
  }

  /** The reservations made against `node`'s current heartbeat (older ones are dropped). */
  #current(node: NodeHeartbeat): Reservation | undefined {
    const reservation = this.#reservations.get(node.id);
    if (reservation === undefined) return undefined;
    if (reservation.at === node.at) return reservation;
    this.#reservations.delete(node.id);
    return undefined;
  }

  #reserve(node: NodeHeartbeat, kind: PlacementKind): NodeHeartbeat {
    let reservation = this.#current(node);
    if (reservation === undefined) {
      reservation = { at: node.at, sessions: 0, viewers: 0 };
      this.#reservations.set(node.id, reservation);
    }
    if (kind === 'session') reservation.sessions++;
    else reservation.viewers++;
    return node;
  }
}
