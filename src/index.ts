export { createServer, PointstreamServer, DEFAULT_SERVER_LIMITS } from './server/server.js';
export type {
  ClusterStats,
  FrameRejection,
  ReceivedFrame,
  ServerEvents,
  ServerLimits,
  ServerOptions,
  ServerStats,
  SessionEnd,
  SessionState,
  SessionStats,
} from './server/types.js';
export { DEFAULT_BUS_OPTIONS } from './bus/stream-config.js';
export type { BusOptions } from './bus/stream-config.js';
export type { BusStats } from './bus/publisher.js';
export { connect, PointstreamClient } from './client/client.js';
export type { ClientEvents } from './client/client.js';
export type { ClientOptions, FrameReceipt, SendOptions, SentFrame } from './client/types.js';
export type { RtcOptions } from './rtc/peer.js';
export { ErrorCodes, PointstreamError, isErrorCode } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export type { Logger } from './util/logger.js';
export { silentLogger } from './util/logger.js';
export { PROTOCOL_V1 } from './wire/chunk.js';
export { encodeNpyHeader, parseNpyHeader } from './wire/npy.js';
export { NO_FIELDS, encodeFieldTable, parseFieldTable } from './wire/fields.js';
export type { FieldArray, FieldColumn, FieldTable, PointFields } from './wire/fields.js';
export { consume, Consumer } from './bus/consumer.js';
export type { ConsumeOptions, ConsumedFrame, ConsumerStats } from './bus/consumer.js';
export { BusReassembly, DEFAULT_BUS_REASSEMBLY_LIMITS } from './bus/reassembly.js';
export type { BusReassemblyLimits } from './bus/reassembly.js';
export { createFront, PointstreamFront, DEFAULT_FRONT_LIMITS } from './front/front.js';
export type { FrontLimits, FrontNodeStats, FrontOptions, FrontStats } from './front/types.js';
