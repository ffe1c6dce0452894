/**
 * Control messages (src/wire/control.ts): server messages encoded and decoded, and every
 * invalid one rejected. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import {
  MAX_CONTROL_MESSAGE_CHARS,
  PROTOCOL_V1,
  decodeServerMessage,
  encodeServerMessage,
} from '../../src/wire/index.js';
import type { ServerMessage } from '../../src/wire/index.js';
import { T } from './wire-helpers.js';

void describe('control messages', () => {
  const messages: ServerMessage[] = [
    {
      type: 'hello',
      session: 's-123',
      protocol: PROTOCOL_V1,
      maxFrameBytes: 64 * 1024 * 1024,
      maxPointsPerFrame: 5_000_000,
      maxFramesInReassembly: 2,
    },
    { type: 'receipt', seq: 7, ok: true, receivedAt: 1_732_579_200_123.5, points: 1000 },
    {
      type: 'receipt',
      seq: 8,
      ok: false,
      receivedAt: 1_732_579_200_124,
      code: ErrorCodes.FRAME_CHECKSUM,
      message: 'bad crc',
    },
    {
      type: 'closing',
      code: ErrorCodes.TOO_MANY_ERRORS,
      message: '16 frames in a row were rejected',
    },
  ];
  for (const message of messages) {
    void it(
      `round trip: ${message.type}${message.type === 'receipt' ? (message.ok ? ' ok' : ' rejected') : ''}`,
      T,
      () => {
        const text = encodeServerMessage(message);
        assert.equal(typeof text, 'string');
        assert.deepEqual(JSON.parse(text), message);
        assert.deepEqual(decodeServerMessage(text), message);
      },
    );
  }

  void it('unknown extra fields are dropped', T, () => {
    const decoded = decodeServerMessage(JSON.stringify({ ...messages[1], extra: 'x' }));
    assert.deepEqual(decoded, messages[1]);
  });

  const hello = messages[0] as ServerMessage;
  const invalid: [string, string][] = [
    ['not JSON', 'hello'],
    ['truncated JSON', '{"type":"hello"'],
    ['empty string', ''],
    ['an array', '[{"type":"closing","code":"PS_ERR_SESSION_CLOSED","message":"x"}]'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"receipt"'],
    ['unknown type', '{"type":"goodbye"}'],
    ['no type', '{"seq":1}'],
    ['hello without session', JSON.stringify({ ...hello, session: undefined })],
    ['hello with a numeric session', JSON.stringify({ ...hello, session: 5 })],
    ['hello without protocol', JSON.stringify({ ...hello, protocol: undefined })],
    ['hello without maxFrameBytes', JSON.stringify({ ...hello, maxFrameBytes: undefined })],
    ['hello with negative maxPointsPerFrame', JSON.stringify({ ...hello, maxPointsPerFrame: -1 })],
    [
      'hello with fractional maxFramesInReassembly',
      JSON.stringify({ ...hello, maxFramesInReassembly: 1.5 }),
    ],
    ['hello with a string limit', JSON.stringify({ ...hello, maxFrameBytes: '100' })],
    ['receipt without seq', '{"type":"receipt","ok":true,"receivedAt":1,"points":1}'],
    [
      'receipt with negative seq',
      '{"type":"receipt","seq":-1,"ok":true,"receivedAt":1,"points":1}',
    ],
    ['receipt without receivedAt', '{"type":"receipt","seq":1,"ok":true,"points":1}'],
    [
      'receipt with a string receivedAt',
      '{"type":"receipt","seq":1,"ok":true,"receivedAt":"now","points":1}',
    ],
    ['receipt without ok', '{"type":"receipt","seq":1,"receivedAt":1,"points":1}'],
    ['receipt with ok "true"', '{"type":"receipt","seq":1,"ok":"true","receivedAt":1,"points":1}'],
    ['ok receipt without points', '{"type":"receipt","seq":1,"ok":true,"receivedAt":1}'],
    [
      'rejected receipt without code',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"message":"x"}',
    ],
    [
      'rejected receipt with an unknown code',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"code":"PS_ERR_NOPE","message":"x"}',
    ],
    [
      'rejected receipt without message',
      '{"type":"receipt","seq":1,"ok":false,"receivedAt":1,"code":"PS_ERR_FRAME_CHECKSUM"}',
    ],
    ['closing with an unknown code', '{"type":"closing","code":"EPIPE","message":"x"}'],
    ['closing without message', '{"type":"closing","code":"PS_ERR_SESSION_CLOSED"}'],
    [
      'over-long text',
      JSON.stringify({ ...hello, session: 'x'.repeat(MAX_CONTROL_MESSAGE_CHARS) }),
    ],
  ];
  for (const [what, text] of invalid) {
    void it(`rejects ${what} -> PS_ERR_CONTROL_INVALID`, T, () => {
      assert.throws(
        () => decodeServerMessage(text),
        (error) => error instanceof PointstreamError && error.code === ErrorCodes.CONTROL_INVALID,
      );
    });
  }

  void it(`accepts exactly ${MAX_CONTROL_MESSAGE_CHARS} characters, not one more`, T, () => {
    const base = JSON.stringify({ ...hello, session: '' });
    const exact = JSON.stringify({
      ...hello,
      session: 'x'.repeat(MAX_CONTROL_MESSAGE_CHARS - base.length),
    });
    assert.equal(exact.length, MAX_CONTROL_MESSAGE_CHARS);
    assert.equal(decodeServerMessage(exact).type, 'hello');
    assert.throws(() => decodeServerMessage(`${exact} `), { code: ErrorCodes.CONTROL_INVALID });
  });
});
