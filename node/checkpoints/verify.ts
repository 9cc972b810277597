/**
 * Verifies a whole checkpoint against the anchor its job's validators finalised on chain: every file
 * (checkpoint.json, model.json, the weight files, extra files) must hash to the anchored checkpoint CID, and
 * the weights to the anchored weights hash.
 *
 * - A checkpoint fetched by CID: each file is checked against its checkpoint.json while it streams in, the
 *   folder's CID is recomputed from the bytes that arrived, and that CID must be the anchored one.
 * - A folder on disk (`checkpoint get --out`): its files are hashed as IPFS would store them and the
 *   resulting CID must be the anchored one; nothing its own checkpoint.json claims is trusted beyond naming
 *   the job and round to look up.
 *
 * When the CIDs differ, the anchored checkpoint's checkpoint.json (small) is fetched and compared file by
 * file, so the message names what differs: "model.json differs: sha256 X here, Y in the anchored checkpoint".
 */
import type { CID } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import { CID as CIDClass } from 'multiformats/cid'
import {
  checkpointFiles, checkpointFolderCid, getCheckpoint, getCheckpointManifest, NotACheckpointError, type CheckpointFileBytes
} from '../storage/checkpoints.ts'
import { ContentNotFoundError, FetchTimeoutError, StorageError } from '../storage/errors.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { sha256Hex } from '../storage/fetch.ts'
import type { Ledger, RoundAnchors } from '../chain/ledger.ts'
import { CHECKPOINT_MANIFEST_FILE, type CheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { readCheckpointFolder } from './folder.ts'

export interface FileDifference {
  path: string
  /** SHA-256 of the file checked (null: it has no such file). */
  here: string | null
  /** SHA-256 the anchored checkpoint lists for it (null: it has no such file). */
  anchored: string | null
}

/**
 * `hash-mismatch`: the weights are not the anchored ones; `content-mismatch`: a file is not the anchored one
 * (or does not match the checkpoint's own checkpoint.json) while the weights may be.
 */
export type VerifyFailure =
  | 'fetch-failed' | 'not-a-checkpoint' | 'unknown-round' | 'not-final' | 'hash-mismatch' | 'content-mismatch'

export type VerifyOutcome =
  | { ok: true, job: string, round: number, checkpointCid: string, weightsSha256: string, attesters: string[], dissenters: string[] }
  | { ok: false, reason: VerifyFailure, message: string, anchoredCid?: string, differences?: FileDifference[] }

export interface VerifyOptions {
  timeoutMs?: number
  signal?: AbortSignal
}

/** What the anchored checkpoint lists, for naming differences; fetched only when the CIDs differ. */
export type AnchoredManifestSource = (cid: CID) => Promise<{ manifest: CheckpointManifest, manifestBytes: Uint8Array }>

/** Fetches checkpoint `cid` from IPFS and verifies it against the chain. */
export async function verifyCheckpoint (helia: Helia, ledger: Ledger, cid: CID, opts: VerifyOptions = {}): Promise<VerifyOutcome> {
  let fetched
  try {
    fetched = await getCheckpoint(helia, cid, { timeoutMs: opts.timeoutMs, signal: opts.signal })
  } catch (err) {
    const message = (err as Error).message
    if (err instanceof NotACheckpointError || err instanceof InvalidMessageError) return { ok: false, reason: 'not-a-checkpoint', message }
    // A file that does not match the size or hash its checkpoint.json lists: the error names the file.
    if (err instanceof StorageError && !(err instanceof ContentNotFoundError) && !(err instanceof FetchTimeoutError)) return { ok: false, reason: 'content-mismatch', message }
    return { ok: false, reason: 'fetch-failed', message: `could not fetch checkpoint ${cid.toString()}: ${message}` }
  }
  const files = checkpointFiles(fetched)
  const recomputed = await checkpointFolderCid(files, opts.signal)
  if (recomputed.toString() !== cid.toString()) {
    // Only possible for a folder with files its checkpoint.json does not list (or stored another way).
    return { ok: false, reason: 'content-mismatch', message: `the files checkpoint.json of ${cid.toString()} lists make the folder ${recomputed.toString()}, not ${cid.toString()}: the folder holds more than it lists` }
  }
  return await checkAgainstChain({ cid, files, manifest: fetched.manifest, what: `checkpoint ${cid.toString()}` }, ledger, anchoredFrom(helia, opts))
}

/** Verifies a checkpoint folder on disk (as `checkpoint get --out` writes it) against the chain. */
export async function verifyCheckpointFolder (dir: string, ledger: Ledger, anchored: AnchoredManifestSource, opts: VerifyOptions = {}): Promise<VerifyOutcome> {
  let folder
  try {
    folder = await readCheckpointFolder(dir)
  } catch (err) {
    return { ok: false, reason: 'not-a-checkpoint', message: (err as Error).message }
  }
  const cid = await checkpointFolderCid(folder.files, opts.signal)
  return await checkAgainstChain({ cid, files: folder.files, manifest: folder.manifest, what: `folder ${dir} (CID ${cid.toString()})` }, ledger, anchored)
}

/** Reads the anchored checkpoint's checkpoint.json from IPFS. */
export function anchoredFrom (helia: Helia, opts: VerifyOptions = {}): AnchoredManifestSource {
  return async (cid) => await getCheckpointManifest(helia, cid, { timeoutMs: opts.timeoutMs ?? 60_000, signal: opts.signal })
}

interface Candidate { cid: CID, files: CheckpointFileBytes[], manifest: CheckpointManifest, what: string }

/** The SHA-256 of the weight files' bytes in checkpoint.json's order (what anchors commit to). */
function weightsHashOf (c: Candidate): string | null {
  const byPath = new Map(c.files.map(f => [f.path, f.content]))
  const parts: Uint8Array[] = []
  for (const f of c.manifest.weights.files) {
    const bytes = byPath.get(f.path)
    if (bytes == null) return null
    parts.push(bytes)
  }
  return sha256Hex(parts)
}

async function checkAgainstChain (c: Candidate, ledger: Ledger, anchored: AnchoredManifestSource): Promise<VerifyOutcome> {
  const { job, round } = c.manifest
  const anchors: RoundAnchors | null = await ledger.getAnchor(job, round)
  if (anchors == null || (anchors.final == null && anchors.candidates.length === 0)) {
    return { ok: false, reason: 'unknown-round', message: `no attestation on chain for job ${job} round ${round}` }
  }
  const final = anchors.final
  if (final == null) {
    return { ok: false, reason: 'not-final', message: `job ${job} round ${round} is not final yet (${anchors.candidates.length} candidate(s), threshold not reached)` }
  }
  const weights = weightsHashOf(c)
  if (c.cid.toString() === final.checkpoint_cid) {
    // The bytes hash to the anchored CID; the anchored weights hash must then be theirs too.
    if (weights !== final.weights_sha256) {
      return { ok: false, reason: 'hash-mismatch', anchoredCid: final.checkpoint_cid, message: `weights hash ${String(weights)} of the anchored checkpoint differs from the anchored weights hash ${final.weights_sha256} (job ${job} round ${round}): the anchor itself is inconsistent` }
    }
    return { ok: true, job, round, checkpointCid: final.checkpoint_cid, weightsSha256: final.weights_sha256, attesters: final.attesters, dissenters: anchors.dissent.map(d => d.validator) }
  }

  let reference: { manifest: CheckpointManifest, manifestBytes: Uint8Array } | undefined
  let unreachable: string | undefined
  try {
    reference = await anchored(CIDClass.parse(final.checkpoint_cid))
  } catch (err) {
    unreachable = (err as Error).message
  }
  const differences = reference != null
    ? compareFiles(c.files, reference.manifest, reference.manifestBytes)
    : weights !== final.weights_sha256 ? [{ path: 'weights', here: weights, anchored: final.weights_sha256 }] : []
  const described = differences.map(d => d.here == null
    ? `${d.path} is missing here (sha256 ${String(d.anchored)} in the anchored checkpoint)`
    : d.anchored == null
      ? `${d.path} is not in the anchored checkpoint (sha256 ${d.here} here)`
      : `${d.path} differs: sha256 ${d.here} here, ${d.anchored} in the anchored checkpoint`)
  const head = `${c.what} is not the checkpoint anchored for job ${job} round ${round} (${final.checkpoint_cid})`
  const tail = unreachable != null
    ? `; the anchored checkpoint's ${CHECKPOINT_MANIFEST_FILE} could not be fetched to compare every file (${unreachable})`
    : described.length === 0 ? '; it holds the same files, stored another way' : ''
  return {
    ok: false,
    // hash-mismatch: the weights are not the anchored ones; content-mismatch: they are, another file is not.
    reason: weights !== final.weights_sha256 ? 'hash-mismatch' : 'content-mismatch',
    anchoredCid: final.checkpoint_cid,
    differences,
    message: `${head}${described.length > 0 ? ': ' + described.join('; ') : ''}${tail}`
  }
}

/**
 * Every file whose bytes here differ from what the anchored checkpoint lists (model.json first, then weight
 * files, extra files, files only one side has, and checkpoint.json last: it lists the others' hashes, so it
 * differs whenever they do).
 */
function compareFiles (files: CheckpointFileBytes[], anchored: CheckpointManifest, anchoredManifestBytes: Uint8Array): FileDifference[] {
  const here = new Map(files.map(f => [f.path, sha256Hex(f.content)]))
  const there = new Map<string, string>([
    [anchored.model.path, anchored.model.sha256],
    ...anchored.weights.files.map(f => [f.path, f.sha256] as [string, string]),
    ...anchored.extraFiles.map(f => [f.path, f.sha256] as [string, string]),
    [CHECKPOINT_MANIFEST_FILE, sha256Hex(anchoredManifestBytes)]
  ])
  const order = [...there.keys(), ...[...here.keys()].filter(p => !there.has(p)).sort()]
    .filter(p => p !== CHECKPOINT_MANIFEST_FILE).concat(CHECKPOINT_MANIFEST_FILE)
  return order
    .map(path => ({ path, here: here.get(path) ?? null, anchored: there.get(path) ?? null }))
    .filter(d => d.here !== d.anchored)
}
