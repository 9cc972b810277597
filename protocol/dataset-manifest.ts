/**
 * The dataset manifest: a dag-cbor IPLD object whose CID names a dataset. It links every shard (a UnixFS
 * file of whole samples), so pinning or exporting the manifest recursively takes the shards with it, and
 * it carries what a peer needs to check and decode a shard before training on it: byte size, sample count
 * and SHA-256 of the shard's bytes, and the layout of those bytes (a DatasetFormat).
 *
 * Pure: schemas and parsers only. No CID is created here; shard links arrive as CID objects from the
 * dag-cbor decoder.
 */
import { z } from 'zod'
import { CID } from 'multiformats/cid'
import { DatasetFormat } from './dataset-format.ts'
import { parseWith } from './codec.ts'
import { Sha256Hex } from './primitives.ts'

export const DATASET_MANIFEST_TYPE = 'nearai/dataset'
export const DATASET_MANIFEST_VERSION = 1
/** The manifest is one block; bitswap moves at most 2 MiB a message, so stay well below that. */
export const MAX_DATASET_MANIFEST_BYTES = 1024 * 1024
export const MAX_DATASET_SHARDS = 4096
/**
 * The largest shard a manifest may declare. A fetcher holds a whole shard in memory (and its decoded samples,
 * 4 bytes a value), so the size a manifest declares is checked against this before anything is allocated;
 * importers cut shards of 16 MiB by default.
 */
export const MAX_SHARD_BYTES = 256 * 1024 * 1024

/** An IPLD link as decoded by @ipld/dag-cbor (a CID instance, of whichever multiformats copy made it). */
export const CidLink = z.custom<CID>(value => CID.asCID(value) != null, { message: 'expected a CID link' })
  .transform(value => CID.asCID(value) as CID)

export { Sha256Hex }

export const DatasetShard = z.object({
  /** Root of the UnixFS file holding the shard's bytes. */
  cid: CidLink,
  bytes: z.number().int().nonnegative().max(MAX_SHARD_BYTES, `a shard holds at most ${MAX_SHARD_BYTES} bytes (MAX_SHARD_BYTES)`),
  /** A sample takes at least one byte. */
  samples: z.number().int().positive().max(MAX_SHARD_BYTES, `a shard holds at most ${MAX_SHARD_BYTES} samples`),
  sha256: Sha256Hex
}).strict()
export type DatasetShard = z.infer<typeof DatasetShard>

/** What one sample is, independent of how it is encoded. */
export const DatasetSchema = z.object({
  /** The unit a shard is split on: a CSV row, a JSON line, a text line, a fixed-size image record. */
  sample: z.enum(['csv-row', 'json-line', 'text-line', 'image-record']),
  /** Number of feature values per sample (absent for text). */
  features: z.number().int().positive().max(MAX_SHARD_BYTES).optional(),
  numClasses: z.number().int().min(2).max(1_000_000).optional(),
  /** Size of one record for fixed-size formats (image-records). */
  recordBytes: z.number().int().positive().max(MAX_SHARD_BYTES).optional()
}).strict()
export type DatasetSchema = z.infer<typeof DatasetSchema>

export const DatasetManifest = z.object({
  type: z.literal(DATASET_MANIFEST_TYPE),
  version: z.literal(DATASET_MANIFEST_VERSION),
  name: z.string().min(1).max(200),
  /** SPDX identifier or free text ("CC-BY-SA-3.0", "proprietary"). */
  license: z.string().min(1).max(200),
  description: z.string().max(4000).optional(),
  format: DatasetFormat,
  schema: DatasetSchema,
  totalBytes: z.number().int().nonnegative().max(MAX_DATASET_SHARDS * MAX_SHARD_BYTES),
  totalSamples: z.number().int().positive().max(MAX_DATASET_SHARDS * MAX_SHARD_BYTES),
  shards: z.array(DatasetShard).min(1).max(MAX_DATASET_SHARDS)
}).strict().superRefine((m, ctx) => {
  const bytes = m.shards.reduce((sum, s) => sum + s.bytes, 0)
  const samples = m.shards.reduce((sum, s) => sum + s.samples, 0)
  if (bytes !== m.totalBytes) ctx.addIssue({ code: 'custom', path: ['totalBytes'], message: `shards hold ${bytes} bytes, manifest says ${m.totalBytes}` })
  if (samples !== m.totalSamples) ctx.addIssue({ code: 'custom', path: ['totalSamples'], message: `shards hold ${samples} samples, manifest says ${m.totalSamples}` })
})
export type DatasetManifest = z.infer<typeof DatasetManifest>

/** Validates a decoded dag-cbor value; throws InvalidMessageError naming the bad fields. */
export function parseDatasetManifest (value: unknown, what = 'dataset manifest'): DatasetManifest {
  return parseWith(DatasetManifest, value, what)
}
