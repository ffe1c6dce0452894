/**
 * The publisher's pure parts: its options (defaults, checks naming the field), the stream it
 * creates, the check of a stream that exists (what makes it unusable), and the payload a frame
 * goes on the bus as. Publishing itself, against a real nats-server: test/bus-publish.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { BUS_CHUNK_BYTES } from '../../src/bus/layout.js';
import { busPayloadOf } from '../../src/bus/publisher.js';
import type { BusFrame } from '../../src/bus/publisher.js';
import {
  BUS_MAX_MESSAGE_BYTES,
  DEFAULT_BUS_OPTIONS,
  busStreamConfig,
  nodeIdOf,
  redactUrl,
  resolveBusOptions,
  streamMismatches,
} from '../../src/bus/stream-config.js';
import { ErrorCodes } from '../../src/errors.js';
import { encodeNpyHeader } from '../../src/wire/npy.js';

const URL_ = 'nats://127.0.0.1:4222';

void describe('bus publisher: options', { timeout: 5_000 }, () => {
  void it('applies the defaults, the node id from the host name', () => {
    assert.deepEqual(resolveBusOptions({ url: URL_ }, 'lidar-box.example.org'), {
      url: URL_,
      nodeId: 'lidar-box-example-org',
      ...DEFAULT_BUS_OPTIONS,
    });
    assert.equal(DEFAULT_BUS_OPTIONS.maxAgeMs, 60_000);
    assert.equal(DEFAULT_BUS_OPTIONS.discard, 'old');
  });

  void it('sanitises host names into node ids', () => {
    assert.equal(nodeIdOf('host_1-a'), 'host_1-a');
    assert.equal(nodeIdOf('héllo wörld'), 'h-llo-w-rld');
    assert.equal(nodeIdOf('x'.repeat(80)), 'x'.repeat(64));
    assert.equal(nodeIdOf(''), 'node');
  });

  void it('refuses bad options with a TypeError naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ url: '' }, /"bus.url"/],
      [{ url: 'http://127.0.0.1:4222' }, /"bus.url"/],
      [{ url: 'nats://' }, /"bus.url"/],
      [{ url: URL_, nodeId: 'a.b' }, /"bus.nodeId"/],
      [{ url: URL_, streamName: 'PS.FRAMES' }, /"bus.streamName"/],
      [{ url: URL_, maxAgeMs: 0 }, /"bus.maxAgeMs"/],
      [{ url: URL_, maxBytes: 1.5 }, /"bus.maxBytes"/],
      [{ url: URL_, discard: 'oldest' }, /"bus.discard"/],
      [{ url: URL_, replicas: 6 }, /"bus.replicas"/],
      [{ url: URL_, publishTimeoutMs: -1 }, /"bus.publishTimeoutMs"/],
    ];
    for (const [options, field] of bad) {
      assert.throws(
        () => resolveBusOptions(options as { url: string }, 'host'),
        (error: TypeError & { code?: string }) =>
          error instanceof TypeError &&
          field.test(error.message) &&
          error.code === ErrorCodes.INVALID_OPTION,
        JSON.stringify(options),
      );
    }
    // Several servers, with or without a scheme.
    assert.equal(
      resolveBusOptions({ url: 'nats://a:4222,b:4223' }, 'h').url,
      'nats://a:4222,b:4223',
    );
  });

  void it('keeps passwords out of what it logs', () => {
    assert.equal(redactUrl('nats://user:secret@host:4222'), 'nats://***@host:4222');
    assert.equal(redactUrl('nats://a:1,nats://u:p@b:2'), 'nats://a:1,nats://***@b:2');
    assert.equal(redactUrl(URL_), URL_);
  });
});

void describe('bus publisher: the stream', { timeout: 5_000 }, () => {
  const options = resolveBusOptions({ url: URL_ }, 'h');
  const config = busStreamConfig(options);

  void it('creates a file stream of limits on ps.frames.>, messages of one chunk', () => {
    assert.equal(config.name, 'PS_FRAMES');
    assert.deepEqual(config.subjects, ['ps.frames.>']);
    assert.equal(config.retention, 'limits');
    assert.equal(config.storage, 'file');
    assert.equal(config.max_age, 60_000 * 1e6);
    assert.equal(config.max_bytes, 4 * 1024 ** 3);
    assert.equal(config.discard, 'old');
    assert.equal(config.num_replicas, 1);
    assert.equal(config.max_msg_size, BUS_MAX_MESSAGE_BYTES);
    assert.ok(BUS_MAX_MESSAGE_BYTES > BUS_CHUNK_BYTES);
    assert.equal(config.duplicate_window, 60_000 * 1e6, 'at most the max age');
    const long = busStreamConfig(resolveBusOptions({ url: URL_, maxAgeMs: 3_600_000 }, 'h'));
    assert.equal(long.duplicate_window, 120_000 * 1e6, "JetStream's default of 2 minutes");
    assert.deepEqual(streamMismatches(config, { url: URL_ }, options), []);
  });

  void it('finds what makes an existing stream unusable', () => {
    const cases: [Partial<typeof config>, RegExp][] = [
      [{ subjects: ['ps.frames.public.*'] }, /do not cover ps\.frames\.>/],
      [{ subjects: ['other.>'] }, /do not cover/],
      [{ retention: 'interest' }, /retention is interest/],
      [{ retention: 'workqueue' }, /retention is workqueue/],
      [{ no_ack: true }, /no_ack/],
      [{ sealed: true }, /sealed/],
      [{ max_msg_size: BUS_CHUNK_BYTES }, /max_msg_size 1048576 is under one chunk/],
      [{ max_msgs_per_subject: 10 }, /max_msgs_per_subject 10/],
    ];
    for (const [change, why] of cases) {
      const problems = streamMismatches({ ...config, ...change }, { url: URL_ }, options);
      assert.equal(problems.length, 1, JSON.stringify(change));
      assert.match(problems[0] ?? '', why);
    }
    // Wider subjects, no size limit, a memory store: usable.
    for (const change of [
      { subjects: ['>'] },
      { subjects: ['x.y', 'ps.>'] },
      { subjects: ['ps.*.>'] },
      { max_msg_size: -1 },
      { storage: 'memory' as const },
      { max_age: 0, max_bytes: -1, discard: 'new' as const, num_replicas: 3 },
    ])
      assert.deepEqual(streamMismatches({ ...config, ...change }, { url: URL_ }, options), []);
  });

  void it('checks the limits given explicitly, not the defaults', () => {
    const existing = { ...config, max_age: 30_000 * 1e6, discard: 'new' as const };
    assert.deepEqual(streamMismatches(existing, { url: URL_ }, options), []);
    const given = { url: URL_, maxAgeMs: 60_000, discard: 'old' as const, replicas: 1 };
    assert.deepEqual(streamMismatches(existing, given, resolveBusOptions(given, 'h')), [
      'its max age (ms) is 30000, not 60000 as asked',
      'its discard policy is new, not old as asked',
    ]);
  });
});

void describe('bus publisher: payloads', { timeout: 5_000 }, () => {
  const points = new Float32Array([1, 2, 3, 4, 5, 6]);
  const frame = (fields: Partial<BusFrame>): BusFrame => ({
    seq: 3,
    pointCount: 2,
    points,
    encoding: 'raw',
    npy: undefined,
    encoded: undefined,
    crc32: undefined,
    captureTime: undefined,
    receivedAt: 1,
    ...fields,
  });

  void it('carries raw and encoded frames as received, with the client CRC', () => {
    const npy = new Uint8Array([9, 9, 9]);
    const raw = busPayloadOf(frame({ npy, crc32: 1234 }));
    assert.equal(raw.bytes, npy, 'the received bytes themselves, not a copy');
    assert.deepEqual([raw.crc32, raw.encoding], [1234, 'npy']);
    const encoded = new Uint8Array([7, 7]);
    const q16 = busPayloadOf(frame({ encoding: 'q16', encoded, crc32: 99 }));
    assert.equal(q16.bytes, encoded);
    assert.deepEqual([q16.crc32, q16.encoding], [99, 'q16']);
  });

  void it('gives a plain frame its CRC, and a plain raw one an .npy header', () => {
    const npy = new Uint8Array([1, 2, 3, 4]);
    assert.equal(busPayloadOf(frame({ npy })).crc32, crc32(npy));
    const plain = busPayloadOf(frame({}));
    const header = encodeNpyHeader([2, 3]);
    assert.deepEqual(
      plain.bytes,
      Buffer.concat([header, new Uint8Array(points.buffer)]),
      'an .npy file of the points',
    );
    assert.equal(plain.crc32, crc32(plain.bytes));
    assert.equal(plain.encoding, 'npy');
  });
});
