/**
 * Viewers across nodes (docs/bus.md, "Viewer previews"): a real nats-server, two nodes (createServer
 * with a bus, WebRTC on 127.0.0.1, each its own UDP port range), a Node client streaming to node C
 * and a node-datachannel viewer on node A. Offers go to each node's own HTTP (no front).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import type { PointstreamClient, PointstreamServer } from '../src/index.js';
import { WANT_LEASE_MS, previewSubject } from '../src/cluster/protocol.js';
import { decodePoints } from '../src/wire/encodings/index.js';
import { encodeViewerStart } from '../src/wire/viewer.js';
import type { ViewerFrame } from '../src/wire/viewer.js';
import { waitFor } from './helpers.js';
import { NodeViewer, startTwoNodes, teardownList } from './support/cluster-viewer.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();
const STREAM = 'lidar';
const TENANT = 'public';
/** 120,000 points, budget 60,000: every preview is decimated with stride 2, in 2 DATA messages. */
const SOURCE_POINTS = 120_000;
const MAX_POINTS = 60_000;

/** x = i, y = -i / 2, z = (i % 100) / 10: each point says which it is. */
function rampPoints(count: number): Float32Array {
  const points = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    points[i * 3] = i;
    points[i * 3 + 1] = -i / 2;
    points[i * 3 + 2] = (i % 100) / 10;
  }
  return points;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks a preview's points against the ramp sent: point k is source point 2k, within q16 steps. */
function assertRampPreview(frame: ViewerFrame): void {
  assert.equal(frame.pointCount, MAX_POINTS);
  assert.equal(frame.sourcePointCount, SOURCE_POINTS);
  const floats = decodePoints(frame.payload, frame.encoding, frame.pointCount);
  // One q16 step per axis (range / 65535), plus float32 rounding.
  const step = [SOURCE_POINTS / 65535, SOURCE_POINTS / 2 / 65535, 9.9 / 65535];
  for (let k = 0; k < frame.pointCount; k++) {
    const i = 2 * k;
    const expected = [i, -i / 2, (i % 100) / 10];
    for (let a = 0; a < 3; a++) {
      const error = Math.abs((floats[3 * k + a] as number) - (expected[a] as number));
      if (error > (step[a] as number) * 0.51 + 1e-3)
        assert.fail(`point ${k} axis ${a}: ${floats[3 * k + a]} for ${expected[a]}`);
    }
  }
}

