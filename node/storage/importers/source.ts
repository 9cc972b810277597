/**
 * A dataset source: bytes laid out in one DatasetFormat, and where each sample ends, so the importer can
 * cut shards on sample boundaries without understanding the format.
 */
import type { DatasetFormat } from '../../../protocol/dataset-format.ts'
import type { DatasetSchema } from '../../../protocol/dataset-manifest.ts'

export interface SampleSource {
  format: DatasetFormat
  schema: DatasetSchema
  /** Bytes of sample data (a CSV header is not part of it). */
  totalBytes: number
  /** `sampleEnds[i]` is the offset just past sample i; the last equals totalBytes. */
  sampleEnds: SampleOffsets
  /** The data bytes in [start, end). */
  read: (start: number, end: number, signal?: AbortSignal) => AsyncIterable<Uint8Array>
}

/** A growable list of offsets (Float64 to pass 4 GiB), 8 bytes per sample. */
export class SampleOffsets {
  private data = new Float64Array(1024)
  length = 0

  push (end: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = end
  }

  /** Moves the end of the last sample (blank lines are absorbed by the sample before them). */
  extendLast (end: number): void {
    this.data[this.length - 1] = end
  }

  at (i: number): number {
    return i < 0 ? 0 : this.data[i]
  }
}

export function memorySource (bytes: Uint8Array, rest: Omit<SampleSource, 'read' | 'totalBytes'>): SampleSource {
  return {
    ...rest,
    totalBytes: bytes.byteLength,
    read: async function * (start, end) {
      const step = 1024 * 1024
      for (let at = start; at < end; at += step) yield bytes.subarray(at, Math.min(end, at + step))
    }
  }
}
