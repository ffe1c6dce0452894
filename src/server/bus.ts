/**
 * The server's side of the bus (`createServer({ bus })`, `serve --bus`): the publisher, connected
 * before the server listens, and each session's confirm step (its frames on the bus before their
 * receipts). Without a bus there is nothing here on the ingest path.
 */
import { tenantOf } from '../bus/layout.js';
import type { BusOptions, BusPublisher } from '../bus/publisher.js';
import type { Logger } from '../util/logger.js';
import type { ConfirmFrame } from './ingest/types.js';

/**
 * Connects to the bus when `options` is set: rejects with `PS_ERR_BUS_UNAVAILABLE` (NATS or
 * JetStream unreachable) or `PS_ERR_BUS_STREAM_MISMATCH` (a stream frames cannot use). The NATS
 * client is loaded only then: a server without a bus never loads it, and `serve` has changed its
 * GC flag before it (runServe): loaded at start-up, V8 aborted ("unreachable code" in 3 GC
 * threads) in 3 of 20 `serve --bus` starts from source; loaded here, in none of 30.
 */
export async function openBus(
  options: BusOptions | undefined,
  log: Logger,
): Promise<BusPublisher | undefined> {
  if (options === undefined) return undefined;
  const { BusPublisher } = await import('../bus/publisher.js');
  return BusPublisher.connect(options, log.child({ component: 'bus' }));
}

/** Who a session is, for its chunks' headers and subject. */
export interface BusSessionOf {
  readonly id: string;
  readonly stream: string;
  /** The id of the session's token (auth on), which names its tenant. */
  readonly token: string | undefined;
  /** When the session started (ms since the Unix epoch): its recording folder's time too. */
  readonly startedAt: number;
}

/** The confirm step of a session's frames, or undefined without a bus. */
export function busConfirm(
  bus: BusPublisher | undefined,
  session: BusSessionOf,
): ConfirmFrame | undefined {
  if (bus === undefined) return undefined;
  const publisher = bus.session({
    session: session.id,
    stream: session.stream,
    tenant: tenantOf(session.token),
    sessionStart: session.startedAt,
  });
  return (frame) => publisher.publish(frame);
}
