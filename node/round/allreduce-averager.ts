/**
 * The reduce step of a round over the network. Its parts come in as components (the js-libp2p pattern),
 * each behind a narrow interface, so tests give it in-memory ones:
 *
 *   matchmaking  forms the round's group on the job's ready topic      (GroupFormation: Matchmaking)
 *   encoder      the encode step: codec + per-part error feedback       (UpdateEncoder: node/compression)
 *   allReduce    moves the encoded parts and reduces them               (GroupAllReduce: ButterflyAllReduce)
 *
 * and the combine rule decides what a part's reduction is: the weighted mean of samples today; a robust rule
 * (trimmed mean, coordinate-wise median) is another `combine`, a ciphertext sum another `aggregator` (with an
 * encoder that encrypts). Data flow: update → group → payloads (encoded once) → all-reduce → average.
 *
 * No fixed timeouts: the group closes as soon as every connected peer of the job is ready, so a round waits
 * for its slowest live peer; the window (match-window.ts) only bounds how long a stalled peer can hold the
 * others. A peer that misses it is left out of this round and catches up from the announced state.
 */
import { partitionGroup } from '../allreduce/group.ts'
import { plaintextAggregator, weightedMean, type CombineRule, type PartAggregator } from '../allreduce/combine.ts'
import { jobAggregator, type AggregationSettings } from '../allreduce/aggregation.ts'
import { decodeRejected, REJECTED_META_KEY, type SampleBound } from '../allreduce/update-checks.ts'
import type { RoundGroup } from '../allreduce/group.ts'
import type { GroupAllReduce, PartReport } from '../allreduce/all-reduce.ts'
import type { FormGroupOptions, FormGroupResult } from '../allreduce/matchmaking.ts'
import type { UpdateEncoder } from '../compression/update-encoder.ts'
import { systemClock, type Clock } from '../time/clock.ts'
import { payloadDigest } from '../allreduce/audit-state.ts'
import type { Contribution } from '../../protocol/contributions.ts'
import { MatchWindow } from './match-window.ts'
import { RoundFailedError } from './round-loop.ts'
import type { AveragedUpdate, LocalUpdate, RoundAverager } from './steps.ts'

/** What the averager needs of matchmaking (`Matchmaking` fits). */
export interface GroupFormation {
  /** Starts listening to the job's ready topic (announcements may come before this peer's own round). */
  join: (job: string) => void
  stop: () => void
  /** The highest try of `round` any peer announced (-1: none). */
  highestAttempt: (job: string, round: number) => number
  formGroup: (opts: FormGroupOptions) => Promise<FormGroupResult>
}

export interface AllReduceAveragerComponents {
  matchmaking: GroupFormation
  encoder: UpdateEncoder
  allReduce: GroupAllReduce
  /** A pino logger fits. */
  logger: { info: (obj: object, msg: string) => void }
  clock?: Clock
}

export interface AllReduceAveragerInit {
  job: string
  /** How the contributions to one part are combined (default: the weighted mean of samples), without update checks. */
  combine?: CombineRule
  /**
   * The job's aggregation (its spec's `aggregation`): the combine rule, behind the update checks
   * (allreduce/update-checks.ts). Wins over `combine`. A member any reducer rejected gets 0 samples in the
   * round's contributions.
   */
  aggregation?: AggregationSettings
  /** The most samples a member can claim in a round (the update checks' sample check; with `aggregation`). */
  sampleBound?: SampleBound
  /** What travels and how a part is reduced, when it is not plaintext through the encoder's codec (a ciphertext sum). */
  aggregator?: PartAggregator<any>
  /** Fewer members than this and the round fails for this peer (a lone peer must not train a fork of its own). */
  /**
   * A number, or computed for each round (run-job: also more than half of the held round's members, so two disjoint
   * groups can never both complete a round).
   */
  minGroupSize?: number | (() => number)
  /** How long the group waits for its peers (sized from this peer's training time). */
  window?: MatchWindow
  /**
   * The job's peers this node is connected to now (the subscribers of the job's ready topic). A round closes as
   * soon as all of them are ready; only a missing one (stalled, or just crashed) makes it wait the full window,
   * and a crashed peer stops being expected as soon as its connection closes.
   */
  livePeers?: () => string[]
  /**
   * Called with every accepted exchange: what this peer sent (its payloads decoded), the average, and each
   * part's reducer and contributors. A diagnostic (exchange-recorder.ts writes it to disk); nothing uses it to
   * decide anything.
   */
  onExchange?: (exchange: ExchangeRecord) => void
  /**
   * Resolves true once the job's peers announce a state of `round` or later (they completed it without this
   * peer) under the catch-up quorum rule (node/job/round-trust.ts: one announcer, member or not, cannot end the
   * wait), false when `signal` aborts: the wait for a group then ends at once instead of lasting the window. A
   * peer that restarted or fell behind otherwise waits out a whole window for a round that is already over.
   */
  completedElsewhere?: (round: number, signal: AbortSignal) => Promise<boolean>
  /** A newcomer that took a place in the round's group and contributed nothing: barred for a while (node/job/membership.ts). */
  barNewcomer?: (peer: string, round: number) => void
  /**
   * This peer's id: with it, the digests the reducers listed for this peer's own contribution are checked against
   * its payloads (a mismatch is logged; the reducer audits deal with a misreported input).
   */
  self?: string
  /**
   * Called synchronously once a round's average is accepted, with this peer's own contribution payloads (one a
   * part, in part order: the bytes whose SHA-256 the round's `update` digests are). The buffers return to a pool
   * after the round: copy what you keep (node/storage/update-parts.ts storeUpdateParts does). Must not throw.
   */
  onOwnPayloads?: (round: number, payloads: readonly Uint8Array[]) => void
}

