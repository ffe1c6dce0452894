import { after, describe, it } from 'node:test';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel } from 'node-datachannel';
import { Peer } from '../src/rtc/peer.js';
import { fromNodeDataChannel } from '../src/transport/node-channel.js';
import { PROTOCOL_V1 } from '../src/wire/chunk.js';
import { senderCases } from './support/sender-behaviour.js';
import type { ChannelEnds, SenderEnv } from './support/sender-behaviour.js';

// The shared sender behaviour (test/support/sender-behaviour.ts) over real node-datachannel
// channels: a loopback Peer pair on 127.0.0.1, NodeChannel on both ends.
after(() => nodeDataChannel.cleanup());

async function loopbackPair(): Promise<ChannelEnds> {
  const rtc = { bindAddress: '127.0.0.1', maxMessageSize: 262_144 };
  let answered: ((channel: DataChannel) => void) | undefined;
  const remoteChannel = new Promise<DataChannel>((resolve) => (answered = resolve));
  const offerer = new Peer('sender', rtc, {});
  const answerer = new Peer('server', rtc, { dataChannel: (channel) => answered?.(channel) });
  const native = offerer.connection.createDataChannel('pointstream', { protocol: PROTOCOL_V1 });
  const sender = fromNodeDataChannel(native);
  const opened = new Promise<void>((resolve) => sender.listen({ open: resolve }));
  await offerer.gathered();
  const answer = await answerer.answer(offerer.localDescription().sdp);
  offerer.setRemoteDescription(answer, 'answer');
  // The server end listens from the moment it exists, as the server's receiver does.
  const server = fromNodeDataChannel(await remoteChannel);
  await opened;
  return {
    sender,
    server,
    async dispose() {
      sender.close();
      server.close();
      await new Promise((resolve) => setTimeout(resolve, 20));
      offerer.connection.close();
      answerer.connection.close();
    },
  };
}

const nodeEnv: SenderEnv = { connect: loopbackPair };

void describe('frame sender core over node-datachannel on loopback', { timeout: 60_000 }, () => {
  for (const testCase of senderCases) void it(testCase.name, () => testCase.run(nodeEnv));
});
