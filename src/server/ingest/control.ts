import type { Channel } from '../../transport/channel.js';
import { encodeServerMessage } from '../../wire/control.js';
import type { ServerMessage } from '../../wire/control.js';

/** Sends a control message if the channel is still open. */
export function sendControl(channel: Channel, message: ServerMessage): void {
  try {
    if (channel.isOpen()) channel.send(encodeServerMessage(message));
  } catch {
    // The channel closed under us; the close handler reports it.
  }
}
