/**
 * A cluster node (`createServer({ bus })`, `serve --bus`) against a real nats-server and real
 * WebRTC clients: its heartbeat as fronts read it (NodeDirectory), signaling forwarded to it over
 * NATS as a front forwards it (offer, PATCH, DELETE, malformed requests), draining (library and
 * SIGTERM on `serve --bus`) and an unhealthy bus.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { NodeDirectory, openNodesBucket } from '../src/cluster/directory.js';
import { ClusterMember } from '../src/cluster/member.js';
import {
  encodeClusterMessage,
  nodeOfPeerId,
  parseForwardedReply,
  signalSubject,
} from '../src/cluster/protocol.js';
import type { ForwardedReply, ForwardedRequest } from '../src/cluster/protocol.js';
import { ErrorCodes } from '../src/index.js';
import { silentLogger } from '../src/util/logger.js';
import type { ServerOptions, SessionEnd } from '../src/index.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../src/signaling/sdp.js';
import { PROTOCOL_V1 } from '../src/wire/chunk.js';
import { prepareFrame, writeChunk } from '../src/wire/frame.js';
import { CLI, LOOPBACK, RawPeer, startServer, waitFor } from './helpers.js';
import { NodeViewer } from './support/cluster-viewer.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();

/** Each node its own UDP ports (node-to-node tests on one machine). */
let nextPorts = 47_000;
function nodeOptions(nodeId: string, url: string, extra: ServerOptions = {}): ServerOptions {
  const first = (nextPorts += 200);
  return {
    ...extra,
    bus: { url, nodeId },
    rtc: { bindAddress: LOOPBACK, portRange: [first, first + 199] },
  };
}

/** Sends a request over NATS as a front does, and reads the node's reply. */
async function forward(
  nc: NatsConnection,
  nodeId: string,
  request: Omit<ForwardedRequest, 'v' | 'remoteAddress'> & { remoteAddress?: string },
): Promise<ForwardedReply> {
  const message = encodeClusterMessage({ v: 1, remoteAddress: '127.0.0.1', ...request });
  const reply = await nc.request(signalSubject(nodeId), message, { timeout: 15_000 });
  return parseForwardedReply(reply.data);
}

/** A node-datachannel client signaling through NATS (as through a front); waits for the hello. */
async function connectOverNats(
  nc: NatsConnection,
  nodeId: string,
  stream: string,
): Promise<{ peer: RawPeer; id: string; location: string }> {
  const peer = new RawPeer(PROTOCOL_V1);
  await new Promise<void>((resolve) => {
    if (peer.pc.gatheringState() === 'complete') resolve();
    else peer.pc.onGatheringStateChange((state) => state === 'complete' && resolve());
  });
  const sdp = withoutCandidates((peer.pc.localDescription() as { sdp: string }).sdp);
  const answer = await forward(nc, nodeId, {
    method: 'POST',
    url: '/offer',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sdp, type: 'offer', stream }),
  });
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  const json = JSON.parse(answer.body) as { sdp: string; session: string };
  const location = answer.headers.location ?? '';
  assert.equal(location, `/sessions/${json.session}`);
  peer.pc.setRemoteDescription(json.sdp, 'answer');
  const patch = await forward(nc, nodeId, {
    method: 'PATCH',
    url: location,
    headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
    body: toSdpFragment(candidatesOf((peer.pc.localDescription() as { sdp: string }).sdp)),
  });
  assert.equal(patch.status, 204, patch.body);
  await peer.waitForMessage((m) => m.type === 'hello', 10_000);
  return { peer, id: json.session, location };
}

/** Sends frame `seq` (30 000 points) on a raw peer. */
function sendFrame(peer: RawPeer, seq: number): void {
  const points = new Float32Array(30_000 * 3).map((_, i) => Math.sin(i + seq));
  const frame = prepareFrame(points, seq, Date.now(), 65_536, crc32);
  const scratch = Buffer.alloc(65_536);
  for (let i = 0; i < frame.chunkCount; i++) peer.send(Buffer.from(writeChunk(frame, i, scratch)));
}

