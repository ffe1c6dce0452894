/**
 * The frame sender's defaults, the one copy: the Node client, the browser sender and the CLI's
 * help text all reference these. Browser-safe.
 */
export const SENDER_DEFAULTS = Object.freeze({
  /** Longest wait for the channel to open and the server's hello. */
  connectTimeoutMs: 15_000,
  /** Largest message; Chromium throws above 262,144 bytes. */
  maxMessageBytes: 256 * 1024,
  /** Frames sent and waiting for their receipt at once: the bound that pushes back on the source. */
  maxFramesInFlight: 2,
  /** Sending pauses above this many buffered bytes (Chromium fails the channel at 16 MiB). */
  highWaterMark: 4 * 1024 * 1024,
  /** Sending resumes at or below this many buffered bytes. */
  lowWaterMark: 1024 * 1024,
  /** A frame without a receipt after this long is counted lost. */
  receiptTimeoutMs: 10_000,
  /**
   * After a hello announcing heartbeats (`heartbeatMs`), this long without any message from the
   * server ends the sender with `PS_ERR_PEER_SILENT`: the node is gone. Servers without heartbeats
   * are not checked.
   */
  livenessTimeoutMs: 2_500,
});

/** After `closing` `PS_ERR_SESSION_MOVED`, the longest wait for receipts of frames in flight. */
export const MOVE_RECEIPT_WAIT_MS = 3_000;
