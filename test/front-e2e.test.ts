/**
 * End to end through a front: a real nats-server, two real cluster nodes (createServer with a
 * bus, WebRTC on 127.0.0.1, each its own UDP ports), one front, and the library client connecting
 * to the front's `/offer`. Receipts arrive, sessions land on the nodes (2 per node, then 503),
 * PATCH and DELETE reach the node through the front.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nodeOfPeerId } from '../src/cluster/protocol.js';
import { connect, createFront, ErrorCodes } from '../src/index.js';
import type {
  PointstreamClient,
  PointstreamFront,
  PointstreamServer,
  ReceivedFrame,
  SessionEnd,
} from '../src/index.js';
import type { PointstreamError } from '../src/errors.js';
import { LOOPBACK, startServer, waitFor } from './helpers.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();
const rtc = { bindAddress: LOOPBACK };

void describe(
  'front end to end (nats-server, 2 nodes, the library client)',
  { skip, timeout: 150_000 },
  () => {
    let nats: NatsServer;
    const nodes = new Map<string, PointstreamServer>();
    const frames = new Map<string, ReceivedFrame[]>();
    const ended = new Map<string, SessionEnd[]>();
    let front: PointstreamFront;
    const clients: PointstreamClient[] = [];

    before(async () => {
      nats = await NatsServer.start();
      for (const [index, id] of ['n1', 'n2'].entries()) {
        const first = 48_000 + index * 200;
        const server = await startServer({
          bus: { url: nats.url, nodeId: id },
          rtc: { bindAddress: LOOPBACK, portRange: [first, first + 199] },
          limits: { maxSessions: 2 },
        });
        nodes.set(id, server);
        frames.set(id, []);
        ended.set(id, []);
        server.on('frame', (frame) => frames.get(id)!.push(frame));
        server.on('sessionClosed', (end) => ended.get(id)!.push(end));
      }
      front = await createFront({ bus: nats.url, host: LOOPBACK, port: 0 });
      await waitFor(() => front.stats().nodes.length === 2, 10_000, 'the front to see both nodes');
    });
    after(async () => {
      await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
      await front?.close();
      for (const server of nodes.values()) await server.close();
      await nats?.close();
    });

    void it('places 4 clients 2 per node; receipts arrive; a 5th is refused 503; PATCH and DELETE go through', async () => {
      for (let i = 0; i < 4; i++) {
        const client = await connect({
          signalingUrl: `${front.url}/offer`,
          stream: `cam-${i}`,
          rtc,
          connectTimeoutMs: 15_000,
        });
        clients.push(client);
      }
      const placed = new Map<string, number>();
      for (const client of clients) {
        const node = nodeOfPeerId(client.sessionId ?? '');
        assert.ok(
          node !== undefined && nodes.has(node),
          `session ${client.sessionId} names a node`,
        );
        placed.set(node, (placed.get(node) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(placed), { n1: 2, n2: 2 });

      // Frames flow from each client to its node directly; every receipt comes back ok.
      for (const client of clients) {
        for (let seq = 0; seq < 3; seq++) {
          const points = new Float32Array(3_000).fill(seq + 1);
          const receipt = await (await client.send(points)).receipt;
          assert.equal(receipt.ok, true, `receipt of ${client.sessionId} #${seq}`);
        }
      }
      for (const [id, received] of frames) {
        assert.equal(received.length, 6, `frames at ${id}`);
        const sessions = new Set(received.map((frame) => frame.sessionId));
        assert.ok([...sessions].every((session) => nodeOfPeerId(session) === id));
      }

      // The front's /stats shows where each stream runs (from the nodes' heartbeats).
      // Each row carries its session's counters, as a server's /stats does (the viewer page
      // shows them): 3 frames of 1,000 points each, once a heartbeat counted them.
      await waitFor(
        () =>
          front.stats().streams.length === 4 &&
          front.stats().streams.every((s) => s.framesReceived === 3),
        5_000,
        () => `4 streams in the front's /stats: ${JSON.stringify(front.stats().streams)}`,
      );
      for (const client of clients) {
        const row = front.stats().streams.find((s) => s.session === client.sessionId);
        assert.equal(row?.node, nodeOfPeerId(client.sessionId ?? ''));
        assert.equal(row?.pointsReceived, 3_000);
        assert.equal(row?.framesRejected, 0);
        assert.ok(row?.bytesReceived !== undefined && row.bytesReceived >= 36_000);
        assert.ok(
          row?.lastFrameAt !== undefined && Math.abs(Date.now() - row.lastFrameAt) < 60_000,
        );
      }

      // Every node is full: a fifth client is refused by the front (503, Retry-After: 1).
      await assert.rejects(
        connect({ signalingUrl: `${front.url}/offer`, stream: 'cam-5', rtc }),
        (error: PointstreamError) => {
          assert.equal(error.code, ErrorCodes.SIGNALING_REJECTED);
          assert.equal(error.details?.status, 503);
          assert.equal(error.details?.serverCode, 'PS_ERR_SERVER_FULL');
          return true;
        },
      );

      // A trickled candidate reaches the session's node through the front.
      const first = clients[0]!;
      const patch = await fetch(`${front.url}/sessions/${first.sessionId}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        body: 'a=candidate:1 1 UDP 2122260223 127.0.0.1 9 typ host\r\n',
      });
      assert.equal(patch.status, 204, await patch.text());
      const unknown = await fetch(`${front.url}/sessions/n1.nosuchsession`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        body: 'a=candidate:1 1 UDP 2122260223 127.0.0.1 9 typ host\r\n',
      });
      assert.equal(unknown.status, 404);

      // close() sends DELETE to the session URL the front gave (Location), which reaches the node.
      const node = nodeOfPeerId(first.sessionId ?? '')!;
      await first.close();
      clients.shift();
      await waitFor(
        () => ended.get(node)!.some((end) => end.stats.id === first.sessionId),
        10_000,
        'the session to end on its node',
      );
      const end = ended.get(node)!.find((e) => e.stats.id === first.sessionId)!;
      assert.equal(end.code, ErrorCodes.SESSION_CLOSED);
      assert.match(end.reason, /DELETE|client closed/);
      assert.equal(
        nodes
          .get(node)!
          .stats()
          .sessions.some((s) => s.id === first.sessionId),
        false,
      );
    });

    void it('answers malformed offers as a node does (its own routes judge them)', async () => {
      const direct = nodes.get('n1')!.url;
      // A slot is free again once the node's heartbeat says so (the front places before the
      // node's routes judge the offer).
      await waitFor(
        () => front.stats().nodes.some((n) => n.sessions + n.reservedSessions < n.maxSessions),
        5_000,
        'a free slot',
      );
      const cases: { name: string; type: string; body: string }[] = [
        { name: 'JSON null', type: 'application/json', body: 'null' },
        { name: 'JSON string', type: 'application/json', body: '"v=0"' },
        { name: 'JSON without sdp', type: 'application/json', body: '{"type":"offer"}' },
        {
          name: 'bad stream',
          type: 'application/json',
          body: '{"type":"offer","sdp":"v=0","stream":"a b"}',
        },
        { name: 'not an SDP', type: 'application/sdp', body: 'hello' },
        { name: 'text/plain', type: 'text/plain', body: 'v=0' },
        { name: 'too large', type: 'application/sdp', body: `v=0\r\n${'a=x\r\n'.repeat(10_000)}` },
      ];
      for (const { name, type, body } of cases) {
        const answers = await Promise.all(
          [direct, front.url].map(async (base) => {
            const response = await fetch(`${base}/offer`, {
              method: 'POST',
              headers: { 'content-type': type },
              body,
            });
            const problem = (await response.json()) as { error?: { code?: string } };
            return { status: response.status, code: problem.error?.code };
          }),
        );
        assert.deepEqual(answers[1], answers[0], `${name}: ${JSON.stringify(answers)}`);
        assert.ok(answers[0]!.status >= 400 && answers[0]!.status < 500, name);
      }
    });
  },
);
