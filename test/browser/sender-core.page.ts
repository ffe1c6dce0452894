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

async function loopbackPair(): Promise<ChannelEnds> {
  const offerer = new RTCPeerConnection({ iceServers: [] });
  const answerer = new RTCPeerConnection({ iceServers: [] });
  const native = offerer.createDataChannel('pointstream', { ordered: true, protocol: PROTOCOL_V1 });
  const sender = new RtcChannel(native, offerer);
  const remote = new Promise<RtcChannel>((resolve) =>
    answerer.addEventListener('datachannel', (event) => resolve(new RtcChannel(event.channel))),
  );
  // Whole descriptions, candidates included: no trickling needed.
  await offerer.setLocalDescription(await offerer.createOffer());
  await gathered(offerer);
  await answerer.setRemoteDescription(offerer.localDescription as RTCSessionDescriptionInit);
  await answerer.setLocalDescription(await answerer.createAnswer());
  await gathered(answerer);
  await offerer.setRemoteDescription(answerer.localDescription as RTCSessionDescriptionInit);
  const server = await remote;
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
    try {
      await testCase.run(env);
      return null;
    } catch (error) {
      return error instanceof Error
        ? `${error.name}: ${error.message}\n${error.stack}`
        : String(error);
    }
  },
};
