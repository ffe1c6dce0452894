/**
 * What the cluster viewer tests share: a viewer written with node-datachannel (what the page does,
 * minus the drawing), and a wait for the heartbeat of the node that ingests a stream.
 */
import assert from 'node:assert/strict';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import type { NatsConnection } from '@nats-io/transport-node';
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

const LOOPBACK = '127.0.0.1';

/** A viewer written with node-datachannel: offers, trickles, reassembles and acknowledges frames. */
export class NodeViewer {
  readonly pc: PeerConnection;
  readonly dc: DataChannel;
  readonly frames: ViewerFrame[] = [];
  readonly controls: ViewerControl[] = [];
  readonly reassembler = new ViewerReassembler(10_000_000);
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
      this.dc.sendMessage(encodeViewerAck(frame.seq));
    });
    this.dc.onClosed(() => (this.closed = true));
  }

  /** Offers `{ stream }` to `baseUrl`, then trickles its candidates; returns the HTTP answer. */
  async offer(baseUrl: string, stream: string, token?: string): Promise<Response> {
    const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    await new Promise<void>((resolve) => {
      if (this.pc.gatheringState() === 'complete') resolve();
      else this.pc.onGatheringStateChange((state) => state === 'complete' && resolve());
    });
    const sdp = withoutCandidates((this.pc.localDescription() as { sdp: string }).sdp);
    const response = await fetch(`${baseUrl}/viewer/offer`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ sdp, type: 'offer', stream }),
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
