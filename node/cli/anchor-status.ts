/**
 * Where a checkpoint stands on chain, for `nearai checkpoint show`: the anchor of its job's round is final
 * for it, it is a candidate still short of the threshold, nothing anchors it, or the chain could not be
 * asked. Reading the chain never fails the command: an unreachable chain is a status, not an error.
 */
import type { RoundAnchors } from '../chain/index.ts'

export type AnchorStatus =
  | { status: 'final', attesters: string[], weightsMatch: boolean, finalCheckpoint: string }
  | { status: 'other-final', attesters: string[], weightsMatch: boolean, finalCheckpoint: string }
  | { status: 'candidate', attesters: string[], candidates: number }
  | { status: 'not-anchored', detail: string }
  | { status: 'chain-unreachable', detail: string }

export function anchorStatus (anchors: RoundAnchors | null, checkpointCid: string, weightsSha256: string, where: { job: string, round: number }): AnchorStatus {
  const final = anchors?.final
  if (final != null) {
    const kind = final.checkpoint_cid === checkpointCid ? 'final' : 'other-final'
    return { status: kind, attesters: final.attesters, weightsMatch: final.weights_sha256 === weightsSha256, finalCheckpoint: final.checkpoint_cid }
  }
  const mine = anchors?.candidates.find(c => c.checkpoint_cid === checkpointCid)
  if (mine != null) return { status: 'candidate', attesters: mine.attesters, candidates: anchors?.candidates.length ?? 0 }
  const others = anchors?.candidates.length ?? 0
  return { status: 'not-anchored', detail: others > 0 ? `job ${where.job} round ${where.round} has ${others} candidate(s), none for this checkpoint` : `no attestation on chain for job ${where.job} round ${where.round}` }
}

export function describeAnchorStatus (s: AnchorStatus): string {
  switch (s.status) {
    case 'final': return `final (attested by ${s.attesters.join(', ')})${s.weightsMatch ? '' : '; WARNING: the anchored weights hash differs from this checkpoint\'s'}`
    case 'other-final': return `not this one: checkpoint ${s.finalCheckpoint} is final for this round (weights ${s.weightsMatch ? 'identical' : 'different'})`
    case 'candidate': return `candidate, not final yet (attested by ${s.attesters.join(', ')}; ${s.candidates} candidate(s) for the round)`
    case 'not-anchored': return `not anchored (${s.detail})`
    case 'chain-unreachable': return `unknown: chain unreachable (${s.detail})`
  }
}
