/**
 * The front against a real nats-server, with nodes stood up here as plain NATS responders on
 * their signal subjects (what a node does, without WebRTC): forwarding, skipping nodes that are
 * gone, slow or refusing, 404 for peers of unknown nodes, 503 when none has room, auth, /stats,
 * /healthz, /metrics, and the CLI command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { tenantOf } from '../src/bus/layout.js';
import { openNodesBucket } from '../src/cluster/directory.js';
import {
  encodeClusterMessage,
  parseForwardedRequest,
  signalSubject,
} from '../src/cluster/protocol.js';
import type { ForwardedReply, ForwardedRequest, NodeHeartbeat } from '../src/cluster/protocol.js';
import { createFront } from '../src/index.js';
import type { FrontOptions, FrontStats, PointstreamFront } from '../src/index.js';
import { TokenAuth } from '../src/server/auth.js';
import { CLI, LOOPBACK, runCli, waitFor } from './helpers.js';
import { NatsServer, natsUnavailable } from './support/nats.js';

const skip = natsUnavailable();
const TOKEN = 'front-test-token-0123456789';
const OTHER_TOKEN = 'front-test-token-other-98765';
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

type Answer = (request: ForwardedRequest) => ForwardedReply | 'silent' | Uint8Array;

const ok = (session: string): ForwardedReply => ({
  v: 1,
  status: 200,
  headers: { 'content-type': 'application/json; charset=utf-8', location: `/sessions/${session}` },
  body: JSON.stringify({ type: 'answer', sdp: 'answer-sdp', session }),
});

/** A node as the front sees one: a heartbeat every 300 ms and a responder on its signal subject. */
class FakeNode {
  readonly requests: ForwardedRequest[] = [];
  #fields: Partial<NodeHeartbeat>;
  #timer: NodeJS.Timeout | undefined;
  #sub: Subscription | undefined;

  constructor(
    readonly id: string,
    readonly nc: NatsConnection,
    readonly kv: KV,
    readonly answer: Answer | undefined,
    fields: Partial<NodeHeartbeat> = {},
  ) {
    this.#fields = fields;
  }

  async start(): Promise<this> {
    if (this.answer !== undefined) {
      const answer = this.answer;
      this.#sub = this.nc.subscribe(signalSubject(this.id), {
        callback: (_error, msg) => {
          const request = parseForwardedRequest(msg.data);
          this.requests.push(request);
          const reply = answer(request);
          if (reply === 'silent') return;
          msg.respond(reply instanceof Uint8Array ? reply : encodeClusterMessage(reply));
        },
      });
      await this.nc.flush();
    }
    await this.beat();
    this.#timer = setInterval(() => void this.beat().catch(() => undefined), 300);
    return this;
  }

  set(fields: Partial<NodeHeartbeat>): void {
    this.#fields = { ...this.#fields, ...fields };
  }

  async beat(): Promise<void> {
    const now = Date.now();
    const heartbeat: NodeHeartbeat = {
      v: 1,
      id: this.id,
      version: '0.0.0-test',
      startedAt: now - 1000,
      at: now,
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
      ...this.#fields,
    };
    await this.kv.put(this.id, encodeClusterMessage(heartbeat));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    await this.kv.delete(this.id).catch(() => undefined);
  }
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

const errorCode = async (response: Response): Promise<unknown> =>
  ((await json(response)).error as { code?: unknown } | undefined)?.code;

