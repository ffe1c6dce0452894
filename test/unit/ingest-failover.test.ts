/**
 * The session side of failover over the in-memory pair: heartbeats (only to clients that asked,
 * only when the channel was otherwise quiet) and moving a session away (`closing`
 * `PS_ERR_SESSION_MOVED` while frames keep arriving and getting receipts). `Session.moveAway()`
 * over real WebRTC is in test/failover-client.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import { CLIENT_HEARTBEAT_TEXT } from '../../src/wire/control.js';
import { frameOf, openIngest, outcomes, pointsOf, sendFrame, until } from './ingest-harness.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const heartbeats = (messages: readonly { type: string }[]): number =>
  messages.filter((m) => m.type === 'heartbeat').length;

void describe('ingest: heartbeats', { timeout: 10_000 }, () => {
  void it('announces heartbeatMs and sends heartbeats on a quiet channel once asked', async () => {
    const h = await openIngest({ limits: { heartbeatMs: 50 } });
    try {
      assert.equal(h.messages[0]?.type === 'hello' && h.messages[0].heartbeatMs, 50);
      await sleep(200);
      assert.equal(heartbeats(h.messages), 0, 'none before the client asked (older clients)');
      h.client.send(CLIENT_HEARTBEAT_TEXT);
      await sleep(525);
      const count = heartbeats(h.messages);
      // One per 50 ms of silence: about 10; the timer may run late, never early.
      assert.ok(count >= 5 && count <= 11, `${count} heartbeats in 525 ms`);
      assert.equal(h.endings.length, 0, 'the session goes on');
    } finally {
      h.ingest.close(ErrorCodes.SESSION_CLOSED, 'test over');
    }
  });

  void it('sends no heartbeat while receipts flow more often than the period', async () => {
    const h = await openIngest({ limits: { heartbeatMs: 120 } });
    try {
      h.client.send(CLIENT_HEARTBEAT_TEXT);
      for (let seq = 0; seq < 12; seq++) {
        sendFrame(h.client, frameOf(seq, pointsOf(100, seq)));
        await sleep(40);
      }
      await until(() => h.receipts().length === 12);
      assert.equal(heartbeats(h.messages), 0, 'receipts every 40 ms leave no gap of 120 ms');
      await sleep(300);
      assert.ok(heartbeats(h.messages) >= 1, 'then silence brings them');
    } finally {
      h.ingest.close(ErrorCodes.SESSION_CLOSED, 'test over');
    }
  });

  void it('heartbeats stop when the session closes (no timer left behind)', async () => {
    const h = await openIngest({ limits: { heartbeatMs: 30 } });
    h.client.send(CLIENT_HEARTBEAT_TEXT);
    await sleep(100);
    h.ingest.close(ErrorCodes.SESSION_CLOSED, 'bye');
    await until(() => h.closing() !== undefined);
    const count = h.messages.length;
    assert.ok(heartbeats(h.messages) >= 1);
    await sleep(150);
    assert.equal(h.messages.length, count, 'nothing after the closing');
  });
});

void describe('ingest: moving a session away', { timeout: 10_000 }, () => {
  void it('sends closing SESSION_MOVED, then still receipts and delivers frames', async () => {
    const h = await openIngest();
    try {
      sendFrame(h.client, frameOf(0, pointsOf(500, 0)));
      await until(() => h.receipts().length === 1);
      // Frame 1 is half sent when the node starts draining.
      const frame1 = frameOf(1, pointsOf(500, 1));
      const chunks: Uint8Array[] = [];
      sendFrame({ send: (chunk: Uint8Array) => chunks.push(chunk.slice()) } as never, frame1);
      const half = Math.floor(chunks.length / 2);
      for (const chunk of chunks.slice(0, half)) h.client.send(chunk);
      await sleep(10);
      h.ingest.moveAway('draining');
      assert.equal(h.ingest.moving, true);
      await until(() => h.closing() !== undefined);
      assert.equal(h.closing()?.code, ErrorCodes.SESSION_MOVED);
      for (const chunk of chunks.slice(half)) h.client.send(chunk);
      await until(() => h.receipts().length === 2);
      assert.deepEqual(outcomes(h.messages), [[0, true], ErrorCodes.SESSION_MOVED, [1, true]]);
      assert.equal(h.frames.length, 2, 'the frame completed after the closing reached consumers');
      assert.equal(h.endings.length, 0, 'the session still runs: the client closes it');
      h.ingest.moveAway('again');
      await sleep(10);
      assert.equal(
        h.messages.filter((m) => m.type === 'closing').length,
        1,
        'moveAway is idempotent',
      );
      // A channel opened while moving is told at once, after its hello.
      const late = h.addChannel('pointstream/1');
      await until(() => late.messages.length >= 2);
      assert.deepEqual(
        late.messages.map((m) => (m.type === 'closing' ? m.code : m.type)),
        ['hello', ErrorCodes.SESSION_MOVED],
      );
    } finally {
      h.ingest.close(ErrorCodes.SESSION_CLOSED, 'test over');
    }
  });
});
