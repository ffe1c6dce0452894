/** The node directory (ps_nodes heartbeats) against a real nats-server. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { NodeDirectory, openNodesBucket } from '../src/cluster/directory.js';
import { encodeClusterMessage } from '../src/cluster/protocol.js';
import type { NodeHeartbeat } from '../src/cluster/protocol.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();

function heartbeat(id: string, fields: Partial<NodeHeartbeat> = {}): NodeHeartbeat {
  return {
    v: 1,
    id,
    version: '0.0.0',
    startedAt: Date.now(),
    at: Date.now(),
    sessions: 0,
    maxSessions: 4,
    viewers: 0,
    maxViewers: 4,
    ingressBytesPerSec: 0,
    cpu: 0,
    loopLagMs: 0,
    busHealthy: true,
    draining: false,
    streams: [],
    ...fields,
  };
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

void describe('node directory (real nats-server)', { skip, timeout: 60_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.close();
  });

  void it('lists fresh heartbeats, ages them out, and ignores invalid ones', async () => {
    const kv = await openNodesBucket(nc);
    await kv.put('A', encodeClusterMessage(heartbeat('A', { sessions: 1 })));
    const directory = await NodeDirectory.open(nc, { ttlMs: 1_500 });
    try {
      assert.deepEqual(
        directory.nodes().map((entry) => entry.heartbeat.id),
        ['A'],
      );
      await kv.put(
        'B',
        encodeClusterMessage(
          heartbeat('B', { streams: [{ tenant: 'public', stream: 'lidar', session: 'B.x' }] }),
        ),
      );
      await waitFor(() => directory.node('B') !== undefined, 5_000, 'B');
      assert.equal(directory.nodeOfStream('public', 'lidar')?.heartbeat.id, 'B');
      assert.equal(directory.nodeOfStream('other', 'lidar'), undefined);
      await kv.put('C', new TextEncoder().encode('{"v":1,"id":"C"}'));
      await kv.put('D', encodeClusterMessage(heartbeat('E')));
      await waitFor(() => directory.invalidHeartbeats === 2, 5_000, 'two invalid heartbeats');
      assert.equal(directory.node('C'), undefined);
      directory.forget('B');
      assert.equal(directory.node('B'), undefined);
      // No more heartbeats: both age out within the TTL.
      await waitFor(() => directory.nodes().length === 0, 5_000, 'entries aged out');
      await kv.put('A', encodeClusterMessage(heartbeat('A')));
      await waitFor(() => directory.node('A') !== undefined, 5_000, 'A back');
      await kv.delete('A');
      await waitFor(() => directory.node('A') === undefined, 5_000, 'A deleted');
    } finally {
      directory.close();
    }
  });
});