void describe(
  'front (real nats-server, nodes as NATS responders)',
  { skip, timeout: 120_000 },
  () => {
    let nats: NatsServer;
    let nc: NatsConnection;
    let kv: KV;
    const nodes: FakeNode[] = [];
    const fronts: PointstreamFront[] = [];

    const node = async (
      id: string,
      answer: Answer | undefined,
      fields: Partial<NodeHeartbeat> = {},
    ): Promise<FakeNode> => {
      const made = await new FakeNode(id, nc, kv, answer, fields).start();
      nodes.push(made);
      return made;
    };
    const front = async (options: Partial<FrontOptions> = {}): Promise<PointstreamFront> => {
      const made = await createFront({ bus: nats.url, host: LOOPBACK, port: 0, ...options });
      fronts.push(made);
      return made;
    };
    const clear = async (): Promise<void> => {
      await Promise.all(nodes.splice(0).map((n) => n.stop()));
      await Promise.all(fronts.splice(0).map((f) => f.close()));
    };
    /** Waits until `f` sees exactly these nodes. */
    const sees = (f: PointstreamFront, ids: string[]): Promise<void> =>
      waitFor(
        () =>
          f
            .stats()
            .nodes.map((n) => n.id)
            .join() === [...ids].sort().join(),
        5_000,
        () =>
          `nodes ${ids.join()} (sees ${f
            .stats()
            .nodes.map((n) => n.id)
            .join()})`,
      );

    before(async () => {
      nats = await NatsServer.start();
      nc = await connect({ servers: nats.url });
      kv = await openNodesBucket(nc);
    });
    after(async () => {
      await clear();
      await nc?.close();
      await nats?.close();
    });

    void it('forwards a JSON offer and a WHIP offer, and the node reply comes back as is', async () => {
      const a = await node('A', (request) =>
        request.headers['content-type'] === 'application/sdp'
          ? {
              v: 1,
              status: 201,
              headers: {
                'content-type': 'application/sdp',
                location: '/sessions/A.whip',
                'x-not-forwarded': 'no',
              },
              body: 'answer-sdp',
            }
          : ok('A.json'),
      );
      const f = await front();
      await sees(f, ['A']);
      const body = { sdp: OFFER, type: 'offer', stream: 'lidar' };
      const response = await fetch(`${f.url}/offer?x=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-other': 'y' },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('location'), '/sessions/A.json');
      assert.deepEqual(await json(response), {
        type: 'answer',
        sdp: 'answer-sdp',
        session: 'A.json',
      });
      const forwarded = a.requests[0]!;
      assert.equal(forwarded.method, 'POST');
      assert.equal(forwarded.url, '/offer?x=1');
      assert.equal(forwarded.remoteAddress, '127.0.0.1');
      assert.deepEqual(forwarded.headers, {
        'content-type': 'application/json',
        accept: 'application/json',
      });
      assert.deepEqual(JSON.parse(forwarded.body), body);

      const whip = await fetch(`${f.url}/offer?stream=lidar`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(whip.status, 201);
      assert.equal(whip.headers.get('content-type'), 'application/sdp');
      assert.equal(whip.headers.get('location'), '/sessions/A.whip');
      assert.equal(whip.headers.get('x-not-forwarded'), null);
      assert.equal(await whip.text(), 'answer-sdp');
      assert.equal(a.requests[1]!.body, OFFER);

      // 405 with Allow, as serve.
      const get = await fetch(`${f.url}/offer`);
      assert.equal(get.status, 405);
      assert.match(get.headers.get('allow') ?? '', /POST/);
      assert.equal(f.stats().totals.placements, 2);
      await clear();
    });

    void it('skips a node that refuses (503), times out, has no responder or answers garbage; then 503 + Retry-After', async () => {
      const refusing = await node('R', () => ({
        v: 1,
        status: 503,
        headers: { 'content-type': 'application/json', 'retry-after': '5' },
        body: '{"error":{"code":"PS_ERR_SHUTTING_DOWN","message":"draining"}}',
      }));
      const silent = await node('S', () => 'silent');
      const gone = await node('G', undefined);
      const garbled = await node('X', () => new TextEncoder().encode('{"v":1,"status":"x"}'));
      // Fewest free slots: tried last.
      const last = await node('L', () => ok('L.1'), { maxSessions: 1 });
      const f = await front({ forwardTimeoutMs: 400 });
      await sees(f, ['G', 'L', 'R', 'S', 'X']);
      const started = performance.now();
      const response = await fetch(`${f.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sdp: OFFER, type: 'offer' }),
      });
      const took = performance.now() - started;
      assert.equal(response.status, 200);
      assert.equal((await json(response)).session, 'L.1');
      assert.equal(refusing.requests.length, 1);
      assert.equal(silent.requests.length, 1);
      assert.equal(garbled.requests.length, 1);
      assert.equal(last.requests.length, 1);
      assert.ok(took < 2_000, `one timeout of 400 ms at most, took ${Math.round(took)} ms`);
      const { totals } = f.stats();
      assert.deepEqual(totals, {
        placements: 1,
        refusals: 0,
        forwardFailures: 3,
        forwardTimeouts: 1,
      });
      const metrics = await (await fetch(`${f.url}/metrics`)).text();
      assert.match(
        metrics,
        /pointstream_front_forward_failures_total\{node="G",reason="no_responders"\} 1/,
      );
      assert.match(
        metrics,
        /pointstream_front_forward_failures_total\{node="S",reason="timeout"\} 1/,
      );
      assert.match(
        metrics,
        /pointstream_front_forward_failures_total\{node="X",reason="invalid_reply"\} 1/,
      );
      assert.match(metrics, /pointstream_front_forward_timeouts_total 1/);
      assert.match(metrics, /pointstream_front_placements_total\{node="L",kind="session"\} 1/);
      assert.match(metrics, /pointstream_front_nodes \d/);
      assert.match(metrics, /pointstream_front_forward_seconds_count\{method="POST"\} 1/);

      // L is now full (its reservation stands until its heartbeat says 1 session), the others fail.
      last.set({ sessions: 1 });
      await last.beat();
      const full = await fetch(`${f.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sdp: OFFER, type: 'offer' }),
      });
      assert.equal(full.status, 503);
      assert.equal(full.headers.get('retry-after'), '1');
      assert.equal(await errorCode(full), 'PS_ERR_SERVER_FULL');
      assert.equal(f.stats().totals.refusals, 1);
      assert.equal(gone.requests.length, 0);
      await clear();
    });

    void it('never places on draining or bus-unhealthy nodes; no node at all is 503', async () => {
      const draining = await node('D', () => ok('D.1'), { draining: true });
      const unhealthy = await node('U', () => ok('U.1'), { busHealthy: false });
      const f = await front();
      await sees(f, ['D', 'U']);
      const post = (): Promise<Response> =>
        fetch(`${f.url}/offer`, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp' },
          body: OFFER,
        });
      const refused = await post();
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(draining.requests.length + unhealthy.requests.length, 0);
      await clear();
      const empty = await front();
      const none = await fetch(`${empty.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(none.status, 503);
      assert.equal(await errorCode(none), 'PS_ERR_SERVER_FULL');
      await clear();
    });

    void it('routes PATCH and DELETE by the node a peer id names; unknown or gone nodes are 404', async () => {
      const a = await node('A', (request): ForwardedReply =>
        request.method === 'PATCH'
          ? { v: 1, status: 204, headers: {}, body: '' }
          : {
              v: 1,
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: '{"ok":true}',
            },
      );
      const quiet = await node('Q', undefined);
      const f = await front();
      await sees(f, ['A', 'Q']);
      const patch = await fetch(`${f.url}/sessions/A.abc`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        body: 'a=candidate:1 1 UDP 1 127.0.0.1 5000 typ host\r\n',
      });
      assert.equal(patch.status, 204);
      assert.equal(a.requests[0]!.url, '/sessions/A.abc');
      assert.equal(a.requests[0]!.body, 'a=candidate:1 1 UDP 1 127.0.0.1 5000 typ host\r\n');
      const del = await fetch(`${f.url}/viewer/peers/A.v1`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      assert.deepEqual(await json(del), { ok: true });
      assert.equal(a.requests[1]!.method, 'DELETE');
      assert.equal(a.requests[1]!.url, '/viewer/peers/A.v1');
      assert.equal(a.requests[1]!.body, '');
      for (const path of ['/sessions/Z.abc', '/sessions/plain-id', '/sessions/Q.abc']) {
        const response = await fetch(`${f.url}${path}`, { method: 'DELETE' });
        assert.equal(response.status, 404, path);
        assert.equal(await errorCode(response), 'PS_ERR_SESSION_NOT_FOUND');
      }
      assert.equal(quiet.requests.length, 0);
      await clear();
    });

    void it('places a viewer on the node that ingests its stream', async () => {
      const viewerReply = (id: string) => (): ForwardedReply => ({
        v: 1,
        status: 200,
        headers: { 'content-type': 'application/json', location: `/viewer/peers/${id}.v` },
        body: JSON.stringify({ type: 'answer', sdp: 'x', viewer: `${id}.v` }),
      });
      const a = await node('A', viewerReply('A'), { maxViewers: 16 });
      const c = await node('C', viewerReply('C'), {
        streams: [{ tenant: 'public', stream: 'lidar', session: 'C.s' }],
      });
      const f = await front();
      await sees(f, ['A', 'C']);
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${f.url}/viewer/offer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sdp: OFFER, type: 'offer', stream: 'lidar' }),
        });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('location'), '/viewer/peers/C.v');
      }
      assert.equal(c.requests.length, 3);
      assert.equal(a.requests.length, 0);
      await clear();
    });

    void it('with auth: 401 at the front, the token forwarded, /stats of the token tenant only', async () => {
      const auth = new TokenAuth([TOKEN, OTHER_TOKEN]);
      const mine = tenantOf(auth.verify(`Bearer ${TOKEN}`));
      const theirs = tenantOf(auth.verify(`Bearer ${OTHER_TOKEN}`));
      const a = await node('A', () => ok('A.1'), {
        sessions: 2,
        streams: [
          { tenant: mine, stream: 'mine', session: 'A.m' },
          { tenant: theirs, stream: 'theirs', session: 'A.t' },
        ],
      });
      const f = await front({ tokens: [TOKEN, OTHER_TOKEN] });
      await sees(f, ['A']);
      const unauthorized = await fetch(`${f.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(unauthorized.status, 401);
      assert.equal(await errorCode(unauthorized), 'PS_ERR_UNAUTHORIZED');
      assert.equal((await fetch(`${f.url}/stats`)).status, 401);
      assert.equal((await fetch(`${f.url}/sessions/A.1`, { method: 'DELETE' })).status, 401);
      assert.equal(a.requests.length, 0);

      const authorization = `Bearer ${TOKEN}`;
      const placed = await fetch(`${f.url}/offer`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization },
        body: OFFER,
      });
      assert.equal(placed.status, 200);
      assert.equal(a.requests[0]!.headers.authorization, authorization);

      const healthz = await fetch(`${f.url}/healthz`);
      assert.equal(healthz.status, 200);
      assert.deepEqual(await json(healthz), { ok: true, nodes: 1, auth: true });
      const stats = (await (
        await fetch(`${f.url}/stats`, { headers: { authorization } })
      ).json()) as FrontStats;
      assert.deepEqual(stats.streams, [
        {
          name: 'mine',
          state: 'live',
          session: 'A.m',
          node: 'A',
          // The heartbeat here carries no counters: zeros, never NaN on the viewer page.
          framesReceived: 0,
          framesRejected: 0,
          bytesReceived: 0,
          pointsReceived: 0,
        },
      ]);
      assert.deepEqual(stats.sessions, [{ id: 'A.m', stream: 'mine', node: 'A' }]);
      assert.equal(stats.nodes.length, 1);
      const n = stats.nodes[0]!;
      assert.equal(n.id, 'A');
      assert.equal(n.sessions, 2);
      assert.equal(n.maxSessions, 4);
      assert.equal(n.busHealthy, true);
      assert.equal(n.draining, false);
      assert.ok(n.heartbeatAgeMs >= 0 && n.heartbeatAgeMs < 3_000, `age ${n.heartbeatAgeMs}`);
      assert.equal(stats.totals.placements, 1);
      // The library call sees every tenant.
      assert.equal(f.stats().streams.length, 2);
      const metrics = await fetch(`${f.url}/metrics`, { headers: { authorization } });
      assert.equal(metrics.status, 200);
      await clear();
    });

    void it('limits offers per client per minute (429 with Retry-After) before forwarding', async () => {
      const a = await node('A', () => ok('A.1'), { maxSessions: 64 });
      const f = await front({ limits: { maxOffersPerMinute: 2 } });
      await sees(f, ['A']);
      const post = (): Promise<Response> =>
        fetch(`${f.url}/offer`, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp' },
          body: OFFER,
        });
      assert.equal((await post()).status, 200);
      assert.equal((await post()).status, 200);
      const limited = await post();
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      assert.equal(a.requests.length, 2);
      await clear();
    });

    void it('two fronts, 6 offers at once on 3 nodes of 2 slots: all placed, none over capacity', async () => {
      const counts = new Map<string, number>();
      const full =
        (id: string): Answer =>
        () => {
          const used = counts.get(id) ?? 0;
          if (used >= 2)
            return {
              v: 1,
              status: 503,
              headers: { 'content-type': 'application/json', 'retry-after': '5' },
              body: '{"error":{"code":"PS_ERR_SERVER_FULL","message":"full"}}',
            };
          counts.set(id, used + 1);
          return ok(`${id}.${used}`);
        };
      for (const id of ['A', 'B', 'C']) await node(id, full(id), { maxSessions: 2 });
      const fronts = [await front(), await front()];
      for (const f of fronts) await sees(f, ['A', 'B', 'C']);
      const answers = await Promise.all(
        [0, 1, 2, 3, 4, 5].map(async (i) => {
          const response = await fetch(`${fronts[i % 2]!.url}/offer`, {
            method: 'POST',
            headers: { 'content-type': 'application/sdp' },
            body: OFFER,
          });
          return response.status;
        }),
      );
      assert.deepEqual(answers, [200, 200, 200, 200, 200, 200]);
      assert.deepEqual(Object.fromEntries([...counts].sort()), { A: 2, B: 2, C: 2 });
      await clear();
    });

    void it('CLI: front --bus starts, reports its URL over IPC, answers /healthz, stops on SIGTERM; exit 3 without NATS', async () => {
      const unreachable = await runCli(['front', '--bus', 'nats://127.0.0.1:1', '--port', '0']);
      assert.equal(unreachable.code, 3, unreachable.stderr);
      assert.match(unreachable.stderr, /PS_ERR_BUS_UNAVAILABLE/);

      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          CLI,
          'front',
          '--host',
          LOOPBACK,
          '--port',
          '0',
          '--log-format',
          'json',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          env: { ...process.env, POINTSTREAM_BUS: nats.url },
        },
      );
      let stdout = '';
      child.stdout!.on('data', (data: Buffer) => (stdout += data.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no listening message\n${stdout}`)),
            30_000,
          );
          child.on('message', (message: { type?: string; url?: string }) => {
            if (message.type === 'listening' && typeof message.url === 'string') {
              clearTimeout(timer);
              resolve(message.url);
            }
          });
        });
        assert.deepEqual(await json(await fetch(`${url}/healthz`)), {
          ok: true,
          nodes: 0,
          auth: false,
        });
        child.kill('SIGTERM');
        assert.equal(await exited, 0);
        assert.match(stdout, /"event":"listening"/);
        assert.match(stdout, /"event":"stopped"/);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  },
);

void test(
  'front --help: every flag has its environment variable, each documented',
  { timeout: 30_000 },
  async () => {
    const help = await runCli(['front', '--help'], {}, 20_000);
    assert.equal(help.code, 0);
    const variables = [
      ...help.stdout.replace(/\s+/g, ' ').matchAll(/env: (POINTSTREAM_[A-Z_]+)/g),
    ].map((match) => match[1] as string);
    const flags = [...help.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map(
      (match) => match[1] as string,
    );
    assert.equal(variables.length, flags.length);
    assert.ok(variables.includes('POINTSTREAM_FORWARD_TIMEOUT'));
    const doc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
    assert.deepEqual(
      variables.filter((name) => !doc.includes(`\`${name}\``)),
      [],
    );
  },
);
