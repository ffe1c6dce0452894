/** The cluster's wire (src/cluster/protocol.ts): round trips, every bad field, the size cap, peer ids. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_CLUSTER_MESSAGE_BYTES,
  MAX_HEARTBEAT_STREAMS,
  clusterPeerId,
  encodeClusterMessage,
  nodeOfPeerId,
  parseForwardedReply,
  parseForwardedRequest,
  parseHeartbeat,
  previewSubject,
  signalSubject,
  wantSubject,
} from '../../src/cluster/protocol.js';
import type {
  ForwardedReply,
  ForwardedRequest,
  NodeHeartbeat,
} from '../../src/cluster/protocol.js';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';

const heartbeat: NodeHeartbeat = {
  v: 1,
  id: 'node-1',
  version: '1.2.3',
  startedAt: 1_700_000_000_000,
  at: 1_700_000_005_000,
  sessions: 2,
  maxSessions: 64,
  viewers: 1,
  maxViewers: 16,
  ingressBytesPerSec: 48_000_000.5,
  cpu: 0.75,
  loopLagMs: 12.5,
  busHealthy: true,
  draining: false,
  streams: [
    { tenant: 'public', stream: 'lidar.front', session: 'node-1.abc' },
    {
      tenant: 'public',
      stream: 'cam',
      session: 'node-1.def',
      framesReceived: 12,
      framesRejected: 1,
      bytesReceived: 144_000_000,
      pointsReceived: 12_000_000,
      lastFrameAt: 1_796_284_800_123,
    },
  ],
};
const request: ForwardedRequest = {
  v: 1,
  method: 'POST',
  url: '/offer?stream=lidar',
  headers: { authorization: 'Bearer x', 'content-type': 'application/sdp' },
  remoteAddress: '203.0.113.9',
  body: 'v=0\r\n',
};
const reply: ForwardedReply = {
  v: 1,
  status: 201,
  headers: { 'content-type': 'application/sdp', location: '/sessions/node-1.abc' },
  body: 'v=0\r\n',
};

const bytesOf = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** `parse(bytes)` throws PS_ERR_BUS_MESSAGE_INVALID whose message matches `why`. */
function rejects(parse: (bytes: Uint8Array) => unknown, bytes: Uint8Array, why: RegExp): void {
  assert.throws(
    () => parse(bytes),
    (error: unknown) =>
      error instanceof PointstreamError &&
      error.code === ErrorCodes.BUS_MESSAGE_INVALID &&
      why.test(error.message),
    why.source,
  );
}

