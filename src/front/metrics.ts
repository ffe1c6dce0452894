import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Upper bounds of the forward latency histogram, in seconds (an offer's answer includes ICE gathering). */
const FORWARD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Why a forward failed: the node was not there, did not answer in time, or answered garbage. */
export type ForwardFailure = 'no_responders' | 'timeout' | 'invalid_reply' | 'error';

/**
 * A front's Prometheus metrics (`GET /metrics`), in a registry of its own (never prom-client's
 * global one: a front and nodes in one process must not mix their numbers).
 */
export class FrontMetrics {
  readonly registry = new Registry();
  readonly #placements: Counter<'node' | 'kind'>;
  readonly #refusals: Counter<'kind'>;
  readonly #failures: Counter<'node' | 'reason'>;
  readonly #timeouts: Counter;
  readonly #latency: Histogram<'method'>;

  /** `nodes`: the fresh nodes the directory holds, read when scraped. */
  constructor(nodes: () => number) {
    const registers = [this.registry];
    new Gauge({
      name: 'pointstream_front_nodes',
      help: 'Nodes with a fresh heartbeat.',
      registers,
      collect() {
        this.set(nodes());
      },
    });
    this.#placements = new Counter({
      name: 'pointstream_front_placements_total',
      help: 'Offers a node answered with success, by node and kind (session, viewer).',
      labelNames: ['node', 'kind'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'pointstream_front_refusals_total',
      help: 'Offers refused with 503 PS_ERR_SERVER_FULL: no node had room or answered.',
      labelNames: ['kind'],
      registers,
    });
    this.#failures = new Counter({
      name: 'pointstream_front_forward_failures_total',
      help: 'Forwarded requests a node did not answer usably (no_responders, timeout, invalid_reply, error).',
      labelNames: ['node', 'reason'],
      registers,
    });
    this.#timeouts = new Counter({
      name: 'pointstream_front_forward_timeouts_total',
      help: 'Forwarded requests a node did not answer within the forward timeout.',
      registers,
    });
    this.#latency = new Histogram({
      name: 'pointstream_front_forward_seconds',
      help: "From a forwarded request to its node's reply.",
      labelNames: ['method'],
      buckets: FORWARD_BUCKETS,
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  placed(node: string, kind: string): void {
    this.#placements.inc({ node, kind });
  }

  refused(kind: string): void {
    this.#refusals.inc({ kind });
  }

  failed(node: string, reason: ForwardFailure): void {
    this.#failures.inc({ node, reason });
    if (reason === 'timeout') this.#timeouts.inc();
  }

  answered(method: string, seconds: number): void {
    this.#latency.observe({ method }, seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
