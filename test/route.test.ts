import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import { connect } from '../src/index.js';
import type { PointstreamServer } from '../src/index.js';
import { DEFAULT_MTU, LOOPBACK_MTU, MIN_MTU, Peer } from '../src/rtc/peer.js';
import { isLocalAddress, localRouteFor } from '../src/rtc/route.js';
import { LOOPBACK, runCli, startServer } from './helpers.js';

/** This machine's non-loopback IPv4 address, if it has one. */
function ownAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces()))
    for (const entry of entries ?? [])
      if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  return undefined;
}

void describe('route to the signaling host', { timeout: 30_000 }, () => {
  void it('binds to loopback at the loopback MTU for a server on 127.0.0.1, 0.0.0.0 or localhost', async () => {
    for (const url of [
      'http://127.0.0.1:8080/offer',
      'http://0.0.0.0:8080',
      'https://localhost:8443/offer',
    ]) {
      assert.deepEqual(await localRouteFor(url), { bindAddress: LOOPBACK, mtu: LOOPBACK_MTU }, url);
    }
    assert.deepEqual(await localRouteFor('http://[::1]:8080/offer'), {
      bindAddress: '::1',
      mtu: LOOPBACK_MTU,
    });
  });

  void it("binds to this machine's own address when the server is reached by it", async (t) => {
    const own = ownAddress();
    if (own === undefined) return t.skip('no non-loopback IPv4 address here');
    assert.equal(isLocalAddress(own), true);
    assert.deepEqual(await localRouteFor(`http://${own}:8080/offer`), {
      bindAddress: own,
      mtu: LOOPBACK_MTU,
    });
  });

  void it('keeps the safe defaults for a server elsewhere (nothing is sent to it)', async () => {
    // 192.0.2.0/24 is TEST-NET-1; .254 is not this machine's address.
    assert.equal(isLocalAddress('192.0.2.254'), false);
    assert.equal(await localRouteFor('http://192.0.2.254:8080/offer'), undefined);
    assert.equal(await localRouteFor('http://no-such-host.invalid/offer'), undefined);
  });
});

void describe('connect() picks the route by itself', { timeout: 60_000 }, () => {
  let server: PointstreamServer;
  after(() => server?.close());

  void it('a client given only the signaling URL of a local server binds to loopback at MTU 4096', async () => {
    server = await startServer();
    const client = await connect({ signalingUrl: `${server.url}/offer` });
    try {
      assert.deepEqual(client.route, { bindAddress: LOOPBACK, mtu: LOOPBACK_MTU });
      const sent = await client.send(new Float32Array(3000));
      assert.equal((await sent.receipt).ok, true);
    } finally {
      await client.close();
    }
  });

  void it('an explicit MTU turns the automatic choice off', async () => {
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { mtu: DEFAULT_MTU },
    });
    try {
      assert.deepEqual(client.route, { bindAddress: undefined, mtu: DEFAULT_MTU });
    } finally {
      await client.close();
    }
  });
});

void describe('MTU bounds', { timeout: 60_000 }, () => {
  void it(`connects at the smallest MTU (${MIN_MTU}) on both ends`, async () => {
    const server = await startServer({ rtc: { mtu: MIN_MTU } });
    try {
      const client = await connect({
        signalingUrl: `${server.url}/offer`,
        rtc: { bindAddress: LOOPBACK, mtu: MIN_MTU },
      });
      const sent = await client.send(new Float32Array(30_000));
      assert.equal((await sent.receipt).ok, true);
      await client.close();
    } finally {
      await server.close();
    }
  });

  void it('refuses an MTU that cannot work', () => {
    for (const mtu of [MIN_MTU - 1, 576, 4097]) {
      assert.throws(
        () => new Peer('test', { bindAddress: LOOPBACK, mtu }, {}),
        (error: { code?: string }) => error.code === 'PS_ERR_INVALID_OPTION',
        String(mtu),
      );
    }
  });
});

void describe('--mtu on the command line', { timeout: 60_000 }, () => {
  void it(`send and serve refuse an MTU under ${MIN_MTU} with exit 2`, async () => {
    for (const args of [
      ['send', '--signaling', 'http://127.0.0.1:9/offer', '--mtu', String(MIN_MTU - 1)],
      ['serve', '--host', '127.0.0.1', '--port', '0', '--mtu', '576'],
    ]) {
      const result = await runCli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, new RegExp(`--mtu.*from ${MIN_MTU} to`), args.join(' '));
    }
  });
});
