/**
 * Large buffers reused from round to round. A round of the all-reduce makes the same big arrays every time
 * (the encoded parts, the error-feedback vectors, the payloads a reducer receives), and fresh memory is
 * expensive to touch for the first time: every new page faults into the kernel, which made writing a fresh 16 MB
 * array 3.9x as slow as writing one already touched on a quiet 2-core machine, and slower under load
 * (benchmarks/memory.ts). A pool hands back arrays of the exact sizes asked for before, already touched.
 *
 * Ownership is explicit: whoever takes a buffer gives it back once nothing reads or writes it any more (not
 * while a stream may still be sending it). A buffer is never handed out twice: giving back one that is
 * already in the pool, or one the pool did not make, is ignored. Contents are whatever the last user left:
 * takers overwrite every byte they read.
 */

/** Smaller buffers are not worth pooling: the allocator recycles them on its own. */
const MIN_POOLED_BYTES = 64 * 1024

export interface BufferPoolOptions {
  /** Bytes kept for reuse at most; the least recently given back go first (default 1 GiB). */
  maxRetainedBytes?: number
}

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>()
  /** Free buffers in the order they were given back (oldest first), to drop beyond the bound. */
  private readonly order: ArrayBuffer[] = []
  private readonly made = new WeakSet<ArrayBuffer>()
  private readonly idle = new WeakSet<ArrayBuffer>()
  private retained = 0
  readonly maxRetainedBytes: number
  /** Counters, for tests and benchmarks. */
  readonly stats = { taken: 0, reused: 0, givenBack: 0, dropped: 0 }

  constructor (opts: BufferPoolOptions = {}) {
    this.maxRetainedBytes = opts.maxRetainedBytes ?? 1024 * 1024 * 1024
  }

  /** `length` bytes (contents undefined). */
  bytes (length: number): Uint8Array {
    return new Uint8Array(this.take(length))
  }

  /** `length` float32 values (contents undefined). */
  floats (length: number): Float32Array {
    return new Float32Array(this.take(length * 4))
  }

  /** Gives `view`'s buffer back for reuse. Only whole buffers this pool made are kept. */
  release (view: ArrayBufferView | undefined): void {
    if (view == null) return
    const buffer = view.buffer
    if (!(buffer instanceof ArrayBuffer) || !this.made.has(buffer) || this.idle.has(buffer)) return
    if (view.byteOffset !== 0 || view.byteLength !== buffer.byteLength) return
    this.stats.givenBack++
    if (buffer.byteLength > this.maxRetainedBytes) { this.stats.dropped++; return }
    this.idle.add(buffer)
    const list = this.free.get(buffer.byteLength) ?? []
    list.push(buffer)
    this.free.set(buffer.byteLength, list)
    this.order.push(buffer)
    this.retained += buffer.byteLength
    while (this.retained > this.maxRetainedBytes) this.drop(this.order[0])
  }

  /** Bytes kept for reuse now. */
  get retainedBytes (): number { return this.retained }

  private take (byteLength: number): ArrayBuffer {
    this.stats.taken++
    if (byteLength >= MIN_POOLED_BYTES) {
      const buffer = this.free.get(byteLength)?.pop()
      if (buffer != null) {
        this.stats.reused++
        this.idle.delete(buffer)
        this.order.splice(this.order.indexOf(buffer), 1)
        this.retained -= byteLength
        return buffer
      }
    }
    const buffer = new ArrayBuffer(byteLength)
    if (byteLength >= MIN_POOLED_BYTES) this.made.add(buffer)
    return buffer
  }

  private drop (buffer: ArrayBuffer): void {
    this.order.shift()
    const list = this.free.get(buffer.byteLength)!
    list.splice(list.indexOf(buffer), 1)
    if (list.length === 0) this.free.delete(buffer.byteLength)
    this.idle.delete(buffer)
    this.retained -= buffer.byteLength
    this.stats.dropped++
  }
}

export interface RoundArrays {
  floats: (length: number) => Float32Array
  bytes: (length: number) => Uint8Array
  release: (view: ArrayBufferView) => void
}

/** Where a round's arrays come from: `pool`, or fresh memory when there is none (release then does nothing). */
export function roundArrays (pool?: BufferPool): RoundArrays {
  if (pool == null) return { floats: (n) => new Float32Array(n), bytes: (n) => new Uint8Array(n), release: () => {} }
  return { floats: (n) => pool.floats(n), bytes: (n) => pool.bytes(n), release: (view) => { pool.release(view) } }
}
