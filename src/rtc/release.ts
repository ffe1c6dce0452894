import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Frees a received message's memory now instead of at the next garbage collection.
 *
 * node-datachannel hands over every message as a fresh Buffer that owns its memory. Once a chunk
 * has been copied into its frame it is garbage, but V8 frees it only when a scavenge finds it
 * dead: at 48 MB/s some 35 MB of dead chunks wait for that, malloc's heap grows to whatever
 * high-water mark the GC timing of that run allows and keeps it (server RSS 119-134 MB from run
 * to run), and the external bytes cause half of all scavenges. `ArrayBuffer.prototype.transfer(0)`
 * detaches the buffer, which releases its memory at once.
 *
 * The caller must hold the only reference to `bytes`, and nothing may read it afterwards. Buffers
 * that are a view of a larger ArrayBuffer (Node's pooled small Buffers) are left alone: detaching
 * would take their neighbours' memory too.
 */
export function releaseMessage(bytes: Uint8Array): void {
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) return;
  if (detach === undefined) detach = findTransfer();
  if (detach === null || !(bytes.buffer instanceof ArrayBuffer)) return;
  try {
    detach.call(bytes.buffer, 0);
  } catch {
    // A buffer that cannot be detached (none such comes from node-datachannel) waits for the GC.
  }
}

type Transfer = (this: ArrayBuffer, newLength: number) => ArrayBuffer;

/** `transfer`, `null` where this runtime has none (then the GC frees messages), or not looked up yet. */
let detach: Transfer | null | undefined;

/**
 * Node >= 21 has `transfer`. Node 20's V8 (11.3) has it behind `--harmony-rab-gsab-transfer`, a
 * flag read when a context is created: one new context made with the flag on provides it (it works
 * on this realm's ArrayBuffers), and the flag goes back off so that no other context changes.
 */
function findTransfer(): Transfer | null {
  const native = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer;
  if (typeof native === 'function') return native;
  try {
    setFlagsFromString('--harmony-rab-gsab-transfer');
    const borrowed: unknown = runInNewContext('ArrayBuffer.prototype.transfer');
    return typeof borrowed === 'function' ? (borrowed as Transfer) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-harmony-rab-gsab-transfer');
  }
}
