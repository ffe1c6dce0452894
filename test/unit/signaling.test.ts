import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import type { Logger } from '../../src/util/logger.js';
import { TokenAuth } from '../../src/server/auth.js';
import {
  ClientAdmission,
  halfOpenRefusal,
  networkPrefix,
} from '../../src/server/http/admission.js';
import {
  MAX_CANDIDATES_PER_PEER,
  MAX_PATCHES_PER_PEER,
  registerPeerResource,
} from '../../src/server/http/peer-resource.js';
import type { PeerLike, PeerResourceHooks } from '../../src/server/http/peer-resource.js';
import type { Refusal } from '../../src/server/http/problem.js';
import { registerSessionResource } from '../../src/server/http/session-resource.js';
import type { SessionEntry } from '../../src/server/http/session-resource.js';
import { SignalingHttp } from '../../src/server/http/signaling.js';
import { registerViewerResource } from '../../src/server/http/viewer-offer.js';
import type { Session } from '../../src/server/session.js';
import type { ViewerHub } from '../../src/server/viewer.js';

/*
 * The HTTP signaling module in-process: fastify's `inject`, no sockets, no WebRTC (peers are
 * stand-ins). The real-WebRTC paths are covered by test/http.test.ts and test/security.test.ts.
 */

const TOKEN = 'unit-test-token-0123456789';
const OFFER = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  '',
].join('\r\n');
const CANDIDATE = 'a=candidate:1 1 UDP 2122260223 192.0.2.1 50000 typ host';

interface LogLine {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string | undefined;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (fields: object, message?: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  const log: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => log,
  };
  return log;
}

const LIMITS = {
  maxSdpBytes: 32 * 1024,
  requestTimeoutMs: 10_000,
  maxConnections: 16,
  maxConnectionsPerAddress: 16,
};

/** A peer that answers (or fails) at once and records what it was given. */
class FakePeer implements PeerLike {
  readonly id: string;
  readonly candidates: string[] = [];
  ended: string | undefined;
  readonly #fail: PointstreamError | undefined;

  constructor(id: string, fail?: PointstreamError) {
    this.id = id;
    this.#fail = fail;
  }

  answer(offerSdp: string): Promise<string> {
    if (this.#fail) return Promise.reject(this.#fail);
    return Promise.resolve(`answer to ${offerSdp.length} bytes`);
  }

  addRemoteCandidates(candidates: readonly { candidate: string }[]): void {
    for (const { candidate } of candidates) this.candidates.push(candidate);
  }
}

interface Harness {
  readonly http: SignalingHttp;
  readonly peers: Map<string, FakePeer>;
  readonly lines: LogLine[];
}

/** A signaling app with one fake peer resource at `/offer` and `/peers/<id>`, and `GET /stats`. */
function harness(
  options: {
    auth?: boolean;
    refuse?: () => Refusal | undefined;
    fail?: PointstreamError;
  } = {},
): Harness {
  const lines: LogLine[] = [];
  const log = recordingLogger(lines);
  const http = new SignalingHttp({
    limits: LIMITS,
    auth: options.auth ? new TokenAuth([TOKEN]) : undefined,
    isPublic: (request) => request.url === '/public',
    log,
  });
  const peers = new Map<string, FakePeer>();
  const owners = new Map<string, string | undefined>();
  const hooks: PeerResourceHooks<FakePeer, { sdp: string }> = {
    read: (request: FastifyRequest) => {
      if (typeof request.body !== 'string' || request.body.length === 0)
        throw new PointstreamError(ErrorCodes.SDP_INVALID, 'empty offer');
      return { sdp: request.body };
    },
    unavailable: () => options.refuse?.(),
    admit: () => ({ keys: [], release: () => undefined }),
    create: ({ id, request }) => {
      const peer = new FakePeer(id, options.fail);
      peers.set(id, peer);
      owners.set(id, http.tokenOf(request));
      return peer;
    },
    answered: ({ answer, reply }) => reply.code(201).type('application/sdp').send(answer),
    find: (request, id) => (owners.get(id) === http.tokenOf(request) ? peers.get(id) : undefined),
    failed: (peer, code) => (peer.ended = code),
    deleted: (peer) => (peer.ended = 'DELETE'),
  };
  registerPeerResource({
    http,
    noun: 'peer',
    offerPath: '/offer',
    peerPath: '/peers/',
    log,
    hooks,
  });
  http.route('GET', '/stats', () => ({ ok: true }));
  http.route('GET', '/public', () => ({ ok: true }));
  http.seal();
  return { http, peers, lines };
}

function errorOf(response: { json(): unknown }): { code: string; message: string } {
  return (response.json() as { error: { code: string; message: string } }).error;
}

const sdpHeaders = { 'content-type': 'application/sdp' };
const fragHeaders = { 'content-type': 'application/trickle-ice-sdpfrag' };

void describe('signaling HTTP: routes and problem replies', { timeout: 10_000 }, () => {
  void it('answers other methods of a registered route 405 with Allow from what is registered', async () => {
    const { http } = harness();
    const get = await http.app.inject({ method: 'GET', url: '/offer' });
    assert.equal(get.statusCode, 405);
    assert.equal(get.headers.allow, 'POST, OPTIONS');
    assert.equal(errorOf(get).code, ErrorCodes.HTTP_METHOD_NOT_ALLOWED);
    assert.match(errorOf(get).message, /GET is not allowed here; use POST or OPTIONS/);
    const put = await http.app.inject({ method: 'PUT', url: '/peers/x' });
    assert.equal(put.statusCode, 405);
    assert.equal(put.headers.allow, 'PATCH, DELETE, OPTIONS');
    const post = await http.app.inject({ method: 'POST', url: '/stats' });
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await http.app.inject({ method: 'HEAD', url: '/stats' })).statusCode, 200);
    assert.throws(() => http.route('GET', '/late', () => ({})), /after seal/);
  });

