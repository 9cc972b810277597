/**
 * The checkpoint manifest: `checkpoint.json` inside a checkpoint's UnixFS folder, beside TensorFlow.js's
 * own `model.json` and weight files. It records where the checkpoint comes from (job, round, parent) and
 * the SHA-256 of every file, so a peer can refuse weights that are not the ones the manifest (or an
 * anchor on chain) names, and it lists extra files such as DiLoCo's outer momentum.
 *
 * Pure: schemas and parsers only.
 */
import { z } from 'zod'
import { parseWith, decodeJson } from './codec.ts'
import { PeerIdString, Sha256Hex } from './primitives.ts'
import { MAX_GROUP_SIZE } from './allreduce.ts'
import { UpdateCodecId } from './update-parts.ts'

export const CHECKPOINT_MANIFEST_TYPE = 'nearai/checkpoint'
/**
 * Version 2 added `contributions`, version 3 each contribution's `update` and the manifest's `updates`;
 * versions 1 and 2 are still read.
 */
export const CHECKPOINT_MANIFEST_VERSION = 3
export const CHECKPOINT_MANIFEST_VERSIONS = [1, 2, 3] as const
/** More contributors than a round announcement can carry (1024) never happen in one round. */
export const MAX_CHECKPOINT_CONTRIBUTIONS = 2048
export const CHECKPOINT_MANIFEST_FILE = 'checkpoint.json'

const DAG_PB = 0x70
const CODEC_NAMES: Record<number, string> = {
  0x55: 'a raw block (one file\'s bytes)',
  0x71: 'a dag-cbor block (dataset manifests are dag-cbor: `nearai dataset show <cid>` shows one)',
  0x0129: 'a dag-json block',
  0x0200: 'a json block'
}

/**
 * Why a CID cannot be a checkpoint, from its codec alone (a checkpoint is a UnixFS folder, a dag-pb root), or
 * undefined when it may be one: lets a CLI or a fetch refuse a dataset manifest or a file before fetching it.
 */
export function notACheckpointReason (cid: { code: number, toString: () => string }): string | undefined {
  if (cid.code === DAG_PB) return undefined
  return `${cid.toString()} is not a checkpoint: it is ${CODEC_NAMES[cid.code] ?? `a block of codec 0x${cid.code.toString(16)}`}, a checkpoint is a UnixFS folder with ${CHECKPOINT_MANIFEST_FILE}`
}
export const CHECKPOINT_MODEL_FILE = 'model.json'
export const MAX_CHECKPOINT_MANIFEST_BYTES = 256 * 1024
/** model.json holds the topology and the weights manifest, never the weights themselves. */
export const MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024

/** A file name inside the checkpoint folder: one path segment, no traversal. */
export const CheckpointFileName = z.string().min(1).max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a plain file name (letters, digits, . _ -)')

export const CheckpointFile = z.object({
  path: CheckpointFileName,
  bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sha256: Sha256Hex
}).strict()
export type CheckpointFile = z.infer<typeof CheckpointFile>

/** An extra binary file, e.g. optimizer state; `role` says what it is for (`diloco-outer-momentum`). */
export const CheckpointExtraFile = CheckpointFile.extend({
  role: z.string().min(1).max(100),
  dtype: z.enum(['float32', 'float16', 'int32', 'uint8', 'bytes']).optional(),
  shape: z.array(z.number().int().nonnegative()).max(8).optional()
}).strict()
export type CheckpointExtraFile = z.infer<typeof CheckpointExtraFile>

/**
 * One peer's accepted samples in the round (protocol/contributions.ts) and, from version 3, its update: the
 * SHA-256 (lowercase hex) of the contribution payload it sent to each part of the all-reduce, in part order,
 * as the parts' reducers listed them. Each digest names a raw block (protocol/update-parts.ts updatePartCid).
 */
export const CheckpointContribution = z.object({
  peer: PeerIdString,
  samples: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  update: z.array(Sha256Hex).min(1).max(MAX_GROUP_SIZE).optional()
}).strict()
export type CheckpointContribution = z.infer<typeof CheckpointContribution>

