/**
 * Wire header shared by every codec: magic 'NV', version, codec tag, element count (u32 LE).
 * Self-describing so a receiver can reject bytes made by another codec or a truncated frame.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import type { CodecId } from './codec.ts'

export const HEADER_BYTES = 8
export const CODEC_VERSION = 1
const MAGIC0 = 0x4e // 'N'
const MAGIC1 = 0x56 // 'V'
const TAGS: Record<CodecId, number> = { none: 0, fp16: 1, int8: 2 }

export function writeHeader (out: Uint8Array, id: CodecId, length: number): void {
  out[0] = MAGIC0
  out[1] = MAGIC1
  out[2] = CODEC_VERSION
  out[3] = TAGS[id]
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(4, length, true)
}

/** Checks the header and returns the element count. */
export function readHeader (bytes: Uint8Array, id: CodecId): number {
  if (!(bytes instanceof Uint8Array)) throw new InvalidMessageError(`${id}: expected bytes`)
  if (bytes.byteLength < HEADER_BYTES) throw new InvalidMessageError(`${id}: frame of ${bytes.byteLength} bytes is shorter than the header`)
  if (bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) throw new InvalidMessageError(`${id}: bad magic`)
  if (bytes[2] !== CODEC_VERSION) throw new InvalidMessageError(`${id}: unsupported version ${bytes[2]}`)
  if (bytes[3] !== TAGS[id]) throw new InvalidMessageError(`${id}: frame was made by codec tag ${bytes[3]}`)
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true)
}

export function expectSize (id: CodecId, bytes: Uint8Array, expected: number): void {
  if (bytes.byteLength !== expected) throw new InvalidMessageError(`${id}: frame is ${bytes.byteLength} bytes, header implies ${expected}`)
}

/** Typed-array views may stand for little-endian wire words on this machine. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
