/**
 * Model checkpoints: a UnixFS folder in TensorFlow.js's own layout (`model.json` whose weights manifest
 * names the `group1-shardNofM.bin` files beside it, as `tf.io.browserFiles`/`tfjs_converter` write them)
 * plus `checkpoint.json` (job, round, parent, metrics, SHA-256 of every file) and any extra files, such as
 * DiLoCo's outer momentum. A fetched checkpoint is returned only after every hash matches.
 */
import type { Helia } from '@helia/interface'
import { unixfs } from '@helia/unixfs'
import type { CID } from 'multiformats/cid'
import type { io } from '@tensorflow/tfjs'
import {
  CHECKPOINT_MANIFEST_FILE, CHECKPOINT_MANIFEST_TYPE, CHECKPOINT_MANIFEST_VERSION, CHECKPOINT_MODEL_FILE, MAX_CHECKPOINT_MANIFEST_BYTES, MAX_MODEL_JSON_BYTES,
  decodeCheckpointManifest, notACheckpointReason, parseCheckpointManifest, type CheckpointExtraFile, type CheckpointFile, type CheckpointManifest, type CheckpointUpdates
} from '../../protocol/checkpoint-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { ContentTooLargeError, HashMismatchError, InvalidContentError, StorageError } from './errors.ts'
import { concat, readSmallFile, readVerifiedFile, sessionFor, sessionPhaseSignal, sha256Hex, withDeadline, type BlockSource, type FetchOptions, type FetchState } from './fetch.ts'
import { unixfsImportOptions } from './import-options.ts'
import { pinDag, provideAll, type ProvideResult } from './pins.ts'
import { canonicalContributions, type Contribution } from '../../protocol/contributions.ts'

/** The CID names something else than a checkpoint (a dataset manifest, a file, another folder). */
export class NotACheckpointError extends InvalidContentError {
  override name = 'NotACheckpointError'
}

/** A checkpoint is a UnixFS folder: a dag-pb root. */
/** TensorFlow.js's own weight-file size (tf.io splits weights into 4 MB shards). */
export const DEFAULT_WEIGHT_FILE_BYTES = 4 * 1024 * 1024
export const DEFAULT_MAX_CHECKPOINT_BYTES = 2 * 1024 * 1024 * 1024

export interface ExtraFileInput {
  path: string
  bytes: Uint8Array
  role: string
  dtype?: CheckpointExtraFile['dtype']
  shape?: number[]
}

export interface PublishCheckpointOptions {
  artifacts: io.ModelArtifacts
  job: string
  round: number
  parent?: CID | string | null
  metrics?: Record<string, number>
  /** e.g. `{ path: 'outer-momentum.bin', role: 'diloco-outer-momentum', dtype: 'float32', bytes }`. */
  extraFiles?: ExtraFileInput[]
  /** The round's accepted samples per peer, written in peer-id order: the CID commits to them. */
  contributions?: readonly Contribution[]
  /** The layout of the contributions' `update` digests (codec, part element counts); needed when any has one. */
  updates?: CheckpointUpdates
  weightFileBytes?: number
  provide?: boolean
  signal?: AbortSignal
}

export interface PublishedCheckpoint { cid: CID, manifest: CheckpointManifest, provided: ProvideResult }

function weightBytesOf (artifacts: io.ModelArtifacts): Uint8Array {
  const data = artifacts.weightData
  if (data == null) return new Uint8Array(0)
  const buffers = Array.isArray(data) ? data : [data]
  return concat(buffers.map(b => new Uint8Array(b)))
}

function fileEntry (path: string, bytes: Uint8Array): CheckpointFile {
  return { path, bytes: bytes.byteLength, sha256: sha256Hex(bytes) }
}