/** How the round's update parts are laid out: the codec that encoded them and each part's element count, in part order. */
export const CheckpointUpdates = z.object({
  codec: UpdateCodecId,
  parts: z.array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER)).min(1).max(MAX_GROUP_SIZE)
}).strict()
export type CheckpointUpdates = z.infer<typeof CheckpointUpdates>

export const CheckpointManifest = z.object({
  type: z.literal(CHECKPOINT_MANIFEST_TYPE),
  version: z.union(CHECKPOINT_MANIFEST_VERSIONS.map(v => z.literal(v))),
  job: z.string().min(1).max(200),
  round: z.number().int().nonnegative(),
  /** CID (string) of the checkpoint this one was trained from; null for the first. */
  parent: z.string().min(1).max(200).nullable(),
  metrics: z.record(z.string().min(1).max(100), z.number()),
  model: CheckpointFile,
  weights: z.object({
    /** SHA-256 of all weight bytes in weights-manifest order: what a chain anchor can commit to. */
    sha256: Sha256Hex,
    bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    files: z.array(CheckpointFile).min(1).max(10_000)
  }).strict(),
  extraFiles: z.array(CheckpointExtraFile).max(100).default([]),
  /**
   * The round's accepted samples per peer, in peer-id order, one entry a peer: the checkpoint's CID commits
   * to them, so every validator derives the same `contributions_root` from the checkpoint alone.
   */
  contributions: z.array(CheckpointContribution).max(MAX_CHECKPOINT_CONTRIBUTIONS).optional(),
  /** The layout of the contributions' `update` digests (version 3): present whenever any contribution has one. */
  updates: CheckpointUpdates.optional(),
  /** Sum of every file's bytes, manifest excluded: the bound a fetcher checks before downloading. */
  totalBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
}).strict().superRefine((m, ctx) => {
  const weightBytes = m.weights.files.reduce((s, f) => s + f.bytes, 0)
  if (weightBytes !== m.weights.bytes) ctx.addIssue({ code: 'custom', path: ['weights', 'bytes'], message: `files hold ${weightBytes} bytes, manifest says ${m.weights.bytes}` })
  const total = m.model.bytes + weightBytes + m.extraFiles.reduce((s, f) => s + f.bytes, 0)
  if (total !== m.totalBytes) ctx.addIssue({ code: 'custom', path: ['totalBytes'], message: `files hold ${total} bytes, manifest says ${m.totalBytes}` })
  const names = [m.model.path, ...m.weights.files.map(f => f.path), ...m.extraFiles.map(f => f.path), CHECKPOINT_MANIFEST_FILE]
  if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['extraFiles'], message: 'file names must be unique' })
  const peers = m.contributions?.map(c => c.peer) ?? []
  for (let i = 1; i < peers.length; i++) {
    if (!(peers[i - 1] < peers[i])) { ctx.addIssue({ code: 'custom', path: ['contributions', i], message: 'contributions must be in peer-id order, one a peer' }); break }
  }
  const parts = m.updates?.parts.length
  for (const [i, c] of (m.contributions ?? []).entries()) {
    if (c.update == null) continue
    if (parts == null) { ctx.addIssue({ code: 'custom', path: ['contributions', i, 'update'], message: 'a contribution lists an update but the manifest has no `updates` (codec and part sizes)' }); break }
    if (c.update.length !== parts) { ctx.addIssue({ code: 'custom', path: ['contributions', i, 'update'], message: `the update lists ${c.update.length} part digest(s), the round has ${parts} part(s)` }); break }
  }
  if (m.version < 3 && (m.updates != null || m.contributions?.some(c => c.update != null) === true)) {
    ctx.addIssue({ code: 'custom', path: ['version'], message: `update commitments need manifest version 3, this one is version ${m.version}` })
  }
})
export type CheckpointManifest = z.infer<typeof CheckpointManifest>

export function parseCheckpointManifest (value: unknown, what = 'checkpoint manifest'): CheckpointManifest {
  return parseWith(CheckpointManifest, value, what)
}

export function decodeCheckpointManifest (bytes: Uint8Array, what = 'checkpoint manifest'): CheckpointManifest {
  return decodeJson(CheckpointManifest, bytes, MAX_CHECKPOINT_MANIFEST_BYTES, what)
}
