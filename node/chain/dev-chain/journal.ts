/**
 * An append-only journal of records, each framed as [u32 length][u32 crc32][payload], fsynced on append.
 * Opening reads every record and checks its checksum: a torn tail (a crash mid-append leaves a short or
 * garbled last record) is truncated away; a bad record followed by more data is corruption and an error,
 * because something committed after it would otherwise be silently dropped.
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync, ftruncateSync, existsSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import { dirname } from 'node:path'

const HEADER = 8
/** Upper bound on one record: a block holds transactions, a deploy can hold a contract. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024

export class JournalCorruptError extends Error {
  override name = 'JournalCorruptError'
}

export interface JournalOpenResult {
  journal: Journal
  records: Uint8Array[]
  /** Bytes cut from the end because the last record was torn. */
  truncatedBytes: number
}

export class Journal {
  private constructor (private fd: number, private size: number) {}

  static open (path: string): JournalOpenResult {
    const data = existsSync(path) ? readFileSync(path) : Buffer.alloc(0)
    const records: Uint8Array[] = []
    let pos = 0
    while (pos < data.length) {
      const tail = (): boolean => pos + HEADER > data.length
      if (tail()) break
      const len = data.readUInt32LE(pos)
      const sum = data.readUInt32LE(pos + 4)
      const end = pos + HEADER + len
      if (len > MAX_RECORD_BYTES || end > data.length) {
        if (len > MAX_RECORD_BYTES && end <= data.length) throw new JournalCorruptError(`record at byte ${pos} claims ${len} bytes`)
        break // runs past the end of the file: torn
      }
      const payload = data.subarray(pos + HEADER, end)
      if (crc32(payload) !== sum) {
        if (end === data.length) break // the last record, half written: torn
        throw new JournalCorruptError(`checksum mismatch in record ${records.length} at byte ${pos}, with ${data.length - end} bytes after it`)
      }
      records.push(new Uint8Array(payload))
      pos = end
    }
    const created = !existsSync(path)
    const fd = openSync(path, created ? 'w+' : 'r+')
    if (created) {
      // the new file's directory entry must be durable too, or a power loss can lose the whole journal
      const dirFd = openSync(dirname(path), 'r')
      try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
    }
    const truncatedBytes = data.length - pos
    if (truncatedBytes > 0) { ftruncateSync(fd, pos); fsyncSync(fd) }
    return { journal: new Journal(fd, pos), records, truncatedBytes }
  }

  /** Appends one record and fsyncs before returning: once this returns, the record survives a crash. */
  append (payload: Uint8Array): void {
    if (payload.length > MAX_RECORD_BYTES) throw new RangeError(`record of ${payload.length} bytes is too large`)
    const frame = Buffer.alloc(HEADER + payload.length)
    frame.writeUInt32LE(payload.length, 0)
    frame.writeUInt32LE(crc32(payload), 4)
    frame.set(payload, HEADER)
    let off = 0
    while (off < frame.length) off += writeSync(this.fd, frame, off, frame.length - off, this.size + off)
    fsyncSync(this.fd)
    this.size += frame.length
  }

  close (): void { closeSync(this.fd) }
}
