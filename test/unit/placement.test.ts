import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeHeartbeat } from '../../src/cluster/protocol.js';
import { Placement, SETTLED_MS } from '../../src/front/placement.js';

function node(id: string, fields: Partial<NodeHeartbeat> = {}): NodeHeartbeat {
  return {
    v: 1,
    id,
    version: '0.0.0',
    startedAt: 1,
    at: 1000,
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
    ...fields,
  };
}

/** A seeded generator (mulberry32): repeatable tie-breaks. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function place(placement: Placement, nodes: NodeHeartbeat[], offers: number): Map<string, number> {
  const counts = new Map(nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < offers; i++) {
    const chosen = placement.choose(nodes, 'session');
    assert.ok(chosen, `offer ${i} placed`);
    counts.set(chosen.id, (counts.get(chosen.id) ?? 0) + 1);
  }
  return counts;
}

void describe('placement', () => {
  void it('spreads 6 offers over 3 equal nodes 2/2/2 within one heartbeat', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const nodes = [node('A'), node('B'), node('C')];
      const counts = place(new Placement({ random: seeded(seed) }), nodes, 6);
      assert.deepEqual([...counts.values()], [2, 2, 2], `seed ${seed}`);
    }
  });

  void it('capacities 2/4/4 and 8 offers: none over capacity, spread within 1, then full', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const nodes = [node('A', { maxSessions: 2 }), node('B'), node('C')];
      const placement = new Placement({ random: seeded(seed) });
      const counts = place(placement, nodes, 8);
      const values = [...counts.values()];
      assert.ok(counts.get('A')! <= 2 && counts.get('B')! <= 4 && counts.get('C')! <= 4);
      assert.ok(
        Math.max(...values) - Math.min(...values) <= 1,
        `seed ${seed}: ${values.join('/')}`,
      );
      place(placement, nodes, 2);
      assert.equal(placement.choose(nodes, 'session'), undefined, 'all 10 slots taken');
    }
  });

  void it('never chooses a draining, bus-unhealthy or full node', () => {
    const placement = new Placement({ random: seeded(7) });
    const nodes = [
      node('A', { draining: true }),
      node('B', { busHealthy: false }),
      node('C', { sessions: 4 }),
      node('D', { maxSessions: 3, sessions: 1 }),
    ];
    const counts = place(placement, nodes, 2);
    assert.deepEqual(Object.fromEntries(counts), { A: 0, B: 0, C: 0, D: 2 });
    assert.equal(placement.choose(nodes, 'session'), undefined);
  });

  void it('skips excluded nodes (those that failed this request)', () => {
    const placement = new Placement({ random: seeded(3) });
    const nodes = [node('A'), node('B', { sessions: 2 })];
    assert.equal(placement.choose(nodes, 'session', { exclude: new Set(['A']) })?.id, 'B');
    assert.equal(placement.choose(nodes, 'session', { exclude: new Set(['A', 'B']) }), undefined);
  });

  void it('a reservation lasts until a heartbeat lists its session, however the heartbeats fall', () => {
    let now = 0;
    const placement = new Placement({ now: () => now });
    const first = node('A', { maxSessions: 2 });
    assert.ok(placement.choose([first], 'session'));
    assert.ok(placement.choose([first], 'session'));
    assert.equal(placement.choose([first], 'session'), undefined);
    assert.equal(placement.load(first, 'session').reserved, 2);
    // A heartbeat written while both offers were still being answered counts neither.
    now = 50;
    const during = node('A', { maxSessions: 2, at: 2000 });
    assert.equal(placement.load(during, 'session').free, 0, 'still reserved');
    placement.answered(first, 'session', 'A.one');
    placement.answered(first, 'session', 'A.two');
    // The next one lists A.one (counted now), not A.two (its offer failed on the node's side).
    now = 1_000;
    const after = node('A', {
      maxSessions: 2,
      at: 3000,
      sessions: 1,
      streams: [{ tenant: 'public', stream: 's', session: 'A.one' }],
    });
    assert.deepEqual(placement.load(after, 'session'), {
      id: 'A',
      used: 1,
      capacity: 2,
      reserved: 1,
      free: 0,
    });
    // Unlisted after SETTLED_MS: the node's own count is right, the slot is free again.
    now = 1_000 + SETTLED_MS;
    assert.equal(placement.load(after, 'session').free, 1);
    const chosen = placement.choose([after], 'session');
    assert.ok(chosen);
    assert.equal(placement.choose([after], 'session'), undefined);
    placement.release(chosen, 'session');
    assert.equal(placement.load(after, 'session').free, 1, 'a released slot is free again');
  });

  void it('two fronts with the same stale view do not always pick the same node when tied', () => {
    const nodes = [node('A'), node('B'), node('C')];
    const one = seeded(11);
    const two = seeded(99);
    let same = 0;
    const trials = 200;
    for (let i = 0; i < trials; i++) {
      const a = new Placement({ random: one }).choose(nodes, 'session');
      const b = new Placement({ random: two }).choose(nodes, 'session');
      if (a?.id === b?.id) same++;
    }
    // Independent uniform picks among 3 agree about a third of the time.
    assert.ok(same > 20 && same < 120, `${same} of ${trials} picks agreed`);
    // And every node gets picked first by some front.
    const first = new Set<string>();
    const random = seeded(5);
    for (let i = 0; i < 60; i++) first.add(new Placement({ random }).choose(nodes, 'session')!.id);
    assert.deepEqual([...first].sort(), ['A', 'B', 'C']);
  });

  void it('places a viewer on the node that ingests its stream while it has a viewer slot', () => {
    const placement = new Placement({ random: seeded(1) });
    const stream = { tenant: 'public', stream: 'lidar', session: 'C.x' };
    const nodes = [
      node('A'),
      node('B', { viewers: 0 }),
      node('C', { viewers: 2, maxViewers: 4, streams: [stream] }),
    ];
    const watch = { tenant: 'public', stream: 'lidar' };
    assert.equal(placement.choose(nodes, 'viewer', { watch })?.id, 'C');
    assert.equal(placement.choose(nodes, 'viewer', { watch })?.id, 'C');
    // C is full (2 + 2 reserved): the node with the most free viewer slots.
    const next = placement.choose(nodes, 'viewer', { watch })?.id;
    assert.ok(next === 'A' || next === 'B', `got ${next}`);
    // Another tenant's stream of the same name is not C's.
    const other = new Placement({ random: seeded(2) });
    const roomy = [node('A', { maxViewers: 8 }), node('C', { streams: [stream] })];
    assert.equal(
      other.choose(roomy, 'viewer', { watch: { tenant: 'tX', stream: 'lidar' } })?.id,
      'A',
    );
    assert.equal(other.choose(roomy, 'viewer', { watch })?.id, 'C');
    assert.equal(
      new Placement().choose([node('A'), node('C', { viewers: 3 })], 'viewer', {
        watch: { tenant: 'public', stream: 'x', node: 'C' },
      })?.id,
      'C',
    );
    // Sessions and viewers are counted apart.
    assert.equal(placement.load(nodes[2]!, 'session').reserved, 0);
  });
});
