/**
 * Frames over a libp2p 3 stream: a bounded reader that never trusts a length from the wire before
 * checking it, and a writer that sends big payloads in slices, waiting for 'drain' when the stream says so.
 */
import type { MessageStream } from '@libp2p/interface'
import {
  checkAnnouncedLength, decodeFrameHeader, encodeFrameHeader, encodePayloadLength, MAX_FRAME_HEADER_BYTES,
  type FrameHeader
} from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { chunksOf } from '../network/stream-chunks.ts'

/** Payloads are written in slices of this size, so backpressure is honoured at a fine grain. */
export const WRITE_SLICE_BYTES = 1024 * 1024

type Chunk = Uint8Array | { subarray: () => Uint8Array, byteLength: number }

export interface ReadFrameOptions<H extends FrameHeader> {
  /** Checks the header (schema already checked) before its payload is read; throws to refuse it. */
  accept: (header: FrameHeader) => H | Promise<H>
  /** The largest payload the receiver will take for this header. */
  maxPayload: (header: H) => number
  /** Makes the payload's buffer (e.g. a pool's); default: a new array. */
  alloc?: (length: number) => Uint8Array
}

export interface ReceivedFrame<H extends FrameHeader> {
  header: H
  payload: Uint8Array
  /** Wire bytes of the whole frame. */
  bytes: number

}

export class StreamEndedError extends Error {
  override name = 'StreamEndedError'
}

/** Reads frames from one stream. Create it as soon as the stream exists: a stream nobody reads from aborts when its buffer fills. */
export class FrameReader {
  private readonly iterator: AsyncIterator<Chunk>
  private pending: Uint8Array | null = null
  /** `onProgress` is called for every chunk that arrives (inactivity timers hang on it). */
  constructor (stream: MessageStream | AsyncIterable<Chunk>, private readonly onProgress?: () => void) {
    // A libp2p stream's own iterator can miss an end that came before the first read (chunksOf reads around it).
    this.iterator = chunksOf(stream) as AsyncIterator<Chunk>
  }

  private async nextChunk (): Promise<Uint8Array> {
    if (this.pending != null && this.pending.byteLength > 0) {
      const p = this.pending
      this.pending = null
      return p
    }
    for (;;) {
      const { done, value } = await this.iterator.next()
      if (done === true) throw new StreamEndedError('stream ended in the middle of a frame')
      this.onProgress?.()
      const bytes = value instanceof Uint8Array ? value : value.subarray()
      if (bytes.byteLength > 0) return bytes
    }
  }

  /** Reads exactly `target.byteLength` bytes into `target`. */
  private async readInto (target: Uint8Array): Promise<void> {
    let at = 0
    while (at < target.byteLength) {
      const chunk = await this.nextChunk()
      const n = Math.min(chunk.byteLength, target.byteLength - at)
      target.set(chunk.subarray(0, n), at)
      at += n
      if (n < chunk.byteLength) this.pending = chunk.subarray(n)
    }
  }

  private async readU32 (): Promise<number> {
    const b = new Uint8Array(4)
    await this.readInto(b)
    return new DataView(b.buffer).getUint32(0)
  }

  async readFrame<H extends FrameHeader> (opts: ReadFrameOptions<H>): Promise<ReceivedFrame<H>> {
    const { header, bytes } = await this.readHeader(opts.accept)
    const payload = await this.readPayload(opts.maxPayload(header), `all-reduce ${header.type} payload`, opts.alloc)
    return { header, payload, bytes: bytes + 4 + payload.byteLength }
  }

  /** Reads a frame's header block only (the payload follows later, e.g. after a handshake). */
  async readHeader<H extends FrameHeader> (accept: (header: FrameHeader) => H | Promise<H>): Promise<{ header: H, bytes: number }> {
    const headerLength = checkAnnouncedLength(await this.readU32(), MAX_FRAME_HEADER_BYTES, 'all-reduce frame header')
    const headerBytes = new Uint8Array(headerLength)
    await this.readInto(headerBytes)
    return { header: await accept(decodeFrameHeader(headerBytes)), bytes: 4 + headerLength }
  }

  /**
   * Reads a payload length (checked against `max` before anything else) and the payload, into a buffer from
   * `alloc` when given (e.g. a pool's: every byte is written).
   */
  async readPayload (max: number, what: string, alloc?: (length: number) => Uint8Array): Promise<Uint8Array> {
    const payloadLength = checkAnnouncedLength(await this.readU32(), max, what)
    const payload = alloc != null ? alloc(payloadLength) : new Uint8Array(payloadLength)
    await this.readInto(payload)
    return payload
  }

  /** Expects the remote to have nothing more to say; anything else is a protocol violation. */
  async expectEnd (): Promise<void> {
    if (this.pending != null && this.pending.byteLength > 0) throw new InvalidMessageError('unexpected bytes after the last frame')
    const { done, value } = await this.iterator.next()
    if (done !== true && value.byteLength > 0) throw new InvalidMessageError('unexpected bytes after the last frame')
  }
}

/** Writes one frame; resolves when all of it has been handed to the stream. Returns the bytes written. */
export async function writeFrame (stream: MessageStream, header: FrameHeader, payload: Uint8Array, signal?: AbortSignal, onProgress?: () => void): Promise<number> {
  return await writeHeader(stream, header, signal) + await writePayload(stream, payload, signal, onProgress)
}

/** Writes a frame's header block only. */
export async function writeHeader (stream: MessageStream, header: FrameHeader, signal?: AbortSignal): Promise<number> {
  const head = encodeFrameHeader(header)
  await sendAll(stream, head, signal)
  return head.byteLength
}

/** Writes a payload length and the payload, in slices, honouring backpressure; `onProgress` after each slice. */
export async function writePayload (stream: MessageStream, payload: Uint8Array, signal?: AbortSignal, onProgress?: () => void): Promise<number> {
  await sendAll(stream, encodePayloadLength(payload.byteLength), signal)
  onProgress?.()
  for (let at = 0; at < payload.byteLength; at += WRITE_SLICE_BYTES) {
    await sendAll(stream, payload.subarray(at, Math.min(payload.byteLength, at + WRITE_SLICE_BYTES)), signal)
    onProgress?.()
  }
  return 4 + payload.byteLength
}

async function sendAll (stream: MessageStream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  if (!stream.send(bytes)) await stream.onDrain({ signal })
}
