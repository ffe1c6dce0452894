/**
 * The wire format of pointstream: pure functions and classes, no sockets, no Node-only APIs, so
 * that the same code runs in Node and in browsers. See docs/protocol.md.
 */
export {
  PROTOCOL_V1,
  WIRE_VERSION,
  ChunkType,
  DType,
  Encoding,
  DATA_HEADER_BYTES,
  START_HEADER_BYTES,
  StartFlags,
  readChunkHeader,
  writeDataHeader,
  writeStartHeader,
} from './chunk.js';
export type { ChunkHeader, FrameMeta } from './chunk.js';
export {
  FIELD_LIMITS,
  FIELD_TYPES,
  FIELD_TYPE_NAMES,
  FieldCodec,
  NO_FIELDS,
  columnOffsets,
  describeFields,
  encodeFieldTable,
  fieldTypeOf,
  isFieldName,
  parseFieldTable,
  payloadBytesOf,
  rawFields,
  viewRawFields,
} from './fields.js';
export type {
  EncodedFields,
  FieldArray,
  FieldColumn,
  FieldTable,
  FieldTypeName,
  PointCloud,
  PointFields,
} from './fields.js';
export { crc32Portable } from './crc32.js';
export type { Checksum } from './crc32.js';
export {
  MIN_MESSAGE_BYTES,
  chunkCountFor,
  prepareEncodedFrame,
  prepareFrame,
  writeChunk,
} from './frame.js';
export {
  DEFAULT_PRECISION,
  POINT_ENCODING_NAMES,
  PointEncodingId,
  decodePoints,
  encodePoints,
  encodingsReady,
  pointEncodingIdOf,
} from './encodings/index.js';
export type {
  DecodeLimits,
  EncodeOptions,
  EncodedPoints,
  PointEncodingName,
} from './encodings/index.js';
export { decodeFields, encodeFields } from './encodings/fields.js';
export type { FieldEncodeOptions } from './encodings/fields.js';
export type { OutgoingFrame } from './frame.js';
export {
  NPY_MAGIC,
  encodeNpyHeader,
  hasNpyMagic,
  parseNpyHeader,
  pointCountOfNpyHeader,
} from './npy.js';
export type { NpyHeader } from './npy.js';
export { decodePlainFrame } from './plain.js';
export type { PlainFrame } from './plain.js';
export { HOST_IS_LITTLE_ENDIAN, float32View, indexOfNonFinite } from './points.js';
export { DEFAULT_REASSEMBLY_LIMITS } from './limits.js';
export type { ReassemblyLimits } from './limits.js';
export { FrameReassembler } from './reassembler.js';
export type {
  AssembledFrame,
  EncodedFrame,
  PushResult,
  ReassemblerOptions,
} from './reassembler.js';
export {
  MAX_CONTROL_MESSAGE_CHARS,
  STREAM_NAME_PATTERN,
  decodeServerMessage,
  encodeServerMessage,
  isStreamName,
  toStreamName,
} from './control.js';
export type { ClosingMessage, HelloMessage, ReceiptMessage, ServerMessage } from './control.js';
export {
  VIEWER_PROTOCOL,
  ViewerReassembler,
  decodeViewerAck,
  decodeViewerControl,
  decodeViewerRequest,
  encodeViewerAck,
  encodeViewerColour,
  encodeViewerControl,
  encodeViewerData,
  encodeViewerFrame,
  encodeViewerStart,
} from './viewer.js';
export type {
  EncodedViewerFrame,
  ViewerControl,
  ViewerFrame,
  ViewerFrameColour,
  ViewerRequest,
} from './viewer.js';
export { ViewerColourKind, colourChoices, makeViewerColour } from './viewer-colour.js';
export type { ViewerColour, ViewerField } from './viewer-colour.js';
