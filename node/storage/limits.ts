/**
 * Bounds on what the storage layer reads from the network, a file or the user, in one place: each is
 * checked before the bytes are allocated or fetched, and its error names the bound (and the flag that
 * raises it, where a user may need more). Wire-level bounds live beside their protocols: a manifest's
 * shard size (`protocol/dataset-manifest.ts` MAX_SHARD_BYTES), a block (`protocol/shard-stream.ts`
 * MAX_BLOCK_BYTES), manifests and model.json (`protocol/checkpoint-manifest.ts`).
 */
import { MAX_BLOCK_BYTES, MAX_CID_BYTES } from '../../protocol/shard-stream.ts'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/** What `getDataset` (`nearai dataset get`) holds in memory at most unless told otherwise (`--max-bytes`). */
export const DEFAULT_DATASET_GET_MAX_BYTES = 4 * GiB

/**
 * The shards an evaluation set may be read from, in bytes: the spec's `eval.maxSamples` bounds the samples,
 * this bounds what is fetched to find them (a manifest of few samples in huge shards).
 */
export const DEFAULT_EVAL_SET_MAX_BYTES = 512 * MiB

/** One sample when a file is imported: a line of a CSV, JSON Lines or text file, one image file. */
export const MAX_IMPORT_SAMPLE_BYTES = 64 * MiB
/** An image folder is decoded in memory before it is sharded: its records together. */
export const MAX_IMAGE_FOLDER_BYTES = 2 * GiB

/** A CAR file's header (its roots). */
export const MAX_CAR_HEADER_BYTES = 64 * KiB
/** One CAR section: a CID and a block no bigger than bitswap moves (so a block no peer could fetch is refused). */
export const MAX_CAR_SECTION_BYTES = MAX_BLOCK_BYTES + MAX_CID_BYTES

/** `n` bytes for a message: "4 GiB", "300 MiB", "17 bytes", "5.1 GiB (5476083302 bytes)". */
export function describeBytes (n: number): string {
  const units: Array<[number, string]> = [[GiB, 'GiB'], [MiB, 'MiB'], [KiB, 'KiB']]
  for (const [size, unit] of units) {
    if (n >= size) {
      const value = n / size
      return Number.isInteger(value) ? `${value} ${unit}` : `${value.toFixed(1)} ${unit} (${n} bytes)`
    }
  }
  return `${n} bytes`
}
