import { PROTOCOL_V1 } from '../../src/wire/chunk.js';
import { RtcChannel } from '../../web/shared/rtc-channel.js';
import { gathered } from '../../web/shared/signaling.js';
import { senderCases } from '../support/sender-behaviour.js';
import type { ChannelEnds, SenderEnv } from '../support/sender-behaviour.js';

/**
 * The shared sender behaviour (test/support/sender-behaviour.ts) in Chromium, over the
 * RTCDataChannel adapter: two RTCPeerConnections in this page, one playing the server.
 * test/browser-sender-core.test.ts bundles this file and calls `window.senderSuite.run(name)`.
 */

/** The pair of the case running now, to describe it when a case hangs. */
let current:
  | { offerer: RTCPeerConnection; answerer: RTCPeerConnection; channels: RTCDataChannel[] }
  | undefined;

/** Where the running case's connections and channels stand (for a failure message). */
function describePair(): string {
  if (current === undefined) return 'no pair';
  const pc = (name: string, c: RTCPeerConnection): string =>
    `${name}: connection ${c.connectionState}, ice ${c.iceConnectionState}, gathering ${c.iceGatheringState}, signaling ${c.signalingState}`;
  const channels = current.channels.map(
    (c) => `${c.label} ${c.readyState} buffered ${c.bufferedAmount}`,
  );
  return [pc('offerer', current.offerer), pc('answerer', current.answerer), ...channels].join('; ');
}

async function loopbackPair(): Promise<ChannelEnds> {
  const offerer = new RTCPeerConnection({ iceServers: [] });
  const answerer = new RTCPeerConnection({ iceServers: [] });
  // One pre-negotiated channel on each side (same id): no in-band open handshake. With the
  // handshake, Chromium under load sometimes left the answerer's first message in its buffer for
  // good (bufferedAmount stuck at the hello's 190 bytes, both connections "connected").
  const init: RTCDataChannelInit = {
    ordered: true,
    protocol: PROTOCOL_V1,
    negotiated: true,
    id: 0,
  };
  const native = offerer.createDataChannel('pointstream', init);
  const answererNative = answerer.createDataChannel('pointstream', init);
  current = { offerer, answerer, channels: [native, answererNative] };
  const sender = new RtcChannel(native, offerer);
  const server = new RtcChannel(answererNative, answerer);
  // Whole descriptions, candidates included: no trickling needed.
  await offerer.setLocalDescription(await offerer.createOffer());
  await gathered(offerer);
  await answerer.setRemoteDescription(offerer.localDescription as RTCSessionDescriptionInit);
  await answerer.setLocalDescription(await answerer.createAnswer());
  await gathered(answerer);
  await offerer.setRemoteDescription(answerer.localDescription as RTCSessionDescriptionInit);
  if (!sender.isOpen())
    await new Promise<void>((resolve) => native.addEventListener('open', () => resolve()));
  if (!server.isOpen())
    await new Promise<void>((resolve) => server.native.addEventListener('open', () => resolve()));
  return {
    sender,
    server,
    dispose() {
      offerer.close();
      answerer.close();
      return Promise.resolve();
    },
  };
}

const env: SenderEnv = { connect: loopbackPair };

/** Longest a case may take: each runs in well under a second here. */
const CASE_TIMEOUT_MS = 20_000;

declare global {
  interface Window {
    senderSuite: { names: string[]; run(name: string): Promise<string | null> };
  }
}

window.senderSuite = {
  names: senderCases.map((testCase) => testCase.name),
  /** Runs one case; resolves with null when it passed, else with what failed. */
  async run(name) {
    const testCase = senderCases.find((candidate) => candidate.name === name);
    if (testCase === undefined) return `no case named ${name}`;
    // A case that hangs says where its connection stood, instead of only timing out in Node.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`case still running after ${CASE_TIMEOUT_MS} ms: ${describePair()}`),
        CASE_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([testCase.run(env).then(() => null), hung]);
    } catch (error) {
      return error instanceof Error
        ? `${error.name}: ${error.message}\n${error.stack}`
        : String(error);
    } finally {
      clearTimeout(timer);
    }
  },
};
