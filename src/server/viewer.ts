import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RtcOptions } from '../rtc/peer.js';
import type { Logger } from '../util/logger.js';
import type { ReceivedFrame } from './types.js';

/** Options of the live viewers a server feeds (`ServerOptions.viewer`). */
export interface ViewerOptions {
  /** TODO(issue 7) */
  readonly maxPoints?: number;
}

/** What the viewer endpoint needs from its server. */
export interface ViewerDeps {
  readonly rtc: RtcOptions;
  readonly log: Logger;
  readonly options: ViewerOptions;
  /** Whether the request's token may watch this session (its owner, or any token without auth). */
  canWatch(request: FastifyRequest, sessionId: string): boolean;
  /** Whether the server is shutting down. */
  isClosing(): boolean;
}

/** Feeds live frames to browser viewers over their own peer connections. */
export class ViewerHub {
  constructor(deps: ViewerDeps) {
    void deps;
  }

  /** Registers the viewer's signaling routes. */
  register(app: FastifyInstance): void {
    void app; // TODO(issue 7)
  }

  /** Called for every verified frame; must return at once (never slows ingest). */
  onFrame(frame: ReceivedFrame): void {
    void frame;
  }

  /** A session ended: its viewers are told. */
  onSessionClosed(sessionId: string): void {
    void sessionId;
  }

  /** Closes every viewer connection. */
  async close(): Promise<void> {}
}
