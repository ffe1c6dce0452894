import { describe, it } from 'node:test';
import { createChannelPair } from '../../src/transport/memory.js';
import { senderCases } from '../support/sender-behaviour.js';
import type { SenderEnv } from '../support/sender-behaviour.js';

/** The shared sender behaviour over the in-memory channel pair (src/transport/memory.ts). */
const memoryEnv: SenderEnv = {
  async connect() {
    const pair = createChannelPair({ protocol: 'pointstream/1' });
    while (!pair.a.isOpen()) await new Promise((resolve) => setTimeout(resolve, 0));
    return {
      sender: pair.a,
      server: pair.b,
      dispose: () => {
        pair.a.close();
        return Promise.resolve();
      },
    };
  },
};

void describe('frame sender core over the in-memory pair', { timeout: 10_000 }, () => {
  for (const testCase of senderCases) void it(testCase.name, () => testCase.run(memoryEnv));
});
