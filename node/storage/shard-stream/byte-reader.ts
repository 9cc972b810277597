/**
 * Exact-length reads over a libp2p 3 stream (an async iterable of chunks, each a Uint8Array or a
 * Uint8ArrayList). Lengths come from the caller, who checked them against the protocol's bounds before
 * asking for the bytes. The parts of a chunk are kept as they came and copied once, into the buffer a
 * read returns (a block's bytes), never joined on the way.
 */
import type { MessageStream } from '@libp2p/interface'
import { chunksOf } from '../../network/stream-chunks.ts'

type Chunk = Uint8Array | Iterable<Uint8Array>

export class StreamEndedError extends Error {
  override name = 'StreamEndedError'
}

export class ByteReader {
  private readonly iterator: AsyncIterator<Chunk>
  /** Received, not yet read: parts in order, the first one read from `offset`. */
  private readonly parts: Uint8Array[] = []
  private offset = 0
  private buffered = 0
  /** `onChunk` runs for every chunk that arrives (inactivity timers hang on it). */
  constructor (stream: MessageStream | AsyncIterable<Chunk>, private readonly onChunk?: () => void) {
    // A libp2p stream's own iterator can miss an end that came before the first read (chunksOf reads around it).
    this.iterator = chunksOf(stream) as AsyncIterator<Chunk>
  }

  private async more (): Promise<boolean> {
    for (;;) {
      const { done, value } = await this.iterator.next()
      if (done === true) return false
      this.onChunk?.()
      const before = this.buffered
      for (const part of value instanceof Uint8Array ? [value] : value) {
        if (part.byteLength === 0) continue
        this.parts.push(part)
        this.buffered += part.byteLength
      }
      if (this.buffered > before) return true
    }
  }

  /** Exactly `n` bytes; throws StreamEndedError when the stream ends first. */
  async read (n: number): Promise<Uint8Array> {
    while (this.buffered < n) {
      if (!await this.more()) throw new StreamEndedError(`stream ended ${n - this.buffered} bytes short`)
    }
    const first = this.parts[0]
    if (first != null && first.byteLength - this.offset >= n) {
      // Within one part: a view, no copy.
      const out = first.subarray(this.offset, this.offset + n)
      this.consume(n)
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const part = this.parts[0]
      const k = Math.min(part.byteLength - this.offset, n - at)
      out.set(part.subarray(this.offset, this.offset + k), at)
      at += k
      this.consume(k)
    }
    return out
  }

  private consume (n: number): void {
    this.buffered -= n
    this.offset += n
    while (this.parts.length > 0 && this.offset >= this.parts[0].byteLength) {
      this.offset -= this.parts[0].byteLength
      this.parts.shift()
    }
  }

  async u8 (): Promise<number> { return (await this.read(1))[0] }

  async u32 (): Promise<number> {
    const b = await this.read(4)
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0)
  }
}
