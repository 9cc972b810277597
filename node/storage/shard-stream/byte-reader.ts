/**
 * Exact-length reads over a libp2p 3 stream (an async iterable of chunks). Lengths come from the caller,
 * who checked them against the protocol's bounds before asking for the bytes.
 */
type Chunk = Uint8Array | { subarray: () => Uint8Array, byteLength: number }

export class StreamEndedError extends Error {
  override name = 'StreamEndedError'
}

export class ByteReader {
  private readonly iterator: AsyncIterator<Chunk>
  private pending: Uint8Array = new Uint8Array(0)
  /** `onChunk` runs for every chunk that arrives (inactivity timers hang on it). */
  constructor (stream: AsyncIterable<Chunk>, private readonly onChunk?: (bytes: number) => void) {
    this.iterator = stream[Symbol.asyncIterator]()
  }

  private async more (): Promise<boolean> {
    for (;;) {
      const { done, value } = await this.iterator.next()
      if (done === true) return false
      const bytes = value instanceof Uint8Array ? value : value.subarray()
      this.onChunk?.(bytes.byteLength)
      if (bytes.byteLength === 0) continue
      if (this.pending.byteLength === 0) {
        this.pending = bytes
      } else {
        const joined = new Uint8Array(this.pending.byteLength + bytes.byteLength)
        joined.set(this.pending)
        joined.set(bytes, this.pending.byteLength)
        this.pending = joined
      }
      return true
    }
  }

  /** Exactly `n` bytes; throws StreamEndedError when the stream ends first. */
  async read (n: number): Promise<Uint8Array> {
    if (n <= this.pending.byteLength) return this.take(n)
    if (n > 64 * 1024) return await this.readLarge(n)
    while (this.pending.byteLength < n) {
      if (!await this.more()) throw new StreamEndedError(`stream ended ${n - this.pending.byteLength} bytes short`)
    }
    return this.take(n)
  }

  /** Large reads fill one buffer as chunks arrive instead of joining chunks again and again. */
  private async readLarge (n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n)
    let at = this.pending.byteLength
    out.set(this.pending)
    this.pending = new Uint8Array(0)
    while (at < n) {
      if (!await this.more()) throw new StreamEndedError(`stream ended ${n - at} bytes short`)
      const k = Math.min(this.pending.byteLength, n - at)
      out.set(this.pending.subarray(0, k), at)
      at += k
      this.pending = this.pending.subarray(k)
    }
    return out
  }

  async u8 (): Promise<number> { return (await this.read(1))[0] }

  async u32 (): Promise<number> {
    const b = await this.read(4)
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0)
  }

  /** True when the remote has nothing more to send. */
  async atEnd (): Promise<boolean> {
    return this.pending.byteLength === 0 && !await this.more()
  }

  private take (n: number): Uint8Array {
    const out = this.pending.subarray(0, n)
    this.pending = this.pending.subarray(n)
    return out
  }
}
