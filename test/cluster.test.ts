/**
 * Issue 17's acceptance, on one machine: a real nats-server, three ingest nodes
 * (`pointstream serve --bus`, each with its own UDP port range) and a front
 * (`pointstream front`), all on 127.0.0.1; clients are `pointstream send` processes through the
 * front, and one `consume()` reads every frame the nodes published.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { consume } from '../src/bus/consumer.js';
import type { Consumer } from '../src/bus/consumer.js';
import { TestCluster, nodeOfSession, summaryOf } from './support/cluster.js';
import type { CliProcess } from './support/cluster.js';
import { natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface SeenFrame {
  readonly seq: number;
  readonly session: string;
  readonly node: string;
  readonly receivedAt: number;
}

/** Every frame on the bus, per stream, as one durable consumer reads them. */
class Collector {
  readonly frames = new Map<string, SeenFrame[]>();
  readonly consumer: Consumer;
  readonly #done: Promise<void>;

  constructor(bus: string) {
    this.consumer = consume({ bus, durable: `acceptance-${randomBytes(4).toString('hex')}` });
    this.#done = (async () => {
      for await (const frame of this.consumer) {
        let list = this.frames.get(frame.stream);
        if (list === undefined) this.frames.set(frame.stream, (list = []));
        list.push({
          seq: frame.seq,
          session: frame.session,
          node: frame.node,
          receivedAt: frame.receivedAt,
        });
      }
    })();
  }

  get count(): number {
    let count = 0;
    for (const list of this.frames.values()) count += list.length;
    return count;
  }

  of(stream: string): SeenFrame[] {
    return this.frames.get(stream) ?? [];
  }

  /** Waits until the consumer has delivered `count` frames, or until it is quiet for 3 s. */
  async settle(count: number, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = -1;
    let quietSince = Date.now();
    while (this.count < count && Date.now() < until) {
      if (this.count !== last) {
        last = this.count;
        quietSince = Date.now();
      } else if (Date.now() - quietSince > 3_000 && count === Infinity) return;
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    await this.consumer.close();
    await this.#done;
  }
}

/** Asserts a stream's frames at the consumer: each seq once, in order. */
function assertOnceInOrder(frames: readonly SeenFrame[], stream: string): void {
  for (let i = 1; i < frames.length; i++)
    assert.ok(
      (frames[i] as SeenFrame).seq > (frames[i - 1] as SeenFrame).seq,
      `${stream}: frame ${(frames[i] as SeenFrame).seq} after ${(frames[i - 1] as SeenFrame).seq}`,
    );
}

async function exitOf(client: CliProcess): Promise<number | null> {
  return client.exited;
}

