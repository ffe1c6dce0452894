import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { ServerStats } from './types.js';

/** Upper bounds of the frame latency histogram, in seconds (the README's target is p99 <= 150 ms). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5];

/**
 * The server's Prometheus metrics (`GET /metrics`), in a registry of its own (never prom-client's
 * global one: two servers in one process must not mix their numbers).
 *
 * Totals, sessions, memory and the recorder are read from {@link ServerStats} when scraped, so
 * they are the numbers `/stats` reports and cost ingest nothing. Per frame there is one histogram
 * observation (latency) and, per rejected frame, one labelled increment.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #latency: Histogram;
  readonly #rejected: Counter<'code'>;
  readonly #eventLoop: IntervalHistogram;
  readonly #stats: () => ServerStats;
  /** One `stats()` per scrape, shared by every metric's collect. */
  #snapshot: ServerStats | undefined;

  /** `bus`: the server publishes to a bus (its metrics are left out otherwise). */
  constructor(stats: () => ServerStats, bus = false) {
    const registers = [this.registry];
    this.#stats = stats;
    const snapshot = (): ServerStats => this.#snapshot ?? stats();
    const total = (name: string, help: string, value: (stats: ServerStats) => number): Counter => {
      const counter: Counter = new Counter({
        name,
        help,
        registers,
        collect() {
          counter.reset();
          counter.inc(value(snapshot()));
        },
      });
      return counter;
    };
    const gauge = (name: string, help: string, value: (stats: ServerStats) => number): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(snapshot()));
        },
      });

    gauge('pointstream_sessions', 'Live sessions.', (s) => s.sessions.length);
    total('pointstream_sessions_opened_total', 'Sessions opened.', (s) => s.totals.sessionsOpened);
    total('pointstream_sessions_closed_total', 'Sessions ended.', (s) => s.totals.sessionsClosed);
    total(
      'pointstream_frames_received_total',
      'Frames received and verified.',
      (s) => s.totals.framesReceived,
    );
    total(
      'pointstream_bytes_received_total',
      'Payload bytes of verified frames.',
      (s) => s.totals.bytesReceived,
    );
    total(
      'pointstream_points_received_total',
      'Points in verified frames.',
      (s) => s.totals.pointsReceived,
    );
    this.#rejected = new Counter({
      name: 'pointstream_frames_rejected_total',
      help: 'Frames rejected, by error code (docs/errors.md).',
      labelNames: ['code'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'pointstream_frame_latency_seconds',
      help: "From the client's capture time to the frame's verification (frames that carry a capture time).",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    gauge(
      'pointstream_reassembly_bytes',
      'Bytes held by frames in reassembly (all sessions).',
      (s) => s.reassemblyBytes,
    );
    total(
      'pointstream_decode_frames_over_budget_total',
      'Encoded frames refused PS_ERR_DECODE_BUDGET (a session over its decode time or queue).',
      (s) => s.decode.framesOverBudget,
    );
    total(
      'pointstream_decode_sessions_closed_total',
      'Sessions closed for repeatedly exceeding their decode budget.',
      (s) => s.decode.sessionsClosedOverBudget,
    );
    total(
      'pointstream_decode_seconds_total',
      'Worker time spent decoding encoded frames.',
      (s) => s.decode.decodeMs / 1e3,
    );
    gauge(
      'pointstream_decode_queued',
      'Encoded frames waiting for a decode worker or being decoded.',
      (s) => s.decode.queued,
    );
    gauge('pointstream_viewers', 'Live browser viewers.', (s) => s.viewers.length);
    gauge('pointstream_draining', 'Whether the node is draining (cluster): 1 or 0.', (s) =>
      s.cluster?.draining === true ? 1 : 0,
    );
    gauge(
      'pointstream_recorder_queued_bytes',
      'Bytes of frames waiting for the disk (0 without --record).',
      (s) => s.recording?.queuedBytes ?? 0,
    );
    total(
      'pointstream_recorder_frames_recorded_total',
      'Frames written to disk.',
      (s) => s.recording?.framesRecorded ?? 0,
    );
    total(
      'pointstream_recorder_frames_not_recorded_total',
      'Frames the recorder could not write (queue full, disk full, no permission...).',
      (s) => s.recording?.framesNotRecorded ?? 0,
    );
    total(
      'pointstream_recorder_bytes_written_total',
      'Bytes written to disk by the recorder.',
      (s) => s.recording?.bytesWritten ?? 0,
    );
    if (bus) {
      gauge('pointstream_bus_connected', 'Whether the bus (NATS) is connected: 1 or 0.', (s) =>
        s.bus?.connected === true ? 1 : 0,
      );
      total(
        'pointstream_bus_frames_published_total',
        'Frames the bus acknowledged (every chunk).',
        (s) => s.bus?.framesPublished ?? 0,
      );
      total(
        'pointstream_bus_frames_failed_total',
        'Frames the bus did not confirm (receipts PS_ERR_BUS_UNAVAILABLE).',
        (s) => s.bus?.framesFailed ?? 0,
      );
      total(
        'pointstream_bus_bytes_published_total',
        'Payload bytes of frames the bus acknowledged.',
        (s) => s.bus?.bytesPublished ?? 0,
      );
      gauge(
        'pointstream_bus_pending_acks',
        'Chunks sent to the bus and not yet acknowledged.',
        (s) => s.bus?.pendingAcks ?? 0,
      );
    }
    // The process: the standard names, so that ready-made dashboards fit.
    total(
      'process_cpu_seconds_total',
      'User and system CPU time of the process, in seconds.',
      () => {
        const cpu = process.cpuUsage();
        return (cpu.user + cpu.system) / 1e6;
      },
    );
    gauge(
      'process_resident_memory_bytes',
      'Resident memory of the process.',
      (s) => s.memory.rssBytes,
    );
    gauge('nodejs_heap_used_bytes', 'V8 heap in use.', (s) => s.memory.heapUsedBytes);
    this.#eventLoop = monitorEventLoopDelay({ resolution: 10 });
    this.#eventLoop.enable();
    const eventLoop = this.#eventLoop;
    const lag = (name: string, help: string, value: () => number): Gauge =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(Number.isFinite(value()) ? value() / 1e9 : 0);
        },
      });
    lag(
      'nodejs_eventloop_lag_p99_seconds',
      'Event loop delay, 99th percentile since the previous scrape.',
      () => eventLoop.percentile(99),
    );
    lag(
      'nodejs_eventloop_lag_max_seconds',
      'Largest event loop delay since the previous scrape.',
      () => eventLoop.max,
    );
  }

  /** A verified frame (hot path: one histogram observation when it carries a capture time). */
  frame(captureTime: number | undefined, receivedAt: number): void {
    if (captureTime !== undefined)
      this.#latency.observe(Math.max(0, receivedAt - captureTime) / 1e3);
  }

  rejected(code: ErrorCode): void {
    this.#rejected.inc({ code });
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    this.#snapshot = this.#stats();
    try {
      return await this.registry.metrics();
    } finally {
      this.#snapshot = undefined;
      // The event loop figures cover the time since the previous scrape.
      this.#eventLoop.reset();
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops the event loop monitor. */
  close(): void {
    this.#eventLoop.disable();
  }
}