  void it('answers an unknown route 404 with the one problem shape', async () => {
    const { http } = harness();
    const response = await http.app.inject({ method: 'GET', url: '/nope?x=1' });
    assert.equal(response.statusCode, 404);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.deepEqual(response.json(), {
      error: { code: ErrorCodes.HTTP_NOT_FOUND, message: 'no route for GET /nope' },
    });
  });

  void it('takes only the media types signaling defines, within maxSdpBytes', async () => {
    const { http, lines } = harness();
    const cases: [Record<string, string>, string, number, string][] = [
      [{ 'content-type': 'text/plain' }, OFFER, 415, ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE],
      [{}, OFFER, 415, ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE],
      [sdpHeaders, 'x'.repeat(LIMITS.maxSdpBytes + 1), 413, ErrorCodes.HTTP_BODY_TOO_LARGE],
      [{ 'content-type': 'application/json' }, '{"sdp": "v=0', 400, ErrorCodes.HTTP_BAD_REQUEST],
      [sdpHeaders, '', 400, ErrorCodes.SDP_INVALID],
    ];
    for (const [headers, payload, status, code] of cases) {
      const response = await http.app.inject({ method: 'POST', url: '/offer', headers, payload });
      assert.equal(response.statusCode, status, `${JSON.stringify(headers)} -> ${status}`);
      assert.equal(errorOf(response).code, code);
    }
    // Each refusal thrown is logged (at most 20 per 10 s).
    const rejected = lines.filter((line) => line.fields.event === 'http-rejected');
    assert.equal(rejected.length, cases.length);
    assert.deepEqual(
      rejected.map((line) => line.fields.status),
      cases.map(([, , status]) => status),
    );
  });

  void it('answers an unexpected error 500 PS_ERR_INTERNAL and logs it', async () => {
    const lines: LogLine[] = [];
    const http = new SignalingHttp({ limits: LIMITS, log: recordingLogger(lines) });
    http.route('GET', '/boom', () => {
      throw new Error('secret detail');
    });
    http.seal();
    const response = await http.app.inject({ method: 'GET', url: '/boom' });
    assert.equal(response.statusCode, 500);
    assert.deepEqual(errorOf(response), { code: ErrorCodes.INTERNAL, message: 'internal error' });
    assert.ok(lines.some((line) => line.fields.event === 'http-error' && line.level === 'error'));
  });

