/**
 * Scoring each contributor of a round by what its own update does to the model (issue: verified
 * contributions). The round's checkpoint commits to every contributor's update: the SHA-256 of its payload
 * to each all-reduce part, as the parts' reducers listed them (checkpoint.json `contributions[].update`), and
 * the part layout (`updates`). A validator fetches those payloads by content address (a raw block's CID is
 * the digest), decodes them with the job's codec as a reducer does, and evaluates the contributor's local
 * model `from − update` (a DiLoCo update is the global weights minus the local ones) on a held-out batch
 * with the deterministic evaluation: every honest validator computes the same loss, bit for bit.
 *
 *   delta   = loss(from − update) − loss(from)
 *   harmful = delta > tolerance × loss(from)        (default tolerance 0.05: 5 % worse than where it started)
 *
 * An honest update lowers the held-out loss (or barely moves it late in training); a sign-flipped or
 * poisoned one raises it. One harmful round may be bad luck: {@link HarmRecord} calls a peer consistently
 * harmful after `minHarmful` harmful verdicts among its last `window` scored rounds.
 *
 * Verdicts besides helpful/harmful: `rejected` (weight 0 this round: the update checks refused it, it did
 * not enter the average), `unverified` (no commitment, or its parts could not be fetched or decoded: not
 * evidence of harm, and no evidence of work either).
 */
import { codecFor, type CodecId } from '../compression/index.ts'
import { plaintextAggregator, type PartAggregator } from '../allreduce/combine.ts'
import { evaluateDeterministic } from '../training/deterministic-eval.ts'
import type { Samples } from '../training/local-trainer.ts'
import type { ModelSpec } from '../training/model-spec.ts'
import type { Contribution } from '../../protocol/contributions.ts'

export const DEFAULT_HARM_TOLERANCE = 0.05

/** How a round's updates were cut into all-reduce parts (checkpoint.json `updates`). */
export interface UpdateLayout {
  codec: CodecId
  /** Elements of each part, in part order. */
  parts: number[]
}

export type ContributionVerdict = 'helpful' | 'harmful' | 'rejected' | 'unverified'

export interface ContributorScore {
  peer: string
  samples: number
  verdict: ContributionVerdict
  /** Held-out loss of the contributor's local model (from − update). */
  loss?: number
  /** loss − the round's starting loss: negative when the update helped. */
  delta?: number
  /** Why a contributor is rejected or unverified. */
  reason?: string
}

export interface RoundScores {
  round: number
  /** Held-out loss of the weights the round's updates were trained from. */
  baseLoss: number
  tolerance: number
  scores: ContributorScore[]
}

export interface ScoreRoundOptions {
  round: number
  model: ModelSpec
  /** The weights the round's updates were trained from (the parent state's). */
  from: Float32Array
  /** The round's contributions, as its checkpoint lists them. */
  contributions: ReadonlyArray<Contribution & { update?: readonly string[] }>
  layout?: UpdateLayout
  heldOut: Samples
  /** Fetches the part payload whose SHA-256 is `digest` (hex), at most `maxBytes`; throws when it cannot. */
  fetchPart: (digest: string, maxBytes: number) => Promise<Uint8Array>
  tolerance?: number
}

