import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SafeEmitter } from '../../src/util/emitter.js';

interface Events {
  tick: number;
  done: string;
}

class Ticker extends SafeEmitter<Events> {
  readonly errors: { error: unknown; event: string }[] = [];
  constructor() {
    super((error, event) => this.errors.push({ error, event }));
  }
  fire<K extends keyof Events>(event: K, payload: Events[K]): boolean {
    return this.emit(event, payload);
  }
}

void describe('SafeEmitter', () => {
  void it('calls listeners in order, once-listeners once, and says whether any listened', () => {
    const ticker = new Ticker();
    const seen: string[] = [];
    assert.equal(ticker.fire('tick', 0), false);
    ticker.on('tick', (n) => seen.push(`on ${n}`));
    ticker.once('tick', (n) => seen.push(`once ${n}`));
    assert.equal(ticker.fire('tick', 1), true);
    ticker.fire('tick', 2);
    assert.deepEqual(seen, ['on 1', 'once 1', 'on 2']);
  });

  void it('a throwing listener is reported and the others still run', () => {
    const ticker = new Ticker();
    const seen: number[] = [];
    const boom = new Error('boom');
    ticker.on('tick', () => {
      throw boom;
    });
    ticker.on('tick', (n) => seen.push(n));
    ticker.fire('tick', 7);
    assert.deepEqual(seen, [7]);
    assert.deepEqual(ticker.errors, [{ error: boom, event: 'tick' }]);
  });

  void it('off removes the listener added last with that function; removal during emit is safe', () => {
    const ticker = new Ticker();
    const seen: string[] = [];
    const listener = (n: number): void => void seen.push(`a${n}`);
    ticker.on('tick', listener);
    ticker.on('tick', listener);
    ticker.off('tick', listener);
    ticker.fire('tick', 1);
    assert.deepEqual(seen, ['a1']);
    // A listener that removes a later one: this emit still calls it (as EventEmitter does).
    const later = (n: number): void => void seen.push(`later${n}`);
    ticker.on('tick', () => ticker.off('tick', later));
    ticker.on('tick', later);
    ticker.fire('tick', 2);
    ticker.fire('tick', 3);
    assert.deepEqual(seen, ['a1', 'a2', 'later2', 'a3']);
  });

  void it('next resolves with the next event, times out, and honours a signal', async () => {
    const ticker = new Ticker();
    const next = ticker.next('done');
    ticker.fire('done', 'yes');
    assert.equal(await next, 'yes');
    await assert.rejects(ticker.next('done', { timeoutMs: 5 }), { name: 'TimeoutError' });
    const controller = new AbortController();
    const aborted = ticker.next('done', { signal: controller.signal });
    controller.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    assert.equal(ticker.fire('done', 'nobody'), false, 'the waiters removed themselves');
  });
});
