/**
 * Reuses frame buffers. A fresh 12 MB buffer per frame costs more than copying the frame into it:
 * every page is faulted in on first touch (8.6 of 9.6 ms per 12 MB frame measured here) and the
 * external memory drives V8 into a major GC every few frames (13% of the server's main thread at
 * `--rate 0`). Buffers are kept by size class, up to `maxIdleBytes` in total.
 */
export class FrameBufferPool {
  readonly maxIdleBytes: number;
  readonly #idle = new Map<number, ArrayBuffer[]>();
  /** Only buffers this pool made come back into it. */
  readonly #own = new WeakSet<ArrayBuffer>();
  readonly #isIdle = new WeakSet<ArrayBuffer>();
  #idleBytes = 0;
  #reused = 0;
  #allocated = 0;

  /** Buffers handed out again from the pool. */
  get reused(): number {
    return this.#reused;
  }

  /** Buffers newly allocated. */
  get allocated(): number {
    return this.#allocated;
  }

  constructor(maxIdleBytes: number) {
    this.maxIdleBytes = maxIdleBytes;
  }

  /** Bytes held by idle buffers. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** A buffer of exactly `bytes` (contents undefined), at offset 0 of a pooled allocation. */
  acquire(bytes: number): Uint8Array {
    const size = sizeClass(bytes);
    const buffer = this.#idle.get(size)?.pop();
    if (buffer !== undefined) {
      this.#isIdle.delete(buffer);
      this.#idleBytes -= size;
      this.#reused++;
      return new Uint8Array(buffer, 0, bytes);
    }
    // allocUnsafeSlow: its own ArrayBuffer (never a slice of Node's shared slab), not zero-filled.
    const fresh = Buffer.allocUnsafeSlow(size).buffer;
    this.#own.add(fresh);
    this.#allocated++;
    return new Uint8Array(fresh, 0, bytes);
  }

  /** Gives a buffer from `acquire` back; it must not be used afterwards. Others are ignored. */
  recycle(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.#own.has(buffer) || this.#isIdle.has(buffer)) return;
    const size = buffer.byteLength;
    if (this.#idleBytes + size > this.maxIdleBytes) return; // let the GC have it
    this.#isIdle.add(buffer);
    const list = this.#idle.get(size);
    if (list === undefined) this.#idle.set(size, [buffer]);
    else list.push(buffer);
    this.#idleBytes += size;
  }

  /** Drops every idle buffer. */
  clear(): void {
    this.#idle.clear();
    this.#idleBytes = 0;
  }
}

const CLASS_STEP = 64 * 1024;

/** Frames of nearly the same size (files with varying point counts) share a class. */
function sizeClass(bytes: number): number {
  return Math.max(CLASS_STEP, Math.ceil(bytes / CLASS_STEP) * CLASS_STEP);
}