export interface ExchangeRecord {
  round: number
  attempt: number
  members: readonly string[]
  weight: number
  /**
   * This peer's contribution as every reducer decodes it: its payloads, decoded, part after part. Valid during
   * the call only (the next round reuses its memory): copy it to keep it.
   */
  sent: Float32Array
  average: Float32Array
  parts: PartReport[]
}

/** Earliest close of the ready view after this peer's own announcement, so that a peer nobody expected yet can be heard. */
const MIN_READY_WAIT_MS = 300
/** Announced upload speed before anything is measured (bytes/s), and the least ever announced. */
const INITIAL_SPEED_BPS = 50e6
const MIN_SPEED_BPS = 1e6

export class AllReduceAverager implements RoundAverager {
  private readonly matchmaking: GroupFormation
  private readonly encoder: UpdateEncoder
  private readonly allReduce: GroupAllReduce
  private readonly logger: AllReduceAveragerComponents['logger']
  private readonly clock: Clock
  private readonly aggregator: PartAggregator<any>
  readonly window: MatchWindow
  private speedBps = INITIAL_SPEED_BPS
  private lastTry?: { round: number, attempt: number }
  /**
   * The two arrays the averages are assembled in, used in turn: a round's average stays valid through the next
   * round (the round loops apply it within its own round), and no round faults in a fresh vector.
   */
  private readonly results: Array<Float32Array | undefined> = [undefined, undefined]
  private nextResult = 0

  constructor (components: AllReduceAveragerComponents, private readonly init: AllReduceAveragerInit) {
    this.matchmaking = components.matchmaking
    this.encoder = components.encoder
    this.allReduce = components.allReduce
    this.logger = components.logger
    this.clock = components.clock ?? systemClock
    this.aggregator = init.aggregator ?? (init.aggregation != null
      ? jobAggregator(components.encoder.codec, init.aggregation, init.sampleBound)
      : plaintextAggregator(components.encoder.codec, init.combine ?? weightedMean))
    this.window = init.window ?? new MatchWindow()
  }

  async start (): Promise<void> {
    this.matchmaking.join(this.init.job)
    await this.allReduce.start()
  }

  async stop (): Promise<void> {
    this.matchmaking.stop()
    await this.allReduce.stop()
  }

  private async formGroup (round: number, signal: AbortSignal, opts: Omit<FormGroupOptions, 'signal'>): Promise<FormGroupResult> {
    const watch = this.init.completedElsewhere
    if (watch == null) return await this.matchmaking.formGroup({ ...opts, signal })
    const stopWatching = new AbortController()
    const overtaken = new AbortController()
    watch(round, AbortSignal.any([signal, stopWatching.signal])).then((done) => {
      if (done) overtaken.abort(new RoundFailedError(`round ${round}: the job's peers completed it without this peer`))
    }, () => {})
    try {
      return await this.matchmaking.formGroup({ ...opts, signal: AbortSignal.any([signal, overtaken.signal]) })
    } catch (err) {
      if (overtaken.signal.aborted && !signal.aborted) throw overtaken.signal.reason
      throw err
    } finally {
      stopWatching.abort()
    }
  }