/** Writes the checkpoint folder, pins it and announces it; returns the folder's CID. */
export async function publishCheckpoint (helia: Helia, opts: PublishCheckpointOptions): Promise<PublishedCheckpoint> {
  const { artifacts } = opts
  if (artifacts.modelTopology == null || artifacts.weightSpecs == null) throw new TypeError('publishCheckpoint needs artifacts with modelTopology and weightSpecs')
  const weights = weightBytesOf(artifacts)
  const step = opts.weightFileBytes ?? DEFAULT_WEIGHT_FILE_BYTES
  const count = Math.max(1, Math.ceil(weights.byteLength / step))
  const weightFiles = Array.from({ length: count }, (_, i) => ({
    path: `group1-shard${i + 1}of${count}.bin`,
    bytes: weights.subarray(i * step, Math.min(weights.byteLength, (i + 1) * step))
  }))
  const modelJson = new TextEncoder().encode(JSON.stringify({
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? 'nearai',
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology,
    ...(artifacts.trainingConfig != null ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata != null ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    weightsManifest: [{ paths: weightFiles.map(f => f.path), weights: artifacts.weightSpecs }]
  }))
  const extras = opts.extraFiles ?? []
  const manifest = parseCheckpointManifest({
    type: CHECKPOINT_MANIFEST_TYPE,
    version: CHECKPOINT_MANIFEST_VERSION,
    job: opts.job,
    round: opts.round,
    parent: opts.parent != null ? opts.parent.toString() : null,
    metrics: opts.metrics ?? {},
    model: fileEntry(CHECKPOINT_MODEL_FILE, modelJson),
    weights: { sha256: sha256Hex(weights), bytes: weights.byteLength, files: weightFiles.map(f => fileEntry(f.path, f.bytes)) },
    extraFiles: extras.map(e => ({ ...fileEntry(e.path, e.bytes), role: e.role, ...(e.dtype != null ? { dtype: e.dtype } : {}), ...(e.shape != null ? { shape: e.shape } : {}) })),
    ...(opts.contributions != null ? { contributions: canonicalContributions(opts.contributions) } : {}),
    ...(opts.updates != null ? { updates: opts.updates } : {}),
    totalBytes: modelJson.byteLength + weights.byteLength + extras.reduce((s, e) => s + e.bytes.byteLength, 0)
  }, 'checkpoint manifest')
  const files = [
    { path: CHECKPOINT_MANIFEST_FILE, content: new TextEncoder().encode(JSON.stringify(manifest, null, 2)) },
    { path: CHECKPOINT_MODEL_FILE, content: modelJson },
    ...weightFiles.map(f => ({ path: f.path, content: f.bytes })),
    ...extras.map(e => ({ path: e.path, content: e.bytes }))
  ]
  const root = await importCheckpointFolder(helia.blockstore, files, opts.signal)
  await pinDag(helia, root, { signal: opts.signal, metadata: { kind: 'checkpoint', job: opts.job, round: opts.round } })
  const provided = opts.provide === false ? { provided: [], failed: [] } : await provideAll(helia, [root], { signal: opts.signal })
  return { cid: root, manifest, provided }
}

export interface CheckpointFileBytes { path: string, content: Uint8Array }

/** Adds the files as one UnixFS folder the way every checkpoint is stored; returns the folder's CID. */
async function importCheckpointFolder (blockstore: BlockSource, files: CheckpointFileBytes[], signal?: AbortSignal): Promise<CID> {
  let root: CID | undefined
  for await (const entry of unixfs({ blockstore }).addAll(files, { ...unixfsImportOptions(), wrapWithDirectory: true, signal })) {
    if (entry.path === '' || entry.path == null) root = entry.cid
  }
  if (root == null) throw new Error('the importer returned no folder')
  return root
}

/**
 * The CID a folder of these files gets when stored as a checkpoint is (same importer settings), computed
 * without storing anything: what `checkpoint verify` compares a folder on disk or a fetched checkpoint with.
 */
export async function checkpointFolderCid (files: CheckpointFileBytes[], signal?: AbortSignal): Promise<CID> {
  // The importer only puts blocks; this store hashes nothing and keeps nothing.
  const discard = { put: async (cid: CID) => cid } as unknown as BlockSource
  return await importCheckpointFolder(discard, files, signal)
}

/** Every file of a fetched checkpoint, byte for byte as stored, in the order publishCheckpoint adds them. */
export function checkpointFiles (checkpoint: Pick<FetchedCheckpoint, 'manifest' | 'manifestBytes' | 'modelJsonBytes' | 'weightData' | 'extraFiles'>): CheckpointFileBytes[] {
  const { manifest } = checkpoint
  let at = 0
  const weightFiles = manifest.weights.files.map(f => {
    const content = checkpoint.weightData.subarray(at, at + f.bytes)
    at += f.bytes
    return { path: f.path, content }
  })
  return [
    { path: CHECKPOINT_MANIFEST_FILE, content: checkpoint.manifestBytes },
    { path: manifest.model.path, content: checkpoint.modelJsonBytes },
    ...weightFiles,
    ...manifest.extraFiles.map(f => ({ path: f.path, content: checkpoint.extraFiles.get(f.path) ?? new Uint8Array(0) }))
  ]
}

/** Fetches and decodes only a checkpoint's checkpoint.json (bounded): what it lists, with each file's SHA-256. */
export async function getCheckpointManifest (helia: Helia, cid: CID, opts: FetchOptions = {}): Promise<{ manifest: CheckpointManifest, manifestBytes: Uint8Array }> {
  assertFolderCid(cid)
  return await withDeadline(cid, opts, async (signal, state) => {
    const manifestBytes = await readManifestBytes(helia, cid, signal, state, opts.offline, undefined)
    return { manifest: decodeManifest(cid, manifestBytes), manifestBytes }
  })
}

export interface GetCheckpointOptions extends FetchOptions {
  /** Refuse checkpoints whose manifest declares more bytes (default 2 GiB). */
  maxBytes?: number
  /** The weights hash the caller trusts (e.g. anchored on chain); checked besides the manifest's own. */
  expectedWeightsSha256?: string
}

export interface FetchedCheckpoint {
  cid: CID
  manifest: CheckpointManifest
  /** checkpoint.json and model.json as stored: with the weight and extra files, every byte of the folder. */
  manifestBytes: Uint8Array
  modelJsonBytes: Uint8Array
  /** Ready for `tf.loadLayersModel(checkpointIOHandler(artifacts))`. */
  artifacts: io.ModelArtifacts
  weightData: Uint8Array
  extraFiles: Map<string, Uint8Array>
}

/**
 * Fetches a checkpoint folder within the deadline and `maxBytes`, verifying model.json, each weight file,
 * all weights together and every extra file against checkpoint.json. A mismatch is HashMismatchError
 * naming the checkpoint CID and the file.
 */
export async function getCheckpoint (helia: Helia, cid: CID, opts: GetCheckpointOptions = {}): Promise<FetchedCheckpoint> {
  assertFolderCid(cid)
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CHECKPOINT_BYTES
  return await withDeadline(cid, opts, async (signal, state) => {
    const sessionSignal = sessionPhaseSignal(signal, opts)
    try {
      return await fetchCheckpoint(helia, cid, opts, maxBytes, sessionSignal, state, sessionFor(helia, cid, sessionSignal, opts.offline))
    } catch (err) {
      // No provider record for the folder (state snapshots between checkpoints are not announced): ask the
      // connected peers directly (see getShardBytes). Blocks a failed earlier try left locally are re-read
      // cheaply; errors about the content itself (wrong hash, too large) are final.
      if (signal.aborted || opts.offline === true || err instanceof StorageError) throw err
      return await fetchCheckpoint(helia, cid, opts, maxBytes, signal, state, undefined)
    }
  })
}

/** A checkpoint is a UnixFS folder (a dag-pb root): anything else is refused before any fetch. */
function assertFolderCid (cid: CID): void {
  const reason = notACheckpointReason(cid)
  if (reason != null) throw new NotACheckpointError(cid, reason)
}

async function readManifestBytes (helia: Helia, cid: CID, signal: AbortSignal, state: FetchState, offline: boolean | undefined, blockstore: BlockSource | undefined): Promise<Uint8Array> {
  try {
    return await readSmallFile(helia, cid, { signal, state, maxBytes: MAX_CHECKPOINT_MANIFEST_BYTES, path: CHECKPOINT_MANIFEST_FILE, offline, what: CHECKPOINT_MANIFEST_FILE, blockstore })
  } catch (err) {
    // The root arrived and has no checkpoint.json (a file, another folder): the exporter's path errors (a
    // block missing offline is a NotFoundError too, with another message: that one is not about the content).
    const message = (err as Error).message ?? ''
    if ((err as { code?: unknown }).code === 'ERR_BAD_PATH' || /^No link .* found under |^Cannot load path /.test(message)) {
      throw new NotACheckpointError(cid, `${cid.toString()} is not a checkpoint: it has no ${CHECKPOINT_MANIFEST_FILE} (${message})`, { cause: err })
    }
    throw err
  }
}

function decodeManifest (cid: CID, manifestBytes: Uint8Array): CheckpointManifest {
  try {
    return decodeCheckpointManifest(manifestBytes, `${CHECKPOINT_MANIFEST_FILE} of ${cid.toString()}`)
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new InvalidContentError(cid, err.message, { cause: err })
    throw err
  }
}

async function fetchCheckpoint (helia: Helia, cid: CID, opts: GetCheckpointOptions, maxBytes: number, signal: AbortSignal, state: FetchState, blockstore: BlockSource | undefined): Promise<FetchedCheckpoint> {
  const common = { signal, state, offline: opts.offline, errorCid: cid, onProgress: opts.onProgress, blockstore }
  const manifestBytes = await readManifestBytes(helia, cid, signal, state, opts.offline, blockstore)
  const manifest = decodeManifest(cid, manifestBytes)
  if (manifest.totalBytes > maxBytes) throw new ContentTooLargeError(cid, `checkpoint ${cid.toString()} declares ${manifest.totalBytes} bytes, over the limit of ${maxBytes}`, maxBytes)
  if (manifest.model.bytes > MAX_MODEL_JSON_BYTES) throw new ContentTooLargeError(cid, `model.json of ${cid.toString()} declares ${manifest.model.bytes} bytes`, MAX_MODEL_JSON_BYTES)

  const read = async (file: CheckpointFile): Promise<Uint8Array> => await readVerifiedFile(helia, cid, { ...common, path: file.path, bytes: file.bytes, sha256: file.sha256, what: `${file.path} of checkpoint ${cid.toString()}` })
  const modelJsonBytes = await read(manifest.model)
  let modelJson: io.ModelJSON
  try {
    modelJson = JSON.parse(new TextDecoder().decode(modelJsonBytes)) as io.ModelJSON
  } catch (err) {
    throw new InvalidContentError(cid, `${CHECKPOINT_MODEL_FILE} of checkpoint ${cid.toString()} is not JSON: ${(err as Error).message}`, { cause: err })
  }
  const groups = modelJson.weightsManifest ?? []
  const paths = groups.flatMap(g => g.paths)
  const listed = manifest.weights.files.map(f => f.path)
  if (paths.length !== listed.length || paths.some((p, i) => p !== listed[i])) {
    throw new InvalidContentError(cid, `checkpoint ${cid.toString()}: model.json names weight files [${paths.join(', ')}], ${CHECKPOINT_MANIFEST_FILE} lists [${listed.join(', ')}]`)
  }
  const parts: Uint8Array[] = []
  for (const file of manifest.weights.files) parts.push(await read(file))
  const weightData = concat(parts, manifest.weights.bytes)
  const actual = sha256Hex(weightData)
  for (const expected of [manifest.weights.sha256, opts.expectedWeightsSha256]) {
    if (expected != null && expected !== actual) throw new HashMismatchError(cid, `weights of checkpoint ${cid.toString()} have SHA-256 ${actual}, expected ${expected}`, expected, actual)
  }
  const extraFiles = new Map<string, Uint8Array>()
  for (const file of manifest.extraFiles) extraFiles.set(file.path, await read(file))
  const artifacts: io.ModelArtifacts = {
    modelTopology: modelJson.modelTopology,
    weightSpecs: groups.flatMap(g => g.weights),
    weightData: weightData.slice().buffer,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy ?? undefined,
    trainingConfig: modelJson.trainingConfig,
    userDefinedMetadata: modelJson.userDefinedMetadata
  }
  return { cid, manifest, manifestBytes, modelJsonBytes, artifacts, weightData, extraFiles }
}
