/**
 * A CAR file's framing checked against our bounds before the CAR decoder reads it: the decoder buffers a
 * whole section (or header) of whatever length its varint announces, so a small file announcing a
 * gigabyte block, or a large one holding one, would be read into memory first. This pass reads only the
 * length prefixes (CARv1, or the CARv1 payload of a CARv2) and refuses one over the limit when the file holds
 * more than the limit after it (the decoder would buffer that much); everything else
 * about the file (truncation, bad CIDs, bad blocks) is left to the decoder and the import's own checks.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { InvalidContentError } from './errors.ts'
import { describeBytes, MAX_CAR_HEADER_BYTES, MAX_CAR_SECTION_BYTES } from './limits.ts'

/** A CARv2 file starts with this pragma: a CARv1 header `{ version: 2 }`. */
const CARV2_PRAGMA = Uint8Array.of(0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02)
const CARV2_HEADER_BYTES = 40
const WINDOW = 64 * 1024

class Window {
  private buf = new Uint8Array(0)
  private at = 0
  constructor (private readonly file: FileHandle, readonly size: number) {}

  /** Up to `n` bytes at `pos` (fewer at the end of the file). */
  async bytes (pos: number, n: number): Promise<Uint8Array> {
    if (pos >= this.size) return new Uint8Array(0)
    if (pos < this.at || pos + Math.min(n, this.size - pos) > this.at + this.buf.byteLength) {
      const length = Math.max(0, Math.min(Math.max(n, WINDOW), this.size - pos))
      this.buf = new Uint8Array(length)
      this.at = pos
      if (length > 0) await this.file.read(this.buf, 0, length, pos)
    }
    return this.buf.subarray(pos - this.at, pos - this.at + Math.min(n, this.size - pos))
  }

  /** An unsigned LEB128 varint at `pos`: its value and length, or undefined when the file ends inside it. */
  async varint (pos: number): Promise<{ value: number, length: number } | undefined> {
    const b = await this.bytes(pos, 10)
    let value = 0
    for (let i = 0; i < b.byteLength; i++) {
      value += (b[i] & 0x7f) * 2 ** (7 * i)
      if ((b[i] & 0x80) === 0) return { value, length: i + 1 }
    }
    return b.byteLength >= 10 ? { value: Infinity, length: 10 } : undefined
  }
}

/** Throws InvalidContentError when a header or section of the CAR at `path` announces more than our bounds. */
export async function checkCarFraming (path: string, size: number): Promise<void> {
  const file = await open(path, 'r')
  try {
    const w = new Window(file, size)
    const pragma = await w.bytes(0, CARV2_PRAGMA.byteLength)
    if (pragma.byteLength === CARV2_PRAGMA.byteLength && pragma.every((b, i) => b === CARV2_PRAGMA[i])) {
      const header = await w.bytes(CARV2_PRAGMA.byteLength, CARV2_HEADER_BYTES)
      if (header.byteLength < CARV2_HEADER_BYTES) return // truncated: the decoder says so
      const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
      const dataOffset = Number(view.getBigUint64(16, true))
      const dataSize = Number(view.getBigUint64(24, true))
      await checkV1(path, w, dataOffset, Math.min(size, dataOffset + dataSize))
      return
    }
    await checkV1(path, w, 0, size)
  } finally {
    await file.close()
  }
}

async function checkV1 (path: string, w: Window, start: number, end: number): Promise<void> {
  const header = await w.varint(start)
  if (header == null) return
  // What the decoder would buffer is the announced length or the rest of the file, whichever is less: only
  // when both pass the bound is it refused here (a short file with a wild length is the decoder's to name).
  if (header.value > MAX_CAR_HEADER_BYTES && end - start > MAX_CAR_HEADER_BYTES) {
    throw new InvalidContentError(path, `${path}: its CAR header announces ${describeBytes(header.value)}, over the limit of ${describeBytes(MAX_CAR_HEADER_BYTES)} (MAX_CAR_HEADER_BYTES)`)
  }
  for (let pos = start + header.length + header.value; pos < end;) {
    const section = await w.varint(pos)
    if (section == null) return
    if (section.value > MAX_CAR_SECTION_BYTES && end - pos > MAX_CAR_SECTION_BYTES) {
      throw new InvalidContentError(path, `${path}: the block at byte ${pos} announces ${describeBytes(section.value)}, over the limit of ${describeBytes(MAX_CAR_SECTION_BYTES)} for a block and its CID (MAX_CAR_SECTION_BYTES: no peer could fetch a larger block)`)
    }
    if (section.value === 0) return // the decoder names it
    pos += section.length + section.value
  }
}