  async average (round: number, update: LocalUpdate, signal: AbortSignal): Promise<AveragedUpdate> {
    const { job } = this.init
    const min = typeof this.init.minGroupSize === 'function' ? this.init.minGroupSize() : (this.init.minGroupSize ?? 1)
    const vectorLength = update.pseudoGradient.length
    const deadline = this.clock.now() + this.window.windowMs()
    const expected = this.init.livePeers?.()
    // The same round again (its group failed to form, nobody announced a newer state): the next try, or the
    // highest try another peer of the job already announced, so that peers retrying at different paces meet.
    const own = this.lastTry?.round === round ? this.lastTry.attempt + 1 : 0
    const attempt = Math.max(own, this.matchmaking.highestAttempt(job, round))
    this.lastTry = { round, attempt }

    // 1. The group: who averages this round (given up as soon as the others announce they completed it).
    const { group, view, excluded, newcomers } = await this.formGroup(round, signal, {
      job, round, vectorLength, codec: this.encoder.codec.id, speedBps: this.speedBps, deadline, expected, minWaitMs: MIN_READY_WAIT_MS, attempt
    })
    if (group == null) throw new RoundFailedError(`round ${round}: not in the group (saw ${view.length}, excluded ${excluded.length})`)
    if (group.members.length < min) throw new RoundFailedError(`round ${round}: the group has ${group.members.length} member(s), the job needs ${min}`)
    this.logger.info({ event: 'group', round, attempt, members: group.members, excluded }, 'all-reduce group formed')

    // 2. Encode: each of the group's parts once, with the error carried from the last accepted round.
    const encoded = this.encoder.encode(update.pseudoGradient, partitionGroup(group))

    // 3. All-reduce the encoded parts with the round's combine rule, into the older of the two result arrays.
    const slot = this.nextResult
    this.nextResult ^= 1
    const into = this.results[slot]?.length === vectorLength ? this.results[slot]! : new Float32Array(vectorLength)
    this.results[slot] = undefined
    const result = await this.allReduce.run({
      group, vector: encoded.values, payloads: encoded.payloads, decoded: encoded.decoded, weight: update.samples, aggregator: this.aggregator, into, signal,
      // The encode step's arrays serve a later round once the all-reduce is done with them.
      releasePayloads: () => { encoded.release() }
    })
    // Only a run that resolved is done writing into its array (see RunOptions.into): that one may be reused.
    this.results[slot] = into
    const contributors = result.contributors.filter(c => c.fraction > 0)
    const rejected = rejectedMembers(group, result.parts, this.logger)
    const accepted = contributors.filter(c => !rejected.has(c.peer))
    // A newcomer that took a place and gave nothing the round could use is left out of the next rounds.
    for (const p of newcomers ?? []) if (group.members.includes(p) && !accepted.some(c => c.peer === p)) this.init.barNewcomer?.(p, round)
    if (accepted.length < min) {
      // Members dropped out during the exchange (or were rejected): a result from fewer peers than the job allows is a fork.
      throw new RoundFailedError(`round ${round}: only ${accepted.length} of the group's ${group.members.length} members contributed${rejected.size > 0 ? ` (${rejected.size} rejected)` : ''}, the job needs ${min}`)
    }
    // The same for every part: a peer cut off mid-round may hold parts it reduced (or stood in for, or kept) alone
    // while the others completed the round without it. Its vector would then be one nobody else holds.
    const thin = result.parts.filter(p => p.contributors.filter(c => !rejected.has(c.peer)).length < min)
    if (thin.length > 0) {
      throw new RoundFailedError(`round ${round}: part(s) ${thin.map(p => p.index).join(', ')} combined fewer than the ${min} members the job needs (this peer was cut off from the others mid-round)`)
    }
    if (rejected.size > 0) this.logger.info({ event: 'rejected', round, attempt, peers: [...rejected.keys()], why: Object.fromEntries(rejected) }, 'updates rejected: weight 0 this round')
    // The average is accepted: what this round's encoding lost is carried into the next one.
    encoded.commit()
    if (result.durationMs > 0 && result.bytesSent > 0) this.speedBps = Math.max(MIN_SPEED_BPS, result.bytesSent / (result.durationMs / 1000))
    if (this.init.onExchange != null && encoded.decoded != null && this.aggregator.fromDecoded != null) {
      // The encode step has what the payloads decode to.
      this.init.onExchange({ round, attempt, members: group.members, weight: update.samples, sent: encoded.decoded, average: result.vector, parts: result.parts })
    } else if (this.init.onExchange != null) {
      const sent = new Float32Array(vectorLength)
      // Plaintext aggregators decode a contribution to its floats; an encrypted one has nothing to show here.
      const decoded = result.parts.map((part, k) => this.aggregator.decodeContribution(encoded.payloads[k], part.elements) as unknown)
      if (decoded.every(d => d instanceof Float32Array)) {
        result.parts.forEach((part, k) => { sent.set(decoded[k] as Float32Array, part.offset) })
        this.init.onExchange({ round, attempt, members: group.members, weight: update.samples, sent, average: result.vector, parts: result.parts })
      }
    }
    const commitments = this.init.aggregator == null ? updateCommitments(result.parts) : undefined
    if (commitments != null && this.init.self != null) this.checkOwnDigests(round, this.init.self, encoded.payloads, commitments.update.get(this.init.self))
    if (this.init.onOwnPayloads != null) {
      try {
        this.init.onOwnPayloads(round, encoded.payloads)
      } catch (err) {
        this.logger.info({ round, err: (err as Error).message }, 'the own-payloads hook failed')
      }
    }
    return {
      average: result.vector,
      contributions: contributors.map(c => withUpdate({ peer: c.peer, samples: rejected.has(c.peer) ? 0 : c.weight }, commitments?.update.get(c.peer))),
      ...(commitments != null && contributors.some(c => commitments.update.has(c.peer)) ? { updates: { codec: this.encoder.codec.id, parts: commitments.parts } } : {}),
      dropped: result.dropped,
      standIns: result.standIns,
      bytesSent: result.bytesSent,
      bytesReceived: result.bytesReceived
    }
  }