function summaries(clients: readonly CliProcess[]): Record<string, unknown>[] {
  return clients.map((client) => summaryOf(client));
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const NODES = [{ id: 'A' }, { id: 'B' }, { id: 'C' }];
const ENCODINGS = ['raw', 'q16', 'qrice', 'raw', 'q16', 'qrice'];
/** Small frames at 10 Hz: six clients and three nodes fit two shared cores. */
const FRAME = ['--points', '20000', '--rate', '10'];

void describe('cluster: 3 nodes and a front (real nats-server)', { skip, timeout: 240_000 }, () => {
  void it('places 6 clients 2 per node; every acknowledged frame reaches one consumer once, intact', async () => {
    const cluster = await TestCluster.start({ nodes: NODES });
    const collector = new Collector(cluster.nats.url);
    try {
      const clients = ENCODINGS.map((encoding, i) =>
        cluster.send(`cam-${i}`, [...FRAME, '--frames', '100', '--encoding', encoding]),
      );
      const codes = await Promise.all(clients.map(exitOf));
      const results = summaries(clients);
      assert.deepEqual(codes, [0, 0, 0, 0, 0, 0], clients.map((c) => c.output).join('\n'));
      const perNode = new Map<string, number>();
      for (const result of results) {
        assert.equal(result.framesAcked, 100);
        const node = nodeOfSession(result.session as string);
        perNode.set(node, (perNode.get(node) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries([...perNode].sort()), { A: 2, B: 2, C: 2 });
      await collector.settle(600);
      results.forEach((result, i) => {
        const stream = `cam-${i}`;
        const frames = collector.of(stream);
        assert.deepEqual(
          frames.map((frame) => frame.seq),
          Array.from({ length: 100 }, (_, seq) => seq),
          `${stream} at the consumer`,
        );
        for (const frame of frames) {
          assert.equal(frame.session, result.session);
          assert.equal(frame.node, nodeOfSession(result.session as string));
        }
      });
      const stats = collector.consumer.stats();
      assert.equal(stats.messagesInvalid, 0);
      assert.equal(stats.framesIncomplete, 0);
      assert.equal(stats.framesMissed, 0);
    } finally {
      await collector.close();
      await cluster.close();
    }
  });

  void it('SIGKILL of a node: its clients stream again on another node within the target; the others lose nothing', async (t) => {
    const cluster = await TestCluster.start({ nodes: NODES });
    const collector = new Collector(cluster.nats.url);
    try {
      const clients = ENCODINGS.map((encoding, i) =>
        cluster.send(`cam-${i}`, [...FRAME, '--duration', '15', '--encoding', encoding]),
      );
      // Every client placed and streaming (the commands take a few seconds to start here).
      await cluster.waitForSessions(6);
      await sleep(1_500);
      const killedAt = Date.now();
      cluster.node('B').kill('SIGKILL');
      const codes = await Promise.all(clients.map(exitOf));
      const results = summaries(clients);
      // A run that lost frames exits 1 (FRAMES_NOT_ACKED); the others exit 0.
      results.forEach((result, i) =>
        assert.equal(
          codes[i],
          result.framesAcked === result.framesPlanned ? 0 : 1,
          clients[i]?.output,
        ),
      );
      await collector.settle(Infinity);
      const recoveries: number[] = [];
      results.forEach((result, i) => {
        const stream = `cam-${i}`;
        const sessions = result.sessions as string[];
        const frames = collector.of(stream);
        assertOnceInOrder(frames, stream);
        const planned = result.framesPlanned as number;
        const acked = result.framesAcked as number;
        const lost = result.framesLost as number;
        assert.equal(
          acked +
            (result.framesRejected as number) +
            lost +
            (result.framesSkipped as number) +
            (result.framesNotSent as number),
          planned,
          `${stream}: every planned frame accounted for`,
        );
        // Every acknowledged frame is at the consumer; beyond them only frames the client
        // counts lost (published, their receipt cut off).
        assert.ok(
          frames.length >= acked,
          `${stream}: ${frames.length} frames at the consumer, ${acked} acknowledged`,
        );
        assert.ok(
          frames.length <= acked + lost,
          `${stream}: ${frames.length} at the consumer > acked + lost`,
        );
        if (nodeOfSession(sessions[0] as string) !== 'B') {
          assert.equal(sessions.length, 1, `${stream} did not move`);
          assert.equal(acked, planned, `${stream} lost nothing`);
          return;
        }
        assert.ok((result.reconnects as number) >= 1, `${stream} reconnected`);
        const last = sessions[sessions.length - 1] as string;
        assert.notEqual(nodeOfSession(last), 'B', `${stream} moved off B`);
        assert.ok(lost <= 2, `${stream}: ${lost} lost > the 2 frames in flight`);
        const firstOnNew = frames.find((frame) => frame.session === last);
        assert.ok(firstOnNew !== undefined, `${stream}: frames from its new session`);
        recoveries.push(firstOnNew.receivedAt - killedAt);
      });
      t.diagnostic(
        `kill to first frame on the new node: ${recoveries.map(Math.round).join(', ')} ms`,
      );
      assert.equal(recoveries.length, 2, 'two clients were on B');
      assert.ok(Math.max(...recoveries) <= 12_000, `recoveries ${recoveries.join(', ')} ms`);
      assert.ok(median(recoveries) <= 5_000, `median recovery ${median(recoveries)} ms`);
      assert.equal(collector.consumer.stats().messagesInvalid, 0);
    } finally {
      await collector.close();
      await cluster.close();
    }
  });

  void it('SIGTERM drains a node: 0 frames lost, gaps under 1 s, no new placements on it', async (t) => {
    const cluster = await TestCluster.start({ nodes: NODES });
    const collector = new Collector(cluster.nats.url);
    try {
      const clients = ENCODINGS.map((encoding, i) =>
        cluster.send(`cam-${i}`, [...FRAME, '--duration', '12', '--encoding', encoding]),
      );
      await cluster.waitForSessions(6);
      await sleep(1_500);
      const node = cluster.node('C');
      node.kill('SIGTERM');
      await sleep(300);
      const late = cluster.send('late', [...FRAME, '--frames', '20']);
      const all = [...clients, late];
      const codes = await Promise.all(all.map(exitOf));
      assert.deepEqual(
        codes,
        all.map(() => 0),
        all.map((c) => c.output).join('\n'),
      );
      assert.equal(await node.exited, 0, node.output);
      const results = summaries(all);
      assert.notEqual(nodeOfSession(summaryOf(late).session as string), 'C');
      await collector.settle(Infinity);
      let moved = 0;
      results.forEach((result, i) => {
        const stream = i < clients.length ? `cam-${i}` : 'late';
        assert.equal(
          result.framesAcked,
          result.framesPlanned,
          `${stream}: every frame acknowledged`,
        );
        const frames = collector.of(stream);
        assert.deepEqual(
          frames.map((frame) => frame.seq),
          Array.from({ length: result.framesPlanned as number }, (_, seq) => seq),
          `${stream} at the consumer`,
        );
        const sessions = result.sessions as string[];
        if (nodeOfSession(sessions[0] as string) !== 'C') return;
        moved++;
        assert.equal(sessions.length, 2, `${stream} moved once`);
        assert.notEqual(nodeOfSession(sessions[1] as string), 'C');
        let gap = 0;
        for (let k = 1; k < frames.length; k++)
          gap = Math.max(
            gap,
            (frames[k] as SeenFrame).receivedAt - (frames[k - 1] as SeenFrame).receivedAt,
          );
        t.diagnostic(`${stream} moved off C: largest gap between its frames ${Math.round(gap)} ms`);
        assert.ok(gap <= 1_000, `${stream}: largest gap ${gap} ms`);
      });
      assert.equal(
        moved,
        2,
        `two clients were on C: ${results.map((r) => (r.sessions as string[]).join(' > ')).join(', ')}`,
      );
    } finally {
      await collector.close();
      await cluster.close();
    }
  });
});

void describe('cluster placement (real nats-server)', { skip, timeout: 240_000 }, () => {
  void it('capacities 2/4/4 and 8 clients: none over capacity, spread within 1; all full: 503 and send exits 5', async () => {
    const cluster = await TestCluster.start({
      nodes: [
        { id: 'A', maxSessions: 2 },
        { id: 'B', maxSessions: 4 },
        { id: 'C', maxSessions: 4 },
      ],
    });
    try {
      const clients: CliProcess[] = [];
      const placed = async (count: number): Promise<Map<string, number>> => {
        const until = Date.now() + 20_000;
        for (;;) {
          const stats = await cluster.frontStats();
          const sessions = stats.nodes.reduce((sum, node) => sum + node.sessions, 0);
          if (sessions >= count)
            return new Map(stats.nodes.map((node) => [node.id, node.sessions]));
          if (Date.now() > until) throw new Error(`${sessions} sessions placed, not ${count}`);
          await sleep(100);
        }
      };
      for (let i = 0; i < 8; i++) {
        clients.push(
          cluster.send(`p-${i}`, ['--points', '1000', '--rate', '2', '--duration', '60']),
        );
        await placed(i + 1);
      }
      const spread = await placed(8);
      assert.ok((spread.get('A') ?? 0) <= 2, `A over capacity: ${[...spread].join(' ')}`);
      const counts = [...spread.values()];
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `spread ${[...spread].join(' ')}`);
      for (let i = 8; i < 10; i++) {
        clients.push(
          cluster.send(`p-${i}`, ['--points', '1000', '--rate', '2', '--duration', '60']),
        );
        await placed(i + 1);
      }
      const full = await fetch(`${cluster.front.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: 'v=0\r\n',
      });
      assert.equal(full.status, 503);
      assert.ok(Number(full.headers.get('retry-after')) >= 1);
      const refused = cluster.send('refused', [
        '--points',
        '1000',
        '--frames',
        '2',
        '--max-reconnects',
        '0',
      ]);
      assert.equal(await refused.exited, 5, refused.output);
      for (const client of clients) client.kill('SIGINT');
      // Interrupted runs exit 130 (and print their summary).
      assert.deepEqual(
        await Promise.all(clients.map(exitOf)),
        clients.map(() => 130),
      );
    } finally {
      await cluster.close();
    }
  });
});
