import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, connect } from '../src/index.js';
import { LOOPBACK, startServer } from './helpers.js';

const VALID_OFFER_LINES = [
  'v=0',
  'o=- 1 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
];

interface Case {
  name: string;
  method: string;
  path: string;
  contentType?: string;
  body?: string | Uint8Array;
  status: number;
  code: string;
  header?: [string, RegExp];
}

const sdp = (...extra: string[]): string => [...VALID_OFFER_LINES, ...extra].join('\r\n') + '\r\n';

const cases: Case[] = [
  {
    name: 'GET /offer',
    method: 'GET',
    path: '/offer',
    status: 405,
    code: ErrorCodes.HTTP_METHOD_NOT_ALLOWED,
    header: ['allow', /POST/],
  },
  {
    name: 'PUT /offer',
    method: 'PUT',
    path: '/offer',
    contentType: 'application/sdp',
    body: sdp(),
    status: 405,
    code: ErrorCodes.HTTP_METHOD_NOT_ALLOWED,
  },
  {
    name: 'POST /stats',
    method: 'POST',
    path: '/stats',
    contentType: 'application/json',
    body: '{}',
    status: 405,
    code: ErrorCodes.HTTP_METHOD_NOT_ALLOWED,
    header: ['allow', /GET/],
  },
  {
    name: 'unknown route',
    method: 'GET',
    path: '/nope',
    status: 404,
    code: ErrorCodes.HTTP_NOT_FOUND,
  },
  {
    name: 'text/plain offer',
    method: 'POST',
    path: '/offer',
    contentType: 'text/plain',
    body: sdp(),
    status: 415,
    code: ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
  },
  {
    name: 'no content type',
    method: 'POST',
    path: '/offer',
    body: new Uint8Array([1, 2, 3]),
    status: 415,
    code: ErrorCodes.HTTP_UNSUPPORTED_MEDIA_TYPE,
  },
  {
    name: 'body over 32 KiB',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: sdp(...Array.from({ length: 2000 }, (_, i) => `a=x-filler:${i}`)),
    status: 413,
    code: ErrorCodes.HTTP_BODY_TOO_LARGE,
  },
  {
    name: 'broken JSON',
    method: 'POST',
    path: '/offer',
    contentType: 'application/json',
    body: '{"sdp": "v=0',
    status: 400,
    code: ErrorCodes.HTTP_BAD_REQUEST,
  },
  {
    name: 'JSON array',
    method: 'POST',
    path: '/offer',
    contentType: 'application/json',
    body: '[1,2]',
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'JSON without type',
    method: 'POST',
    path: '/offer',
    contentType: 'application/json',
    body: JSON.stringify({ sdp: sdp() }),
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'JSON answer instead of offer',
    method: 'POST',
    path: '/offer',
    contentType: 'application/json',
    body: JSON.stringify({ sdp: sdp(), type: 'answer' }),
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'JSON sdp not a string',
    method: 'POST',
    path: '/offer',
    contentType: 'application/json',
    body: JSON.stringify({ sdp: 42, type: 'offer' }),
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'empty SDP',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: '',
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'binary SDP',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: 'v=0\r\n\u0000\u0001\u0002garbage',
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'not SDP at all',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: 'hello world',
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'SDP without a data channel',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n',
    status: 400,
    code: ErrorCodes.SDP_NO_DATACHANNEL,
  },
  {
    name: 'SDP with audio',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: sdp('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1'),
    status: 400,
    code: ErrorCodes.SDP_NO_DATACHANNEL,
  },
  {
    name: 'SDP with two data channels',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: sdp('m=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:1'),
    status: 400,
    code: ErrorCodes.SDP_NO_DATACHANNEL,
  },
  {
    name: 'SDP libdatachannel refuses',
    method: 'POST',
    path: '/offer',
    contentType: 'application/sdp',
    body: sdp(),
    status: 400,
    code: ErrorCodes.SDP_INVALID,
  },
  {
    name: 'PATCH unknown session',
    method: 'PATCH',
    path: '/sessions/AAAAAAAAAAAAAAAAAAAAAA',
    contentType: 'application/trickle-ice-sdpfrag',
    body: 'a=end-of-candidates\r\n',
    status: 404,
    code: ErrorCodes.SESSION_NOT_FOUND,
  },
  {
    name: 'DELETE unknown session',
    method: 'DELETE',
    path: '/sessions/AAAAAAAAAAAAAAAAAAAAAA',
    status: 404,
    code: ErrorCodes.SESSION_NOT_FOUND,
  },
];

void test(
  'hostile HTTP input gets precise statuses and codes, and the server still serves a client',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    for (const c of cases) {
      const headers: Record<string, string> = {};
      if (c.contentType) headers['content-type'] = c.contentType;
      const response = await fetch(`${server.url}${c.path}`, {
        method: c.method,
        headers,
        ...(c.body === undefined ? {} : { body: c.body }),
      });
      assert.equal(response.status, c.status, c.name);
      const body = (await response.json()) as { error?: { code?: string; message?: string } };
      assert.equal(body.error?.code, c.code, `${c.name}: ${body.error?.message}`);
      assert.ok((body.error?.message ?? '').length > 0, `${c.name} has a message`);
      if (c.header) assert.match(response.headers.get(c.header[0]) ?? '', c.header[1], c.name);
    }
    assert.equal(server.stats().sessions.length, 0, 'no session left behind by bad offers');
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    t.after(() => client.close());
    assert.equal((await (await client.send(new Float32Array(300))).receipt).ok, true);
  },
);

void test(
  'beyond maxSessions an offer gets 503 with Retry-After',
  { timeout: 30_000 },
  async (t) => {
    const server = await startServer({ limits: { maxSessions: 1 } });
    t.after(() => server.close());
    const first = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    t.after(() => first.close());
    await assert.rejects(
      connect({ signalingUrl: `${server.url}/offer`, rtc: { bindAddress: LOOPBACK } }),
      (error: Error & { code?: string; details?: Record<string, unknown> }) => {
        assert.equal(error.code, ErrorCodes.SIGNALING_REJECTED);
        assert.equal(error.details?.status, 503);
        assert.equal(error.details?.serverCode, ErrorCodes.SERVER_FULL);
        assert.equal(error.details?.retryAfter, '5');
        return true;
      },
    );
  },
);