  void it('refuses a request without a valid bearer token 401, except public ones', async () => {
    const { http, lines } = harness({ auth: true });
    const none = await http.app.inject({ method: 'GET', url: '/stats' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="pointstream"');
    assert.equal(none.headers.connection, 'close');
    assert.equal(errorOf(none).code, ErrorCodes.UNAUTHORIZED);
    const wrong = await http.app.inject({
      method: 'GET',
      url: '/stats',
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    assert.equal(wrong.statusCode, 401);
    assert.match(String(wrong.headers['www-authenticate']), /invalid_token/);
    const good = await http.app.inject({
      method: 'GET',
      url: '/stats',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(good.statusCode, 200);
    assert.equal((await http.app.inject({ method: 'GET', url: '/public' })).statusCode, 200);
    assert.equal(lines.filter((line) => line.fields.event === 'auth-failed').length, 2);
    assert.equal(http.authenticates, true);
  });
});

void describe('signaling HTTP: the peer resource', { timeout: 10_000 }, () => {
  void it('creates a peer: its answer, with Location', async () => {
    const { http, peers } = harness();
    const response = await http.app.inject({
      method: 'POST',
      url: '/offer',
      headers: sdpHeaders,
      payload: OFFER,
    });
    assert.equal(response.statusCode, 201);
    const [id] = [...peers.keys()];
    assert.equal(response.headers.location, `/peers/${id}`);
    assert.match(String(id), /^[A-Za-z0-9_-]{22}$/);
    assert.equal(response.body, `answer to ${OFFER.length} bytes`);
  });

  void it('ends a peer whose answer failed, and answers with the failure', async () => {
    const fail = new PointstreamError(ErrorCodes.SDP_NO_DATACHANNEL, 'no data channel');
    const { http, peers } = harness({ fail });
    const response = await http.app.inject({
      method: 'POST',
      url: '/offer',
      headers: sdpHeaders,
      payload: OFFER,
    });
    assert.equal(response.statusCode, 400);
    assert.equal(errorOf(response).code, ErrorCodes.SDP_NO_DATACHANNEL);
    assert.equal([...peers.values()][0]?.ended, ErrorCodes.SDP_NO_DATACHANNEL);
  });

  void it('answers a refusal with its status and Retry-After, logging 429s', async () => {
    for (const refusal of [
      { status: 503, code: ErrorCodes.SERVER_FULL, reason: 'full', retryAfterSeconds: 5 },
      {
        status: 429,
        code: ErrorCodes.TOO_MANY_REQUESTS,
        reason: 'slow down',
        retryAfterSeconds: 7,
      },
    ] as const) {
      const { http, peers, lines } = harness({ refuse: () => refusal });
      const response = await http.app.inject({
        method: 'POST',
        url: '/offer',
        headers: sdpHeaders,
        payload: OFFER,
      });
      assert.equal(response.statusCode, refusal.status);
      assert.equal(response.headers['retry-after'], String(refusal.retryAfterSeconds));
      assert.deepEqual(errorOf(response), { code: refusal.code, message: refusal.reason });
      assert.equal(peers.size, 0);
      const limited = lines.filter((line) => line.fields.event === 'client-limited');
      assert.equal(limited.length, refusal.status === 429 ? 1 : 0);
    }
  });

  void it('answers PATCH and DELETE of an unknown id 404, and of another token’s peer the same', async () => {
    const { http } = harness({ auth: true });
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const method of ['PATCH', 'DELETE'] as const) {
      const response = await http.app.inject({
        method,
        url: '/peers/no-such-id',
        headers: { ...auth, ...fragHeaders },
        payload: CANDIDATE,
      });
      assert.equal(response.statusCode, 404, method);
      assert.deepEqual(errorOf(response), {
        code: ErrorCodes.SESSION_NOT_FOUND,
        message: 'no such peer',
      });
    }
  });

  void it('trickles candidates: media type, PATCH and candidate caps, then DELETE', async () => {
    const { http, peers } = harness();
    await http.app.inject({ method: 'POST', url: '/offer', headers: sdpHeaders, payload: OFFER });
    const [peer] = [...peers.values()];
    assert.ok(peer);
    const url = `/peers/${peer.id}`;
    const sdp = await http.app.inject({
      method: 'PATCH',
      url,
      headers: sdpHeaders,
      payload: CANDIDATE,
    });
    assert.equal(sdp.statusCode, 415);
    assert.equal(errorOf(sdp).code, ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE);
    const ok = await http.app.inject({
      method: 'PATCH',
      url,
      headers: fragHeaders,
      payload: CANDIDATE,
    });
    assert.equal(ok.statusCode, 204);
    assert.deepEqual(peer.candidates, [CANDIDATE.slice(2)]);
    // A PATCH refused for its media type does not count; one more than the cap is refused.
    for (let patch = 2; patch <= MAX_PATCHES_PER_PEER; patch++) {
      const response = await http.app.inject({
        method: 'PATCH',
        url,
        headers: fragHeaders,
        payload: '',
      });
      assert.equal(response.statusCode, 204, `PATCH ${patch}`);
    }
    const over = await http.app.inject({ method: 'PATCH', url, headers: fragHeaders, payload: '' });
    assert.equal(over.statusCode, 429);
    assert.equal(over.headers['retry-after'], '60');
    assert.match(
      errorOf(over).message,
      new RegExp(`at most ${MAX_PATCHES_PER_PEER} PATCHes per peer`),
    );

    const gone = await http.app.inject({ method: 'DELETE', url });
    assert.equal(gone.statusCode, 200);
    assert.deepEqual(gone.json(), { ok: true });
    assert.equal(peer.ended, 'DELETE');
  });

  void it('caps the candidates of one peer over all its PATCHes', async () => {
    const { http, peers } = harness();
    await http.app.inject({ method: 'POST', url: '/offer', headers: sdpHeaders, payload: OFFER });
    const url = `/peers/${[...peers.keys()][0]}`;
    const many = (count: number, from: number): string =>
      Array.from(
        { length: count },
        (_, i) => `a=candidate:${from + i} 1 UDP 2122260223 192.0.2.1 ${50000 + from + i} typ host`,
      ).join('\r\n');
    const first = await http.app.inject({
      method: 'PATCH',
      url,
      headers: fragHeaders,
      payload: many(MAX_CANDIDATES_PER_PEER, 0),
    });
    assert.equal(first.statusCode, 204);
    const more = await http.app.inject({
      method: 'PATCH',
      url,
      headers: fragHeaders,
      payload: many(1, 100),
    });
    assert.equal(more.statusCode, 400);
    assert.equal(errorOf(more).code, ErrorCodes.CANDIDATE_REFUSED);
  });
});

void describe('signaling HTTP: the session resource', { timeout: 10_000 }, () => {
  const fakeSession = (id: string, state: string): Session =>
    ({
      id,
      state,
      remoteAddress: '127.0.0.1',
      stream: id,
      recording: undefined,
      answer: () => Promise.resolve('v=0'),
      addRemoteCandidates: () => undefined,
      close: () => undefined,
    }) as unknown as Session;

  function sessions(options: { closing?: boolean; maxSessions?: number; halfOpen?: number } = {}) {
    const http = new SignalingHttp({ limits: LIMITS, log: recordingLogger([]) });
    const registry = new Map<string, SessionEntry>();
    for (let i = 0; i < (options.halfOpen ?? 0); i++)
      registry.set(`s${i}`, { session: fakeSession(`s${i}`, 'connecting'), token: undefined });
    registerSessionResource({
      http,
      log: recordingLogger([]),
      limits: {
        maxSessions: options.maxSessions ?? 64,
        maxSessionsPerClient: 8,
        maxOffersPerMinute: 60,
        maxHalfOpenPerPrefix: 2,
        iceTimeoutMs: 5_000,
      },
      sessions: registry,
      claim: () => undefined,
      isClosing: () => options.closing === true,
      open: (id) => {
        const session = fakeSession(id, 'connecting');
        registry.set(id, { session, token: undefined });
        return session;
      },
    });
    http.seal();
    return http;
  }
  const post = (http: SignalingHttp, headers: Record<string, string>, payload: string) =>
    http.app.inject({ method: 'POST', url: '/offer', headers, payload });

  void it('reads SDP and JSON offers, answering each in its own form', async () => {
    const http = sessions();
    const bare = await post(http, sdpHeaders, OFFER);
    assert.equal(bare.statusCode, 201);
    assert.match(String(bare.headers.location), /^\/sessions\//);
    const json = await post(
      http,
      { 'content-type': 'application/json' },
      JSON.stringify({ sdp: OFFER, type: 'offer' }),
    );
    assert.equal(json.statusCode, 200);
    assert.equal(json.json<{ type: string }>().type, 'answer');
  });

  void it('refuses bad JSON offers 400 with their codes', async () => {
    const http = sessions();
    const json = { 'content-type': 'application/json' };
    for (const [body, code] of [
      ['[1,2]', ErrorCodes.SDP_INVALID],
      [JSON.stringify({ sdp: OFFER }), ErrorCodes.SDP_INVALID],
      [JSON.stringify({ sdp: 42, type: 'offer' }), ErrorCodes.SDP_INVALID],
      [
        JSON.stringify({ sdp: OFFER, type: 'offer', stream: 'bad name!' }),
        ErrorCodes.STREAM_INVALID,
      ],
    ] as const) {
      const response = await post(http, json, body);
      assert.equal(response.statusCode, 400, body);
      assert.equal(errorOf(response).code, code, body);
    }
  });

  void it('answers 503 with Retry-After when closing or full, 429 when a network holds its half-open slots', async () => {
    const closing = await post(sessions({ closing: true }), sdpHeaders, OFFER);
    assert.equal(closing.statusCode, 503);
    assert.equal(closing.headers['retry-after'], '5');
    assert.equal(errorOf(closing).code, ErrorCodes.SHUTTING_DOWN);
    const full = await post(sessions({ maxSessions: 1, halfOpen: 1 }), sdpHeaders, OFFER);
    assert.equal(full.statusCode, 503);
    assert.equal(errorOf(full).code, ErrorCodes.SERVER_FULL);
    const halfOpen = await post(sessions({ halfOpen: 2 }), sdpHeaders, OFFER);
    assert.equal(halfOpen.statusCode, 429);
    assert.equal(halfOpen.headers['retry-after'], '5');
    assert.match(errorOf(halfOpen).message, /network 127\.0\.0\.0\/24 already has 2 sessions/);
  });

  void it('answers PATCH and DELETE of an unknown session 404', async () => {
    const http = sessions();
    for (const method of ['PATCH', 'DELETE'] as const) {
      const response = await http.app.inject({
        method,
        url: '/sessions/nope',
        headers: fragHeaders,
        payload: '',
      });
      assert.equal(response.statusCode, 404);
      assert.deepEqual(errorOf(response), {
        code: ErrorCodes.SESSION_NOT_FOUND,
        message: 'no such session',
      });
    }
  });
});

void describe('signaling HTTP: admission', () => {
  void it('counts offers per minute and peers at once, under token and address', () => {
    const admission = new ClientAdmission({ maxPerClient: 2, maxOffersPerMinute: 3 });
    const first = admission.admit('t1', '192.0.2.1');
    const second = admission.admit('t1', '192.0.2.2');
    assert.ok('release' in first && 'release' in second);
    const third = admission.admit('t1', '192.0.2.3');
    assert.ok('status' in third);
    assert.equal(third.status, 429);
    assert.equal(third.code, ErrorCodes.TOO_MANY_REQUESTS);
    assert.match(third.reason, /token t1 already has 2 sessions/);
    first.release();
    first.release(); // once only
    const fourth = admission.admit('t1', '192.0.2.4');
    assert.ok('status' in fourth, 'the fourth offer of the minute is refused');
    assert.match(fourth.reason, /4 offers in the last minute \(limit 3\)/);
    assert.ok(fourth.retryAfterSeconds >= 1 && fourth.retryAfterSeconds <= 60);
  });

  void it('refuses a network whose half-open peers fill its share', () => {
    const peers = [
      { state: 'connecting', remoteAddress: '198.51.100.7' },
      { state: 'connected', remoteAddress: '198.51.100.8' },
      { state: 'connecting', remoteAddress: '203.0.113.1' },
    ];
    const base = { peers, connectingMs: 4_500 };
    assert.equal(halfOpenRefusal({ ...base, address: '198.51.100.9', limit: 2 }), undefined);
    const refused = halfOpenRefusal({ ...base, address: '198.51.100.9', limit: 1 });
    assert.equal(refused?.status, 429);
    assert.equal(refused?.retryAfterSeconds, 5);
    assert.equal(networkPrefix('::ffff:10.1.2.3'), '10.1.2.0/24');
    assert.equal(networkPrefix('2001:db8:1:2::5'), '2001:db8:1::/48');
  });
});

void describe('signaling HTTP: the viewer resource', { timeout: 10_000 }, () => {
  function viewers(maxViewersPerClient: number) {
    const http = new SignalingHttp({ limits: LIMITS, log: recordingLogger([]) });
    const open = new Map<string, { id: string; stream: string; closed?: string }>();
    // Only what the resource uses of the hub: no viewer peer, no WebRTC.
    const hub = {
      options: { maxViewers: 16, maxViewersPerClient },
      isClosed: false,
      isFull: false,
      open: ({ id, stream }: { id: string; stream: string }) => {
        const viewer = {
          id,
          stream,
          answer: () => Promise.resolve('v=0'),
          addRemoteCandidates: () => undefined,
          close: (code: string) => (viewer.closed = code),
          closed: undefined as string | undefined,
        };
        open.set(id, viewer);
        return viewer;
      },
      get: (id: string) => open.get(id),
      // No cluster: no stream is ingested on another node.
      locate: () => undefined,
      remoteTenantOf: () => undefined,
    } as unknown as ViewerHub;
    registerViewerResource({
      http,
      hub,
      maxOffersPerMinute: 60,
      log: recordingLogger([]),
      streams: {
        ownerOf: (stream) => (stream === 'cam' ? { token: undefined } : undefined),
        sessionOf: () => 'live-session',
      },
      streamOf: () => undefined,
      isClosing: () => false,
    });
    http.seal();
    return { http, open };
  }
  const offer = (body: Record<string, unknown>) => ({
    method: 'POST' as const,
    url: '/viewer/offer',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ type: 'offer', sdp: OFFER, ...body }),
  });

  void it('answers a viewer of a stream, and 404 for a stream it may not watch', async () => {
    const { http } = viewers(4);
    const ok = await http.app.inject(offer({ stream: 'cam' }));
    assert.equal(ok.statusCode, 200);
    const body = ok.json<{ viewer: string; stream: string; session: string }>();
    assert.equal(ok.headers.location, `/viewer/peers/${body.viewer}`);
    assert.deepEqual([body.stream, body.session], ['cam', 'live-session']);
    const other = await http.app.inject(offer({ stream: 'not-mine' }));
    assert.equal(other.statusCode, 404);
    assert.deepEqual(errorOf(other), {
      code: ErrorCodes.SESSION_NOT_FOUND,
      message: 'no such stream',
    });
    const unknown = await http.app.inject({ method: 'DELETE', url: '/viewer/peers/nope' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorOf(unknown).message, 'no such viewer');
  });

  void it('refuses a max-message-size too small for viewer frames before counting the offer', async () => {
    const { http, open } = viewers(1);
    const small = { stream: 'cam', sdp: `${OFFER}a=max-message-size:40\r\n` };
    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await http.app.inject(offer(small));
      assert.equal(refused.statusCode, 400);
      assert.equal(errorOf(refused).code, ErrorCodes.SDP_INVALID);
      assert.match(errorOf(refused).message, /max-message-size 40 is too small/);
    }
    // The refused offers held no viewer slot: the client's one slot is still free, then taken.
    assert.equal((await http.app.inject(offer({ stream: 'cam' }))).statusCode, 200);
    const second = await http.app.inject(offer({ stream: 'cam' }));
    assert.equal(second.statusCode, 429);
    assert.equal(second.headers['retry-after'], '5');
    // DELETE gives the slot back.
    const [viewer] = [...open.values()];
    const deleted = await http.app.inject({ method: 'DELETE', url: `/viewer/peers/${viewer?.id}` });
    assert.equal(deleted.statusCode, 200);
    assert.equal(viewer?.closed, ErrorCodes.SESSION_CLOSED);
  });
});
