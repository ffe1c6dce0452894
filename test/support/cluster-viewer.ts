/**
 * What the viewer tests share: a viewer written with node-datachannel (what the page does, minus
 * the drawing), a wait for the heartbeat of the node that ingests a stream, and two nodes on a real
 * nats-server with a client streaming to one of them.
 */
import assert from 'node:assert/strict';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { connect } from '../../src/index.js';
import type { PointstreamClient, PointstreamServer, ServerOptions } from '../../src/index.js';
import { NodeDirectory } from '../../src/cluster/directory.js';
import { HEARTBEAT_INTERVAL_MS } from '../../src/cluster/protocol.js';
import type { NodeStream } from '../../src/cluster/protocol.js';
import { candidatesOf, toSdpFragment, withoutCandidates } from '../../src/signaling/sdp.js';
import {
  VIEWER_PROTOCOL,
  ViewerReassembler,
  decodeViewerControl,
  encodeViewerAck,
} from '../../src/wire/viewer.js';
import type { ViewerControl, ViewerFrame } from '../../src/wire/viewer.js';
import { LOOPBACK, startServer } from '../helpers.js';
import { NatsServer } from './nats.js';

/**
 * A viewer written with node-datachannel: offers, trickles, reassembles and acknowledges frames
 * (each as it arrives, unless `autoAck` is turned off: then `ack` does it).
 */
export class NodeViewer {
  readonly pc: PeerConnection;
  readonly dc: DataChannel;
  readonly frames: ViewerFrame[] = [];
  readonly controls: ViewerControl[] = [];
  readonly reassembler = new ViewerReassembler(10_000_000);
  autoAck = true;
  closed = false;
  location: string | undefined;

  constructor() {
    this.pc = new nodeDataChannel.PeerConnection('node-viewer', {
      iceServers: [],
      bindAddress: LOOPBACK,
    });
    this.pc.onStateChange(() => undefined);
    this.dc = this.pc.createDataChannel('viewer', { protocol: VIEWER_PROTOCOL });
    this.dc.onMessage((message) => {
      if (typeof message === 'string') {
        const control = decodeViewerControl(message);
        if (control) this.controls.push(control);
        return;
      }
      const frame = this.reassembler.push(
        message instanceof ArrayBuffer ? message : new Uint8Array(message),
      );
      if (frame === undefined) return;
      this.frames.push(frame);
      if (this.autoAck) this.ack(frame.seq);
    });
    this.dc.onClosed(() => (this.closed = true));
  }

  ack(seq: number): void {
    this.dc.sendMessage(encodeViewerAck(seq));
  }

  /**
   * Offers to `baseUrl`, then trickles its candidates (after the answer, as the Node client does);
   * returns the HTTP answer. `target`: a stream's name, or `{ session }` (that session's stream).
   */
  async offer(
    baseUrl: string,
    target: string | { session: string },
    token?: string,
  ): Promise<Response> {
    const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    await new Promise<void>((resolve) => {
      if (this.pc.gatheringState() === 'complete') resolve();
      else this.pc.onGatheringStateChange((state) => state === 'complete' && resolve());
    });
    const sdp = withoutCandidates((this.pc.localDescription() as { sdp: string }).sdp);
    const response = await fetch(`${baseUrl}/viewer/offer`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        sdp,
        type: 'offer',
        ...(typeof target === 'string' ? { stream: target } : target),
      }),
    });
    if (!response.ok) return response;
    const answer = (await response.clone().json()) as { sdp: string };
    this.location = response.headers.get('location') ?? undefined;
    this.pc.setRemoteDescription(answer.sdp, 'answer');
    const patch = await fetch(`${baseUrl}${this.location}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/trickle-ice-sdpfrag' },
      body: toSdpFragment(candidatesOf((this.pc.localDescription() as { sdp: string }).sdp)),
    });
    assert.equal(patch.status, 204);
    return response;
  }

  close(): void {
    try {
      this.dc.close();
    } catch {
      // already closed
    }
    this.pc.close();
  }
}

/**
 * Waits until node `nodeId`'s own heartbeat (src/cluster/member.ts) lists `stream`; throws after
 * three heartbeat intervals. Returns a no-op (callers' teardown lists keep their shape).
 */
export async function ensureListed(
  nc: NatsConnection,
  nodeId: string,
  stream: NodeStream,
): Promise<() => void> {
  const directory = await NodeDirectory.open(nc);
  try {
    const deadline = performance.now() + 3 * HEARTBEAT_INTERVAL_MS + 500;
    while (directory.nodeOfStream(stream.tenant, stream.stream)?.heartbeat.id !== nodeId) {
      if (performance.now() > deadline)
        throw new Error(`node ${nodeId}'s heartbeat does not list stream ${stream.stream}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    directory.close();
  }
  return () => undefined;
}

/**
 * A list of teardowns that `t.after` runs in reverse order of start (the bus goes last): push a
 * closer as soon as each thing is started.
 */
export function teardownList(t: { after(fn: () => Promise<void>): void }): (() => unknown)[] {
  const teardowns: (() => unknown)[] = [];
  t.after(async () => {
    for (const teardown of teardowns.reverse()) await teardown();
  });
  return teardowns;
}

export interface TwoNodes {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  /** Where the viewers go. */
  readonly nodeA: PointstreamServer;
  /** Where the client streams. */
  readonly nodeC: PointstreamServer;
  readonly client: PointstreamClient;
}

/**
 * A nats-server, a connection to it, node C and node A on it (WebRTC on 127.0.0.1, each its own
 * UDP port range), and a client streaming `stream` to node C, whose heartbeat lists it. Each is
 * pushed on `teardowns` as soon as it is started.
 */
export async function startTwoNodes(
  teardowns: (() => unknown)[],
  options: {
    /** The options both servers share (viewer, tokens). */
    server: Omit<ServerOptions, 'bus' | 'rtc'>;
    portsC: [number, number];
    portsA: [number, number];
    stream: string;
    token?: string;
    /** The stream's tenant on the bus: 'public' without auth. */
    tenant?: string;
    /** Called with the bus connection before the nodes start (to subscribe before they publish). */
    onBus?: (nc: NatsConnection) => void;
  },
): Promise<TwoNodes> {
  const nats = await NatsServer.start();
  teardowns.push(() => nats.close());
  const nc = await natsConnect({ servers: nats.url });
  teardowns.push(() => nc.close());
  options.onBus?.(nc);
  const nodeC = await startServer({
    ...options.server,
    bus: { url: nats.url, nodeId: 'C' },
    rtc: { bindAddress: LOOPBACK, portRange: options.portsC },
  });
  teardowns.push(() => nodeC.close());
  const nodeA = await startServer({
    ...options.server,
    bus: { url: nats.url, nodeId: 'A' },
    rtc: { bindAddress: LOOPBACK, portRange: options.portsA },
  });
  teardowns.push(() => nodeA.close());
  const client = await connect({
    signalingUrl: `${nodeC.url}/offer`,
    rtc: { bindAddress: LOOPBACK },
    stream: options.stream,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  teardowns.push(() => client.close());
  teardowns.push(
    await ensureListed(nc, 'C', {
      tenant: options.tenant ?? 'public',
      stream: options.stream,
      session: client.sessionId ?? '',
    }),
  );
  return { nats, nc, nodeA, nodeC, client };
}
