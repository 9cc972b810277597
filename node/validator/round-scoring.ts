/**
 * A validator's scoring of the rounds it checks (contribution-scores.ts): after a checkpoint round is attested,
 * the state it started from (its parent, fetched by CID or kept from the previous check) and every contributor's
 * committed update (fetched part by part by content address from the trainers that hold them) give each
 * contributor's loss change on a held-out batch (the first `samples` of the job's evaluation set). Verdicts are
 * logged (`event: 'validator-scores'`), kept in a HarmRecord, and consistently harmful contributors are
 * reported on chain (harm-reports.ts).
 *
 * Not scored: the first round (its parent is the job's initial state, which only the trainers' TensorFlow.js
 * builds) and overlapped jobs (`overlap: delayed-outer`: a round's updates were trained from an older state
 * than its parent).
 */
import type { Helia } from '@helia/interface'
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import { getCheckpoint } from '../storage/checkpoints.ts'
import { fetchUpdatePart } from '../storage/update-parts.ts'
import { sliceSamples } from '../training/data/mnist.ts'
import type { JobSpec } from '../training/job-spec.ts'
import type { Samples } from '../training/local-trainer.ts'
import { checkpointWeights, maxCheckpointBytes, type CheckpointClaim } from './checkpoint-check.ts'
import { HarmRecord, scoreRound, type RoundScores } from './contribution-scores.ts'
import { HarmReporter } from './harm-reports.ts'
import type { Ledger } from '../chain/ledger.ts'

/** Held-out samples each contributor's local model is evaluated on. */
export const DEFAULT_SCORE_SAMPLES = 256
/**
 * Bound on each fetch scoring makes (the parent state, each update part). Scoring runs between a validator's
 * rounds: a parent or part nobody serves any more must cost seconds, not the checkpoint fetch's full minute.
 */
export const SCORE_FETCH_TIMEOUT_MS = 20_000

export interface RoundScorerOptions {
  helia: Helia
  spec: JobSpec
  evalSet: Samples
  ledger: Pick<Ledger, 'accountId' | 'getTrainerByPeer' | 'reportCheat'>
  logger: Logger
  fetchTimeoutMs: number
  signal: AbortSignal
  samples?: number
  tolerance?: number
}

export class RoundScorer {
  private readonly record = new HarmRecord()
  private readonly reporter: HarmReporter
  private readonly heldOut: Samples
  /** The weights of the last checked checkpoints by CID: a round's parent is often the one checked before. */
  private readonly weights = new Map<string, Float32Array>()

  private readonly fetchTimeoutMs: number

  constructor (private readonly opts: RoundScorerOptions) {
    this.fetchTimeoutMs = Math.min(opts.fetchTimeoutMs, SCORE_FETCH_TIMEOUT_MS)
    this.reporter = new HarmReporter(opts.ledger, opts.spec.id, opts.logger)
    this.heldOut = sliceSamples(opts.evalSet, 0, Math.min(opts.evalSet.count, opts.samples ?? DEFAULT_SCORE_SAMPLES))
  }

  /** Scores the round of a checked checkpoint, records the verdicts and reports the consistently harmful. */
  async score (claim: CheckpointClaim): Promise<RoundScores | undefined> {
    const { spec, logger } = this.opts
    this.remember(claim.checkpointCid, claim.weights)
    const skip = (why: string): undefined => { logger.info({ event: 'validator-scores', round: claim.round, scored: false, why }, `round ${claim.round} not scored: ${why}`); return undefined }
    if (spec.overlap === 'delayed-outer') return skip('an overlapped job\'s updates were trained from an older state than the round\'s parent')
    if (claim.parent == null) return skip('the first round starts from the job\'s initial state')
    if (claim.updates == null) return skip('the checkpoint commits to no contributor\'s update')
    let from: Float32Array
    try {
      from = await this.parentWeights(claim.parent)
    } catch (err) {
      return skip(`its parent state ${claim.parent} could not be fetched: ${(err as Error).message}`)
    }
    const started = Date.now()
    const scores = await scoreRound({
      round: claim.round,
      model: spec.model,
      from,
      contributions: claim.contributions,
      layout: claim.updates,
      heldOut: this.heldOut,
      tolerance: this.opts.tolerance,
      fetchPart: async (digest, maxBytes) => await fetchUpdatePart(this.opts.helia, digest, { maxBytes, timeoutMs: this.fetchTimeoutMs, signal: this.opts.signal })
    })
    this.record.record(scores)
    logger.info({
      event: 'validator-scores',
      round: claim.round,
      scored: true,
      baseLoss: scores.baseLoss,
      heldOut: this.heldOut.count,
      scores: scores.scores.map(s => ({ peer: s.peer, verdict: s.verdict, delta: s.delta, reason: s.reason })),
      ms: Date.now() - started
    }, `round ${claim.round}: ${scores.scores.filter(s => s.verdict === 'harmful').length} harmful of ${scores.scores.length} contributors`)
    await this.reporter.report(this.record, claim.round)
    return scores
  }

  private remember (cid: string, weights: Float32Array): void {
    this.weights.set(cid, weights)
    while (this.weights.size > 2) this.weights.delete(this.weights.keys().next().value!)
  }

  private async parentWeights (parent: string): Promise<Float32Array> {
    const known = this.weights.get(parent)
    if (known != null) return known
    const { spec } = this.opts
    const checkpoint = await getCheckpoint(this.opts.helia, CID.parse(parent), { maxBytes: maxCheckpointBytes(spec), timeoutMs: this.fetchTimeoutMs, signal: this.opts.signal })
    return checkpointWeights(spec, checkpoint)
  }
}
