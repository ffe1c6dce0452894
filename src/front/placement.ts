/**
 * Where a front places an offer (pure: no sockets; the clock and the random source are injected).
 *
 * Among the nodes the directory holds fresh, those that are bus-healthy, not draining and have a
 * free slot are candidates. A node's free slots are its capacity less what its last heartbeat
 * counted less this front's placements that heartbeat does not count yet. Without those
 * reservations a burst of offers between two heartbeats (1 s) would all land on the node that
 * looked emptiest. A reservation lasts from the choice until the node's heartbeat lists the
 * session it became (heartbeats list every live session), so it is never counted twice nor
 * dropped early: a heartbeat written while the offer was still being answered does not clear it.
 * A session that ended before any heartbeat listed it, and viewers (heartbeats count them but do
 * not list them), are released after {@link SETTLED_MS}, by when two heartbeats were written.
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

/** How long an answered placement stays reserved when no heartbeat lists it (ms). */
export const SETTLED_MS = 2_500;
/** How long a placement waits for its node's answer at most before it is forgotten (ms). */
export const UNANSWERED_MS = 60_000;

interface Reservation {
  readonly node: string;
  readonly kind: PlacementKind;
  /** The session or viewer id the node answered with; undefined while the offer is in flight. */
  peer: string | undefined;
  /** When it was made, and when the node answered (the injected clock). */
  readonly madeAt: number;
  answeredAt: number | undefined;
}

/** Options of {@link Placement}. */
export interface PlacementOptions {
  /** A number in [0, 1), for tie-breaks. (Math.random) */
  readonly random?: () => number;
  /** Milliseconds, monotonic. (performance.now) */
  readonly now?: () => number;
}

/** One front's placement state: its placements that the nodes' heartbeats do not count yet. */
export class Placement {
  readonly #reservations = new Set<Reservation>();
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(options: PlacementOptions = {}) {
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether a node may take anything new at all (bus healthy, not draining). */
  static eligible(node: NodeHeartbeat): boolean {
    return node.busHealthy && !node.draining;
  }

  /** Slots of `kind` on `node`: used (heartbeat), reserved (this front, not counted yet), free. */
  load(node: NodeHeartbeat, kind: PlacementKind): NodeLoad {
    const used = kind === 'session' ? node.sessions : node.viewers;
    const capacity = kind === 'session' ? node.maxSessions : node.maxViewers;
    const reserved = this.#outstanding(node, kind);
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

  /**
   * The node answered the offer {@link choose} placed on it: `peer` is the session or viewer id it
   * made (undefined if the answer did not say), reserved until a heartbeat lists it.
   */
  answered(node: NodeHeartbeat, kind: PlacementKind, peer: string | undefined): void {
    const reservation = this.#pending(node.id, kind);
    if (reservation === undefined) return;
    reservation.peer = peer;
    reservation.answeredAt = this.#now();
  }

  /** Gives back a slot {@link choose} reserved (the node refused or failed the offer). */
  release(node: NodeHeartbeat, kind: PlacementKind): void {
    const reservation = this.#pending(node.id, kind);
    if (reservation !== undefined) this.#reservations.delete(reservation);
  }

  /** Forgets nodes no longer listed (bounded state: reservations of live nodes only). */
  prune(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const reservation of this.#reservations)
      if (!keep.has(reservation.node)) this.#reservations.delete(reservation);
  }

  /** The oldest reservation of `kind` on `node` whose offer is still in flight. */
  #pending(node: string, kind: PlacementKind): Reservation | undefined {
    for (const reservation of this.#reservations)
      if (
        reservation.node === node &&
        reservation.kind === kind &&
        reservation.answeredAt === undefined
      )
        return reservation;
    return undefined;
  }

  /** This front's placements on `node` that its heartbeat does not count yet (settled ones dropped). */
  #outstanding(node: NodeHeartbeat, kind: PlacementKind): number {
    const now = this.#now();
    let count = 0;
    for (const reservation of this.#reservations) {
      if (reservation.node !== node.id) continue;
      const settled =
        reservation.answeredAt === undefined
          ? now - reservation.madeAt > UNANSWERED_MS
          : now - reservation.answeredAt > SETTLED_MS ||
            (reservation.peer !== undefined &&
              node.streams.some((stream) => stream.session === reservation.peer));
      if (settled) this.#reservations.delete(reservation);
      else if (reservation.kind === kind) count++;
    }
    return count;
  }

  #reserve(node: NodeHeartbeat, kind: PlacementKind): NodeHeartbeat {
    this.#reservations.add({
      node: node.id,
      kind,
      peer: undefined,
      madeAt: this.#now(),
      answeredAt: undefined,
    });
    return node;
  }
}