void describe('cluster protocol', () => {
  void it('round-trips a heartbeat, a forwarded request and a reply', () => {
    assert.deepEqual(parseHeartbeat(encodeClusterMessage(heartbeat)), heartbeat);
    assert.deepEqual(parseForwardedRequest(encodeClusterMessage(request)), request);
    assert.deepEqual(parseForwardedReply(encodeClusterMessage(reply)), reply);
    // Header names are read lower-case.
    const upper = parseForwardedRequest(
      bytesOf({ ...request, headers: { Authorization: 'Bearer y' } }),
    );
    assert.deepEqual(upper.headers, { authorization: 'Bearer y' });
  });

  void it('rejects every bad heartbeat field with PS_ERR_BUS_MESSAGE_INVALID', () => {
    const bad: [Partial<Record<keyof NodeHeartbeat, unknown>>, RegExp][] = [
      [{ v: 2 }, /layout version/],
      [{ id: 'has space' }, /bad id/],
      [{ id: 'x'.repeat(65) }, /bad id/],
      [{ version: 7 }, /bad version/],
      [{ version: 'v'.repeat(65) }, /bad version/],
      [{ startedAt: -1 }, /bad startedAt/],
      [{ at: 1.5 }, /bad at/],
      [{ sessions: '2' }, /bad sessions/],
      [{ maxSessions: null }, /bad maxSessions/],
      [{ viewers: -3 }, /bad viewers/],
      [{ maxViewers: Number.MAX_SAFE_INTEGER + 2 }, /bad maxViewers/],
      [{ ingressBytesPerSec: -1 }, /bad ingressBytesPerSec/],
      [{ cpu: 'high' }, /bad cpu/],
      [{ loopLagMs: -0.5 }, /bad loopLagMs/],
      [{ busHealthy: 1 }, /bad busHealthy/],
      [{ draining: 'no' }, /bad draining/],
      [{ streams: {} }, /bad streams/],
      [{ streams: [null] }, /bad streams entry/],
      [{ streams: [{ tenant: '', stream: 'a', session: 's' }] }, /bad streams entry/],
      [{ streams: [{ tenant: 'public', stream: '', session: 's' }] }, /bad streams entry/],
      [{ streams: [{ tenant: 'public', stream: 'a', session: 5 }] }, /bad streams entry/],
      [
        { streams: [{ tenant: 'public', stream: 'a', session: 's', framesReceived: -1 }] },
        /bad streams entry framesReceived/,
      ],
      [
        { streams: [{ tenant: 'public', stream: 'a', session: 's', lastFrameAt: 'soon' }] },
        /bad streams entry lastFrameAt/,
      ],
      [
        { streams: [{ tenant: 'public', stream: 'a', session: 's'.repeat(129) }] },
        /bad streams entry/,
      ],
    ];
    for (const [fields, why] of bad)
      rejects(parseHeartbeat, bytesOf({ ...heartbeat, ...fields }), why);
    const many = Array.from({ length: MAX_HEARTBEAT_STREAMS + 1 }, () => ({
      tenant: 'p',
      stream: 's',
      session: 'x',
    }));
    rejects(parseHeartbeat, bytesOf({ ...heartbeat, streams: many }), /bad streams/);
    // Not an object, not JSON, not UTF-8.
    rejects(parseHeartbeat, bytesOf([heartbeat]), /not a JSON object/);
    rejects(parseHeartbeat, bytesOf(null), /not a JSON object/);
    rejects(parseHeartbeat, new TextEncoder().encode('{"v":1'), /not UTF-8 JSON/);
    rejects(parseHeartbeat, new Uint8Array([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/);
  });

  void it('rejects every bad forwarded request and reply field', () => {
    const badRequests: [Partial<Record<keyof ForwardedRequest, unknown>>, RegExp][] = [
      [{ v: 0 }, /layout version/],
      [{ method: 'GET' }, /bad method/],
      [{ method: 'post' }, /bad method/],
      [{ url: 'offer' }, /bad url/],
      [{ url: `/${'a'.repeat(2048)}` }, /bad url/],
      [{ url: 5 }, /bad url/],
      [{ remoteAddress: 'x'.repeat(65) }, /bad remoteAddress/],
      [{ remoteAddress: undefined }, /bad remoteAddress/],
      [{ body: { sdp: 'v=0' } }, /bad body/],
      [{ headers: [] }, /headers must be an object/],
      [{ headers: 'authorization: x' }, /headers must be an object/],
      [{ headers: { authorization: 1 } }, /header authorization is not a string/],
    ];
    for (const [fields, why] of badRequests)
      rejects(parseForwardedRequest, bytesOf({ ...request, ...fields }), why);
    const badReplies: [Partial<Record<keyof ForwardedReply, unknown>>, RegExp][] = [
      [{ v: '1' }, /layout version/],
      [{ status: 99 }, /bad status/],
      [{ status: 600 }, /bad status/],
      [{ status: 200.5 }, /bad status/],
      [{ body: null }, /bad body/],
      [{ headers: null }, /headers must be an object/],
    ];
    for (const [fields, why] of badReplies)
      rejects(parseForwardedReply, bytesOf({ ...reply, ...fields }), why);
  });

  void it('caps a message before parsing it, and refuses to encode one over the cap', () => {
    // Not JSON at all: refused for its size, so the parser never ran.
    const huge = new Uint8Array(MAX_CLUSTER_MESSAGE_BYTES + 1).fill(0x78);
    for (const parse of [parseHeartbeat, parseForwardedRequest, parseForwardedReply])
      rejects(parse, huge, new RegExp(`${MAX_CLUSTER_MESSAGE_BYTES + 1} bytes > `));
    const big = { ...reply, body: 'x'.repeat(MAX_CLUSTER_MESSAGE_BYTES) };
    assert.throws(
      () => encodeClusterMessage(big),
      (error: unknown) =>
        error instanceof PointstreamError && error.code === ErrorCodes.BUS_MESSAGE_INVALID,
    );
    // Just under the cap is fine.
    const fits = { ...reply, body: '' };
    const room = MAX_CLUSTER_MESSAGE_BYTES - encodeClusterMessage(fits).length;
    assert.equal(
      parseForwardedReply(encodeClusterMessage({ ...fits, body: 'y'.repeat(room) })).body.length,
      room,
    );
  });

  void it('names subjects, and peer ids name their node', () => {
    assert.equal(signalSubject('node-1'), 'ps.node.node-1.signal');
    assert.equal(wantSubject('public', 'lidar.front'), 'ps.want.public.lidar~front');
    assert.equal(previewSubject('t0a1b2c3d', 'cam'), 'ps.preview.t0a1b2c3d.cam');
    const id = clusterPeerId('node-1', 'AbC_d-0123456789abcdef');
    assert.equal(id, 'node-1.AbC_d-0123456789abcdef');
    assert.equal(nodeOfPeerId(id), 'node-1');
    // Ids without a node, or naming no valid node: none.
    assert.equal(nodeOfPeerId('AbC_d-0123456789abcdef'), undefined);
    assert.equal(nodeOfPeerId('.abc'), undefined);
    assert.equal(nodeOfPeerId('bad node.abc'), undefined);
    assert.equal(nodeOfPeerId(`${'n'.repeat(65)}.abc`), undefined);
  });
});