  /** The reducers' digests of this peer's own contribution should be those of its payloads: log when not. */
  private checkOwnDigests (round: number, self: string, payloads: readonly Uint8Array[], listed: string[] | undefined): void {
    if (listed == null) return
    const own = payloads.map(p => payloadDigest(p))
    const differ = listed.flatMap((d, k) => d !== own[k] ? [k] : [])
    if (differ.length > 0 || own.length !== listed.length) {
      this.logger.info({ event: 'update-digest-mismatch', round, self, parts: differ }, 'reducers listed other digests for this peer\'s contribution than its payloads have')
    }
  }
}

function withUpdate (c: Contribution, update: string[] | undefined): Contribution {
  return update != null ? { ...c, update } : c
}

/**
 * Each contributor's update digests (its payload's SHA-256 in every part, in part order), for the contributors
 * every part lists with a digest (the reducer audits are on), and each part's element count.
 */
export function updateCommitments (parts: readonly PartReport[]): { update: Map<string, string[]>, parts: number[] } {
  const ordered = [...parts].sort((a, b) => a.index - b.index)
  const update = new Map<string, string[]>()
  if (ordered.length === 0) return { update, parts: [] }
  for (const { peer } of ordered[0].contributors) {
    const digests = ordered.map(p => p.contributors.find(c => c.peer === peer)?.digest)
    if (digests.every((d): d is string => d != null)) update.set(peer, digests)
  }
  return { update, parts: ordered.map(p => p.elements) }
}

/**
 * The members with weight 0 this round, with why: those any part's reducer rejected (the `rejected` bitmap of
 * its result's meta), and those that claimed different sample counts to different reducers. Every member
 * receives the same part results, so every member derives the same set. A bitmap that does not fit the group
 * is ignored (logged): it comes from a reducer, whose results the reducer audits check.
 */
export function rejectedMembers (group: RoundGroup, parts: PartReport[], logger?: AllReduceAveragerComponents['logger']): Map<string, string> {
  const out = new Map<string, string>()
  const claims = new Map<string, number>()
  for (const part of parts) {
    const bitmap = part.meta?.[REJECTED_META_KEY]
    if (typeof bitmap === 'string') {
      try {
        for (const peer of decodeRejected(group.members, bitmap)) if (!out.has(peer)) out.set(peer, `rejected by the reducer of part ${part.index}`)
      } catch (err) {
        logger?.info({ part: part.index, reducer: part.reducedBy, err: (err as Error).message }, 'ignored a malformed rejection list')
      }
    }
    for (const c of part.contributors) {
      const claimed = claims.get(c.peer)
      if (claimed == null) claims.set(c.peer, c.weight)
      else if (claimed !== c.weight && !out.has(c.peer)) out.set(c.peer, `claimed ${claimed} and ${c.weight} samples to different reducers`)
    }
  }
  return out
}