/** Scores every contributor of a round; never throws for one contributor's missing or bad update. */
export async function scoreRound (opts: ScoreRoundOptions): Promise<RoundScores> {
  const tolerance = opts.tolerance ?? DEFAULT_HARM_TOLERANCE
  if (!(tolerance >= 0)) throw new RangeError(`tolerance must be a number ≥ 0, got ${tolerance}`)
  const baseLoss = evaluateDeterministic(opts.model, opts.from, opts.heldOut).loss
  // Parts decode as a reducer decodes them: one aggregator of the round's codec for every contributor.
  const aggregator = opts.layout == null ? undefined : plaintextAggregator(codecFor(opts.layout.codec))
  const scores = await Promise.all(opts.contributions.map(async (c): Promise<ContributorScore> => {
    const base = { peer: c.peer, samples: c.samples }
    if (c.samples === 0) return { ...base, verdict: 'rejected', reason: 'weight 0 this round: its update did not enter the average' }
    if (opts.layout == null || aggregator == null || c.update == null) return { ...base, verdict: 'unverified', reason: 'the checkpoint commits to no update of this peer' }
    let update: Float32Array
    try {
      update = await fetchUpdate(c.update, opts.layout, aggregator, opts.from.length, opts.fetchPart)
    } catch (err) {
      return { ...base, verdict: 'unverified', reason: (err as Error).message }
    }
    const local = new Float32Array(opts.from.length)
    for (let i = 0; i < local.length; i++) local[i] = opts.from[i] - update[i]
    let loss: number
    try {
      loss = evaluateDeterministic(opts.model, local, opts.heldOut).loss
    } catch (err) {
      // Non-finite weights: EvaluationInputError. An update that makes the model unevaluable is harmful.
      return { ...base, verdict: 'harmful', reason: (err as Error).message }
    }
    const delta = loss - baseLoss
    const harmful = !Number.isFinite(loss) || delta > tolerance * Math.max(baseLoss, Number.EPSILON)
    return { ...base, verdict: harmful ? 'harmful' : 'helpful', loss, delta }
  }))
  return { round: opts.round, baseLoss, tolerance, scores }
}

/** One contributor's whole update: its committed part payloads fetched, checked against the layout and decoded. */
async function fetchUpdate (digests: readonly string[], layout: UpdateLayout, aggregator: PartAggregator<Float32Array>, size: number, fetchPart: ScoreRoundOptions['fetchPart']): Promise<Float32Array> {
  if (digests.length !== layout.parts.length) throw new Error(`commits to ${digests.length} parts, the round has ${layout.parts.length}`)
  const total = layout.parts.reduce((a, b) => a + b, 0)
  if (total !== size) throw new Error(`the round's parts hold ${total} values, the model has ${size}`)
  const payloads = await Promise.all(digests.map(async (d, k) => await fetchPart(d, aggregator.maxContributionBytes(layout.parts[k]))))
  const out = new Float32Array(size)
  let offset = 0
  payloads.forEach((payload, k) => {
    out.set(aggregator.decodeContribution(payload, layout.parts[k]), offset)
    offset += layout.parts[k]
  })
  return out
}

/**
 * Which peers were harmful in enough of their recent scored rounds. Bounded: `window` verdicts a peer, and
 * peers not scored for `window` rounds are forgotten.
 */
export class HarmRecord {
  private readonly history = new Map<string, Array<{ round: number, harmful: boolean }>>()

  constructor (readonly minHarmful = 2, readonly window = 3) {
    if (!(Number.isInteger(minHarmful) && minHarmful >= 1 && Number.isInteger(window) && window >= minHarmful)) {
      throw new RangeError(`need 1 ≤ minHarmful ≤ window, got ${minHarmful} of ${window}`)
    }
  }

  /** Records a round's helpful and harmful verdicts (rejected and unverified ones say nothing about harm). */
  record (scores: RoundScores): void {
    for (const s of scores.scores) {
      if (s.verdict !== 'helpful' && s.verdict !== 'harmful') continue
      const h = (this.history.get(s.peer) ?? []).filter(e => e.round !== scores.round)
      h.push({ round: scores.round, harmful: s.verdict === 'harmful' })
      h.sort((a, b) => a.round - b.round)
      this.history.set(s.peer, h.slice(-this.window))
    }
    for (const [peer, h] of this.history) if (h[h.length - 1].round < scores.round - 4 * this.window) this.history.delete(peer)
  }

  /** The harmful rounds of `peer` among its last `window` scored ones. */
  harmfulRounds (peer: string): number[] {
    return (this.history.get(peer) ?? []).filter(e => e.harmful).map(e => e.round)
  }

  consistentlyHarmful (): string[] {
    return [...this.history.keys()].filter(p => this.harmfulRounds(p).length >= this.minHarmful).sort()
  }
}