void describe(
  'viewers across nodes (real nats-server, 2 nodes)',
  { skip, timeout: 150_000 },
  () => {
    let watcher: NatsConnection;
    let nodeA: PointstreamServer;
    let nodeC: PointstreamServer;
    let client: PointstreamClient;
    /** Preview messages seen on `ps.preview.>`, with when each arrived. */
    const previews: number[] = [];
    // Torn down in reverse order of start: the bus goes last.
    const teardowns: (() => unknown)[] = [];

    before(async () => {
      ({
        nc: watcher,
        nodeA,
        nodeC,
        client,
      } = await startTwoNodes(teardowns, {
        server: { viewer: { maxPoints: MAX_POINTS, maxFps: 20 } },
        portsC: [47310, 47389],
        portsA: [47410, 47489],
        stream: STREAM,
        tenant: TENANT,
        onBus: (nc) =>
          nc.subscribe('ps.preview.>', { callback: () => void previews.push(performance.now()) }),
      }));
    });
    after(async () => {
      for (const teardown of teardowns.reverse()) await teardown();
    });

    const points = rampPoints(SOURCE_POINTS);
    const sendFrames = async (count: number, gapMs = 50): Promise<void> => {
      for (let i = 0; i < count; i++) {
        assert.equal((await (await client.send(points)).receipt).ok, true);
        await sleep(gapMs);
      }
    };

    void it('publishes no preview while nobody watches', async () => {
      await sendFrames(8, 100);
      await sleep(300);
      assert.equal(previews.length, 0, 'preview messages with no viewer anywhere');
      assert.equal(nodeC.stats().viewerPreviews?.previewsPublished, 0);
      assert.equal(nodeC.stats().viewerPreviews?.streamsWanted, 0);
    });

    void it('a viewer on node A gets previews of the stream node C ingests, checked point by point; invalid preview messages are dropped and counted; previews stop within the lease after it leaves', async (t) => {
      const viewer = new NodeViewer();
      try {
        const response = await viewer.offer(nodeA.url, STREAM);
        assert.equal(response.status, 200, await response.clone().text());
        const answer = (await response.json()) as Record<string, unknown>;
        assert.equal(answer.stream, STREAM);
        assert.equal(answer.node, 'C');
        assert.equal(answer.session, client.sessionId);
        assert.match(viewer.location ?? '', /^\/viewer\/peers\//);
        await waitFor(() => viewer.controls.some((c) => c.type === 'hello'), 10_000, 'hello');
        const hello = viewer.controls.find((c) => c.type === 'hello');
        assert.deepEqual(
          { ...hello, viewer: undefined },
          {
            type: 'hello',
            viewer: undefined,
            stream: STREAM,
            session: client.sessionId,
            node: 'C',
            maxPoints: MAX_POINTS,
            maxFps: 20,
            // No frame yet: no fields known.
            fields: [],
          },
        );

        // Node C hears node A's wants, then publishes each frame's preview.
        await waitFor(
          () => (nodeC.stats().viewerPreviews?.streamsWanted ?? 0) === 1,
          5_000,
          'node C to see the want',
        );
        const sent = 12;
        await sendFrames(sent);
        await waitFor(
          () => viewer.frames.length >= 3,
          10_000,
          () => `3 previews, got ${viewer.frames.length}`,
        );
        for (const frame of viewer.frames) assertRampPreview(frame);
        const c = nodeC.stats().viewerPreviews;
        assert.ok(c !== undefined);
        // One preview per frame at most (whoever watches), each a START and 2 DATA messages.
        assert.ok(
          c.previewsPublished >= 3 && c.previewsPublished <= sent,
          `${c.previewsPublished}`,
        );
        assert.equal(c.previewMessagesPublished, 3 * c.previewsPublished);
        assert.ok(c.wantsSeen >= 1);
        const a = nodeA.stats().viewerPreviews;
        assert.equal(a?.streamsWatched, 1);
        assert.ok((a?.previewsReceived ?? 0) >= viewer.frames.length);
        assert.equal(a?.previewMessagesInvalid, 0);
        assert.deepEqual(
          nodeA.stats().viewers.map((v) => [v.stream, v.state]),
          [[STREAM, 'open']],
        );

        // Messages on the preview subject are client input: junk, and a START claiming more points
        // than the budget, are dropped and counted; the viewer goes on.
        const subject = previewSubject(TENANT, STREAM);
        watcher.publish(subject, new Uint8Array([1, 2, 3, 4, 5]));
        watcher.publish(
          subject,
          encodeViewerStart(
            {
              seq: 7,
              pointCount: 10_000_000,
              sourcePointCount: 10_000_000,
              captureTime: undefined,
              encoding: 2,
              payload: new Uint8Array(0),
            },
            0,
          ),
        );
        await watcher.flush();
        await waitFor(
          () => (nodeA.stats().viewerPreviews?.previewMessagesInvalid ?? 0) >= 2,
          5_000,
          'the invalid preview messages counted',
        );
        const before = viewer.frames.length;
        await sendFrames(6);
        await waitFor(
          () => viewer.frames.length > before,
          10_000,
          'previews after the invalid ones',
        );
        assertRampPreview(viewer.frames.at(-1) as ViewerFrame);
        assert.equal(viewer.closed, false);

        // The viewer leaves: node A stops wanting; node C publishes nothing once the lease is over,
        // though frames keep coming.
        const stopped = await fetch(`${nodeA.url}${viewer.location}`, { method: 'DELETE' });
        assert.equal(stopped.status, 200);
        const leftAt = performance.now();
        await waitFor(() => viewer.closed, 10_000, 'the viewer closed');
        assert.equal(nodeA.stats().viewerPreviews?.streamsWatched, 0);
        const until = leftAt + WANT_LEASE_MS + 1_500;
        while (performance.now() < until) await sendFrames(1, 100);
        const last = previews.at(-1) ?? 0;
        t.diagnostic(`last preview message ${Math.round(last - leftAt)} ms after the viewer left`);
        assert.ok(
          last - leftAt <= WANT_LEASE_MS,
          `a preview ${Math.round(last - leftAt)} ms after the viewer left`,
        );
        assert.equal(nodeC.stats().viewerPreviews?.streamsWanted, 0);
      } finally {
        viewer.close();
      }
    });

    void it('refuses a viewer of a stream no node ingests (404), and one of a bad name (400)', async () => {
      const viewer = new NodeViewer();
      try {
        assert.equal((await viewer.offer(nodeA.url, 'no-such-stream')).status, 404);
        assert.equal((await viewer.offer(nodeA.url, 'bad name')).status, 400);
      } finally {
        viewer.close();
      }
    });
  },
);

/**
 * Which `@nats-io` modules a server loads, in a child process (the built dist/server/server.js,
 * resolve hooks recording them): none without a bus. (The package's entry loads NATS anyway for
 * `consume`; the server's own module graph must not.)
 */
function natsModulesLoaded(bus: string | undefined): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ps-noload-'));
  try {
    const record = join(dir, 'loaded.txt');
    writeFileSync(record, '');
    const hooks = `export async function resolve(specifier, context, next) {
      if (specifier.includes('@nats-io'))
        (await import('node:fs')).appendFileSync(${JSON.stringify(record)}, specifier + '\\n');
      return next(specifier, context);
    }`;
    const dist = new URL('../dist/server/server.js', import.meta.url).href;
    const script = join(dir, 'start.mjs');
    writeFileSync(
      script,
      `import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
      const { createServer } = await import(${JSON.stringify(dist)});
      const bus = ${JSON.stringify(bus)};
      const server = await createServer({
        host: '127.0.0.1', port: 0, rtc: { bindAddress: '127.0.0.1' },
        ...(bus == null ? {} : { bus: { url: bus, nodeId: 'probe' } }),
      });
      await server.close();`,
    );
    execFileSync(process.execPath, [script], { timeout: 30_000, stdio: 'pipe' });
    return readFileSync(record, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test(
  'without a bus a server loads no NATS module (with one it does)',
  { skip, timeout: 60_000 },
  async () => {
    assert.ok(
      existsSync(fileURLToPath(new URL('../dist/server/server.js', import.meta.url))),
      'dist/ is not built: run "npm run build" first',
    );
    assert.deepEqual(natsModulesLoaded(undefined), []);
    const nats = await NatsServer.start();
    try {
      assert.ok(natsModulesLoaded(nats.url).length > 0, 'the probe saw no NATS module with a bus');
    } finally {
      await nats.close();
    }
  },
);

/** The tenant of a token on the bus: `t` and the first 8 hex digits of its SHA-256 digest. */
function tenantOfToken(token: string): string {
  return `t${createHash('sha256').update(token).digest('hex').slice(0, 8)}`;
}

void test(
  "auth across nodes: a token watches its own stream on another node; another token's is 404, and so are PATCH/DELETE of its viewer",
  { skip, timeout: 90_000 },
  async (t) => {
    const TOKEN_A = 'cluster-viewer-token-aaaaaaaa';
    const TOKEN_B = 'cluster-viewer-token-bbbbbbbb';
    const teardowns = teardownList(t);
    const { nodeA, client } = await startTwoNodes(teardowns, {
      server: { tokens: [TOKEN_A, TOKEN_B], viewer: { maxPoints: 1000, maxFps: 50 } },
      portsC: [47710, 47789],
      portsA: [47810, 47889],
      stream: STREAM,
      token: TOKEN_A,
      tenant: tenantOfToken(TOKEN_A),
    });

    const stranger = new NodeViewer();
    teardowns.push(() => stranger.close());
    assert.equal((await stranger.offer(nodeA.url, STREAM, TOKEN_B)).status, 404);
    assert.equal((await stranger.offer(nodeA.url, STREAM)).status, 401);

    const owner = new NodeViewer();
    teardowns.push(() => owner.close());
    const response = await owner.offer(nodeA.url, STREAM, TOKEN_A);
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(((await response.json()) as { node?: string }).node, 'C');
    const small = rampPoints(1000);
    for (let i = 0; owner.frames.length === 0 && i < 100; i++) {
      assert.equal((await (await client.send(small)).receipt).ok, true);
      await sleep(50);
    }
    assert.ok(owner.frames.length > 0, 'a preview for the owner');
    // Its viewer is another token's business: not listed for it, not found for PATCH or DELETE.
    const statsOf = async (token: string): Promise<{ viewers: { stream: string }[] }> =>
      (
        await fetch(`${nodeA.url}/stats`, { headers: { authorization: `Bearer ${token}` } })
      ).json() as Promise<{
        viewers: { stream: string }[];
      }>;
    assert.deepEqual(
      (await statsOf(TOKEN_A)).viewers.map((v) => v.stream),
      [STREAM],
    );
    assert.deepEqual((await statsOf(TOKEN_B)).viewers, []);
    const foreign = await fetch(`${nodeA.url}${owner.location}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN_B}` },
    });
    assert.equal(foreign.status, 404);
    assert.equal(owner.closed, false);
    const own = await fetch(`${nodeA.url}${owner.location}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN_A}` },
    });
    assert.equal(own.status, 200);
    await waitFor(() => owner.closed, 10_000, 'the viewer closed');
  },
);
