import type { Channel } from '../../transport/channel.js';
import { CLIENT_HEARTBEAT_TEXT, HEARTBEAT_TEXT, encodeServerMessage } from '../../wire/control.js';
import type { ServerMessage } from '../../wire/control.js';

/** Sends a control message if the channel is still open. */
export function sendControl(channel: Channel, message: ServerMessage): void {
  try {
    if (channel.isOpen()) channel.send(encodeServerMessage(message));
  } catch {
    // The channel closed under us; the close handler reports it.
  }
}

/**
 * One channel's control messages out, and its heartbeats: it stamps when the channel last sent
 * something (a timestamp, no other per-message work) and knows whether the client asked for
 * heartbeats ({@link CLIENT_HEARTBEAT_TEXT}).
 */
export class ControlSender {
  readonly #channel: Channel;
  #lastSentAt = performance.now();
  #wanted = false;

  constructor(channel: Channel) {
    this.#channel = channel;
  }

  send(message: ServerMessage): void {
    this.#lastSentAt = performance.now();
    sendControl(this.#channel, message);
  }

  /** True when `text` (from the client) asks for heartbeats: it is then taken, not logged. */
  wanted(text: string): boolean {
    if (text !== CLIENT_HEARTBEAT_TEXT) return false;
    this.#wanted = true;
    return true;
  }

  /**
   * Sends a heartbeat if the client asked for them and nothing went out for `periodMs`. Returns
   * when the next one is due (`performance.now()` time), for the session's one timer.
   */
  heartbeat(now: number, periodMs: number): number {
    if (!this.#wanted) return now + periodMs;
    if (now - this.#lastSentAt >= periodMs) {
      this.#lastSentAt = now;
      try {
        if (this.#channel.isOpen()) this.#channel.send(HEARTBEAT_TEXT);
      } catch {
        // Closed under us; the close handler reports it.
      }
    }
    return this.#lastSentAt + periodMs;
  }
}
