/**
 * Verifies a checkpoint downloaded from IPFS against the anchor its job's validators finalised on chain:
 * fetch (bounded, every file checked against checkpoint.json), recompute the weights hash, look up the
 * anchor for the checkpoint's job and round, and compare.
 */
import type { CID } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import { getCheckpoint } from '../storage/checkpoints.ts'
import type { Ledger } from '../chain/ledger.ts'

export type VerifyOutcome =
  | { ok: true, job: string, round: number, weightsSha256: string, attesters: string[] }
  | { ok: false, reason: 'fetch-failed' | 'unknown-round' | 'not-final' | 'hash-mismatch', message: string }

export async function verifyCheckpoint (helia: Helia, ledger: Ledger, cid: CID, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<VerifyOutcome> {
  let fetched
  try {
    fetched = await getCheckpoint(helia, cid, { timeoutMs: opts.timeoutMs, signal: opts.signal })
  } catch (err) {
    return { ok: false, reason: 'fetch-failed', message: `could not fetch checkpoint ${cid.toString()}: ${(err as Error).message}` }
  }
  const { job, round, weights } = fetched.manifest
  const anchors = await ledger.getAnchor(job, round)
  if (anchors == null || (anchors.final == null && anchors.candidates.length === 0)) {
    return { ok: false, reason: 'unknown-round', message: `no attestation on chain for job ${job} round ${round}` }
  }
  if (anchors.final == null) {
    return { ok: false, reason: 'not-final', message: `job ${job} round ${round} is not final yet (${anchors.candidates.length} candidate(s), threshold not reached)` }
  }
  if (anchors.final.weights_sha256 !== weights.sha256) {
    return { ok: false, reason: 'hash-mismatch', message: `weights hash ${weights.sha256} differs from the anchored ${anchors.final.weights_sha256} (job ${job} round ${round})` }
  }
  return { ok: true, job, round, weightsSha256: weights.sha256, attesters: anchors.final.attesters }
}
