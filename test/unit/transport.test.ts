import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createChannelPair } from '../../src/transport/memory.js';
import type { ChannelMessage } from '../../src/transport/channel.js';
import { withDefaults } from '../../src/util/options.js';

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

void describe('in-memory channel pair', { timeout: 5_000 }, () => {
  void it('opens both ends, delivers copies in order and reports closed once on each end', async () => {
    const pair = createChannelPair({ protocol: 'pointstream/1' });
    const received: ChannelMessage[] = [];
    let opened = 0;
    let closedA = 0;
    let closedB = 0;
    pair.a.listen({ open: () => opened++, closed: () => closedA++ });
    pair.b.listen({
      open: () => opened++,
      message: (m) => received.push(m),
      closed: () => closedB++,
    });
    assert.throws(() => pair.a.send('early'), /not open/);
    await tick();
    assert.equal(opened, 2);
    assert.equal(pair.b.protocol, 'pointstream/1');
    const bytes = new Uint8Array([1, 2, 3]);
    pair.a.send(bytes);
    pair.a.send('text');
    bytes[0] = 9; // the channel took a copy
    assert.equal(pair.a.bufferedAmount(), 7);
    pair.a.close();
    await tick();
    await tick();
    assert.deepEqual(received, [new Uint8Array([1, 2, 3]), 'text']);
    assert.equal(pair.a.bufferedAmount(), 0);
    assert.deepEqual([closedA, closedB], [1, 1]);
    assert.equal(pair.b.isOpen(), false);
    assert.throws(() => pair.b.send('late'), /not open/);
  });

  void it('reports drained when the buffer falls to the low-water mark, and holds while paused', async () => {
    const pair = createChannelPair({ maxMessageSize: 100 });
    let drained = 0;
    pair.a.listen({ drained: () => drained++ });
    await tick();
    pair.a.setLowWaterMark(50);
    pair.a.pause();
    for (let i = 0; i < 3; i++) pair.a.send(new Uint8Array(40));
    assert.throws(() => pair.a.send(new Uint8Array(101)), /exceeds the remote maximum 100/);
    await tick();
    assert.equal(pair.a.bufferedAmount(), 120);
    assert.equal(drained, 0);
    pair.a.resume();
    await tick();
    assert.equal(pair.a.bufferedAmount(), 0);
    assert.equal(drained, 1);
  });
});

void describe('withDefaults', () => {
  void it('lays defined options over the defaults and ignores undefined ones', () => {
    const defaults = { a: 1, b: 2 };
    assert.deepEqual(withDefaults(defaults, { a: undefined, b: 5 }), { a: 1, b: 5 });
    assert.deepEqual(withDefaults(defaults, undefined), { a: 1, b: 2 });
    assert.deepEqual(defaults, { a: 1, b: 2 });
  });
});