/** An offer SDP from a fresh peer (for requests that are refused before any answer). */
async function offerSdp(): Promise<string> {
  const peer = new RawPeer(PROTOCOL_V1);
  try {
    await new Promise<void>((resolve) => {
      if (peer.pc.gatheringState() === 'complete') resolve();
      else peer.pc.onGatheringStateChange((state) => state === 'complete' && resolve());
    });
    return withoutCandidates((peer.pc.localDescription() as { sdp: string }).sdp);
  } finally {
    peer.close();
  }
}

/** As a client does: on `closing` PS_ERR_SESSION_MOVED it closes its side (and would reconnect). */
function leaveWhenMoved(peer: RawPeer): Promise<void> {
  return peer
    .waitForMessage((m) => m.type === 'closing', 30_000)
    .then((closing) => {
      assert.equal(closing.type === 'closing' && closing.code, ErrorCodes.SESSION_MOVED);
      peer.close();
    });
}

async function receipted(peer: RawPeer, seq: number): Promise<void> {
  const receipt = await peer.receipt(seq);
  assert.ok(receipt.type === 'receipt' && receipt.ok, JSON.stringify(receipt));
}

void describe('cluster node (real nats-server, real WebRTC)', { skip, timeout: 180_000 }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let directory: NodeDirectory;
  before(async () => {
    nats = await NatsServer.start();
    nc = await natsConnect({ servers: nats.url });
    directory = await NodeDirectory.open(nc);
  });
  after(async () => {
    directory?.close();
    await nc?.close();
    await nats?.close();
  });

  void it('heartbeats its load, answers forwarded offers, PATCH and DELETE; ids name the node', async (t) => {
    const server = await startServer(
      nodeOptions('alpha', nats.url, { limits: { maxSessions: 5 }, viewer: { maxViewers: 3 } }),
    );
    t.after(() => server.close());
    await waitFor(() => directory.node('alpha') !== undefined, 5_000, 'alpha heartbeat');
    const first = directory.node('alpha')!.heartbeat;
    assert.equal(first.sessions, 0);
    assert.equal(first.maxSessions, 5);
    assert.equal(first.maxViewers, 3);
    assert.equal(first.busHealthy, true);
    assert.equal(first.draining, false);
    assert.match(first.version, /^\d+\.\d+\.\d+/);
    assert.ok(Math.abs(first.at - Date.now()) < 5_000);

    const { peer, id, location } = await connectOverNats(nc, 'alpha', 'lidar');
    t.after(() => peer.close());
    assert.equal(nodeOfPeerId(id), 'alpha');
    assert.match(id, /^alpha\.[A-Za-z0-9_-]{22}$/);
    for (let seq = 0; seq < 8; seq++) {
      sendFrame(peer, seq);
      await receipted(peer, seq);
    }
    await waitFor(
      () => {
        const beat = directory.node('alpha')?.heartbeat;
        return (
          beat !== undefined &&
          beat.sessions === 1 &&
          beat.ingressBytesPerSec > 0 &&
          beat.streams[0]?.framesReceived === 8
        );
      },
      5_000,
      () => `a heartbeat with the session: ${JSON.stringify(directory.node('alpha')?.heartbeat)}`,
    );
    const beat = directory.node('alpha')!.heartbeat;
    const { lastFrameAt, bytesReceived, ...stream } = beat.streams[0] ?? { session: '' };
    assert.equal(beat.streams.length, 1);
    // The session's counters: 8 frames of 30,000 points, lately.
    assert.deepEqual(stream, {
      tenant: 'public',
      stream: 'lidar',
      session: id,
      framesReceived: 8,
      framesRejected: 0,
      pointsReceived: 240_000,
    });
    assert.ok(bytesReceived !== undefined && bytesReceived >= 8 * 360_000);
    assert.ok(lastFrameAt !== undefined && Math.abs(Date.now() - lastFrameAt) < 10_000);
    assert.equal(directory.nodeOfStream('public', 'lidar')?.heartbeat.id, 'alpha');
    // 8 frames of 360 KB within a few seconds: at least 8*360000/5 B/s over the 5 s window.
    assert.ok(beat.ingressBytesPerSec >= 500_000, String(beat.ingressBytesPerSec));
    assert.ok(beat.cpu >= 0 && beat.cpu < 4, String(beat.cpu));
    assert.ok(beat.loopLagMs >= 0 && beat.loopLagMs < 1_000, String(beat.loopLagMs));
    const stats = server.stats().cluster;
    assert.equal(stats?.nodeId, 'alpha');
    assert.equal(stats?.busHealthy, true);
    assert.ok((stats?.lastHeartbeatAt ?? 0) > Date.now() - 3_000);
    assert.equal(stats?.forwardedRequests, 2);

    // Another token's or a missing session: 404 as over HTTP.
    const missing = await forward(nc, 'alpha', {
      method: 'DELETE',
      url: '/sessions/alpha.nope',
      headers: {},
      body: '',
    });
    assert.equal(missing.status, 404);
    assert.match(missing.body, /PS_ERR_SESSION_NOT_FOUND/);
    const ended = server.next('sessionClosed', { timeoutMs: 5_000 });
    const deleted = await forward(nc, 'alpha', {
      method: 'DELETE',
      url: location,
      headers: { 'content-type': 'application/json' },
      body: '',
    });
    assert.equal(deleted.status, 200, deleted.body);
    assert.equal((await ended).code, ErrorCodes.SESSION_CLOSED);
    await waitFor(
      () => directory.node('alpha')?.heartbeat.sessions === 0,
      5_000,
      'the heartbeat without the session',
    );
    // Its own HTTP port still works.
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /pointstream_draining 0/);
    await server.close();
    // Deleted at close: fronts see it gone at once, not after the TTL.
    await waitFor(() => directory.node('alpha') === undefined, 1_000, 'alpha gone');
  });

  void it('answers a malformed forwarded request with 400 and keeps serving', async (t) => {
    const server = await startServer(
      nodeOptions('beta', nats.url, { limits: { maxOffersPerMinute: 1 } }),
    );
    t.after(() => server.close());
    const garbage = await nc.request(signalSubject('beta'), new TextEncoder().encode('{"v":1'), {
      timeout: 5_000,
    });
    const reply = parseForwardedReply(garbage.data);
    assert.equal(reply.status, 400);
    assert.equal(
      (JSON.parse(reply.body) as { error: { code: string } }).error.code,
      ErrorCodes.BUS_MESSAGE_INVALID,
    );
    const badMethod = parseForwardedReply(
      (
        await nc.request(
          signalSubject('beta'),
          new TextEncoder().encode(
            JSON.stringify({
              v: 1,
              method: 'GET',
              url: '/stats',
              headers: {},
              remoteAddress: '',
              body: '',
            }),
          ),
          { timeout: 5_000 },
        )
      ).data,
    );
    assert.equal(badMethod.status, 400);
    // A well-formed request with a bad offer is the node's HTTP answer, as over HTTP.
    const badOffer = await forward(nc, 'beta', {
      method: 'POST',
      url: '/offer',
      headers: { 'content-type': 'application/json' },
      body: '{"type":"offer","sdp":"nonsense"}',
    });
    assert.equal(badOffer.status, 400);
    assert.match(badOffer.body, /PS_ERR_SDP_INVALID/);
    const unknown = await forward(nc, 'beta', {
      method: 'POST',
      url: '/nope',
      headers: {},
      body: '',
    });
    assert.equal(unknown.status, 404);
    // Per-client limits apply to the client's address the front passes on.
    const sdp = await offerSdp();
    const from = async (remoteAddress: string): Promise<ForwardedReply> =>
      forward(nc, 'beta', {
        method: 'POST',
        url: '/offer',
        headers: { 'content-type': 'application/sdp' },
        body: sdp,
        remoteAddress,
      });
    const once = await from('198.51.100.7');
    assert.equal(once.status, 201, once.body);
    assert.match(once.headers.location ?? '', /^\/sessions\/beta\./);
    const twice = await from('198.51.100.7');
    assert.equal(twice.status, 429, twice.body);
    assert.ok(Number(twice.headers['retry-after']) > 0);
    // Still a healthy member, and another address has its own allowance.
    const { peer } = await connectOverNats(nc, 'beta', 'after-garbage');
    t.after(() => peer.close());
    sendFrame(peer, 0);
    await receipted(peer, 0);
    assert.equal(server.stats().cluster?.forwardedRefused, 2);
  });

  void it('drains: draining in its heartbeat, offers 503, clients moved, closed in time, key gone', async (t) => {
    const server = await startServer(nodeOptions('gamma', nats.url));
    t.after(() => server.close());
    const ends: SessionEnd[] = [];
    server.on('sessionClosed', (end) => ends.push(end));
    const clients = [
      await connectOverNats(nc, 'gamma', 'd1'),
      await connectOverNats(nc, 'gamma', 'd2'),
    ];
    for (const { peer } of clients) t.after(() => peer.close());
    for (const { peer } of clients) {
      sendFrame(peer, 0);
      await receipted(peer, 0);
    }
    await waitFor(() => directory.node('gamma')?.heartbeat.sessions === 2, 5_000, 'two sessions');
    // A viewer of d1 on this node: a drain tells it to move too (the page watches again elsewhere).
    const viewer = new NodeViewer();
    t.after(() => viewer.close());
    assert.equal((await viewer.offer(server.url, 'd1')).status, 200);
    await waitFor(() => viewer.controls.some((c) => c.type === 'hello'), 5_000, 'viewer hello');
    const moved = clients.map(({ peer }) => leaveWhenMoved(peer));
    const sdp = await offerSdp();
    const started = performance.now();
    const drained = server.drain({ timeoutMs: 8_000 });
    const refused = await forward(nc, 'gamma', {
      method: 'POST',
      url: '/offer',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sdp, type: 'offer', stream: 'late' }),
    });
    // A draining node answers (503) for at least a heartbeat interval before it leaves.
    assert.equal(refused.status, 503, refused.body);
    assert.match(refused.body, /PS_ERR_SHUTTING_DOWN/);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    await waitFor(
      () => directory.node('gamma')?.heartbeat.draining === true,
      1_000,
      'draining in the heartbeat',
    );
    await Promise.all(moved);
    await drained;
    const took = performance.now() - started;
    assert.ok(took < 8_000, `drained in ${took} ms`);
    assert.equal(ends.length, 2);
    assert.equal(server.stats().sessions.length, 0);
    await server.close();
    await waitFor(
      () => viewer.controls.some((c) => c.type === 'closing'),
      5_000,
      'the viewer told to move',
    );
    const closing = viewer.controls.find((c) => c.type === 'closing');
    assert.equal(closing?.type === 'closing' ? closing.code : undefined, 'PS_ERR_SESSION_MOVED');
    await waitFor(() => directory.node('gamma') === undefined, 1_000, 'gamma gone');
    const kv = await openNodesBucket(nc);
    const entry = await kv.get('gamma');
    assert.ok(entry === null || entry.operation !== 'PUT', `gamma's key: ${entry?.operation}`);
  });

  void it('serve --bus: SIGTERM drains (clients told to move) and exits 0', async (t) => {
    const first = (nextPorts += 200);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CLI,
        'serve',
        '--host',
        LOOPBACK,
        '--port',
        '0',
        '--rtc-bind',
        LOOPBACK,
        '--port-range',
        `${first}-${first + 199}`,
        '--bus',
        nats.url,
        '--node-id',
        'delta',
        '--drain-timeout',
        '6',
        '--log-format',
        'json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await waitFor(
      () => directory.node('delta') !== undefined || child.exitCode !== null,
      30_000,
      () => `delta's heartbeat: ${output}`,
    );
    const { peer } = await connectOverNats(nc, 'delta', 'term');
    t.after(() => peer.close());
    sendFrame(peer, 0);
    await receipted(peer, 0);
    const moved = leaveWhenMoved(peer);
    const started = performance.now();
    child.kill('SIGTERM');
    await moved;
    assert.equal(await exited, 0, output);
    assert.ok(performance.now() - started < 6_000 + 5_000, 'exited within the drain timeout');
    assert.match(output, /"event":"draining"[^\n]*"sessions":1/);
    assert.match(output, /"event":"drained"[^\n]*"remaining":0/);
    await waitFor(() => directory.node('delta') === undefined, 1_000, 'delta gone');
  });

  void it('an unhealthy bus: offers refused PS_ERR_BUS_UNAVAILABLE, sessions closed after the grace', async (t) => {
    // A bus of its own, stopped under the node.
    const own = await NatsServer.start();
    t.after(() => own.close());
    const server = await startServer(nodeOptions('epsilon', own.url));
    t.after(() => server.close());
    const peer = new RawPeer(PROTOCOL_V1);
    t.after(() => peer.close());
    await peer.connect(`${server.url}/offer`, 'json', { stream: 'bus-down' });
    sendFrame(peer, 0);
    await receipted(peer, 0);
    assert.equal(server.stats().cluster?.busHealthy, true);
    const ended = server.next('sessionClosed', { timeoutMs: 20_000 });
    await own.stop();
    const down = performance.now();
    await waitFor(() => server.stats().cluster?.busHealthy === false, 5_000, 'bus unhealthy');
    const refused = await fetch(`${server.url}/offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sdp: await offerSdp(), type: 'offer' }),
    });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));
    assert.match(await refused.text(), /PS_ERR_BUS_UNAVAILABLE/);
    const end = await ended;
    assert.equal(end.code, ErrorCodes.BUS_UNAVAILABLE);
    const after = performance.now() - down;
    assert.ok(after >= 4_000 && after < 9_000, `closed ${after} ms after the bus went down`);
    const closing = await peer.waitForMessage((m) => m.type === 'closing', 1_000);
    assert.equal(closing.type === 'closing' && closing.code, ErrorCodes.BUS_UNAVAILABLE);
    await own.start();
    await waitFor(() => server.stats().cluster?.busHealthy === true, 10_000, 'bus healthy again');
  });

  void it('caps forwarded requests running at once (beyond: 503), and leaves when closed', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const handled: ForwardedRequest[] = [];
    const member = await ClusterMember.join({
      nc,
      nodeId: 'zeta',
      maxConcurrent: 2,
      sample: () => ({
        sessions: 0,
        maxSessions: 1,
        viewers: 0,
        maxViewers: 1,
        bytesReceived: 0,
        busHealthy: true,
        draining: false,
        streams: [],
      }),
      handle: async (request) => {
        handled.push(request);
        await held;
        return { v: 1, status: 204, headers: {}, body: '' };
      },
      log: silentLogger,
    });
    try {
      const request = { method: 'DELETE' as const, url: '/sessions/zeta.x', headers: {}, body: '' };
      const slow = [forward(nc, 'zeta', request), forward(nc, 'zeta', request)];
      await waitFor(() => handled.length === 2, 5_000, 'two requests running');
      const third = await forward(nc, 'zeta', request);
      assert.equal(third.status, 503);
      assert.equal(third.headers['retry-after'], '1');
      assert.match(third.body, /PS_ERR_SERVER_FULL/);
      release();
      assert.deepEqual(
        (await Promise.all(slow)).map((reply) => reply.status),
        [204, 204],
      );
      // Room again once they finished.
      assert.equal((await forward(nc, 'zeta', request)).status, 204);
      assert.deepEqual(member.stats().forwardedRequests, 3);
      assert.deepEqual(member.stats().forwardedRefused, 1);
      await waitFor(() => directory.node('zeta') !== undefined, 5_000, 'zeta heartbeat');
    } finally {
      release();
      await member.close();
    }
    await waitFor(() => directory.node('zeta') === undefined, 1_000, 'zeta gone');
    // Nobody answers its subject any more: a front gets no responders at once.
    await assert.rejects(
      forward(nc, 'zeta', { method: 'DELETE', url: '/x', headers: {}, body: '' }),
    );
  });
});
