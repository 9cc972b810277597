/**
 * The job's round announcements on gossip, and catching up from them. After each round every peer announces
 * (job, round, weights hash, the CID of its state snapshot, contributions); a peer that is behind (it joined
 * late, restarted, or failed a round the others completed) adopts the newest state the round-trust rule lets it
 * (round-trust.ts: vouched for by a quorum of the participants of the round it holds, or anchored on chain),
 * fetched by the vouched CID and verified against the vouched hash, job and round before use.
 */
import { CID } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import type { Logger } from 'pino'
import { GOSSIP_VERSION } from '../../protocol/ids.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import type { GossipMessage, RoundAnnouncement } from '../../protocol/gossip.ts'
import type { GossipVerdict, TypedGossip } from '../network/gossip.ts'
import type { Contribution, GlobalState, StateSync } from '../round/steps.ts'
import { weightsHash } from '../training/outer-optimizer.ts'
import { loadState } from './state-snapshot.ts'
import { JobMembership } from './membership.ts'
import { RoundBook, type HeldRound, type VouchedState } from './round-trust.ts'
import { systemClock, type Clock } from '../time/clock.ts'

/** Fetching an announced state (bounded: a peer that announces a CID it cannot serve costs this much at most). */
export const STATE_FETCH_TIMEOUT_MS = 30_000

/** A state finalised on chain for the job (its anchor): trusted without a quorum of announcements. */
export interface AnchoredState { round: number, weightsSha256: string, cid: string }
/** The job's newest finalised anchor, when a chain is configured (undefined: none yet). */
export type AnchorSource = (signal: AbortSignal) => Promise<AnchoredState | undefined>

export interface NetworkStateOptions {
  job: string
  gossip: Pick<TypedGossip, 'subscribe' | 'publish'>
  helia: Helia
  peerId: string
  /** Values in the job's model: a state of another size is refused. */
  modelSize: number
  logger: Logger
  /** The job's membership (what this peer holds, and who took part in it); one is made when not given. */
  membership?: JobMembership
  /** The job's length (rounds); announcements of later rounds are refused. Default: the membership's. */
  rounds?: number
  /** The job's minimum group: how many announcers a peer that knows no participants needs (round-trust.ts). */
  minPeers?: number
  /** Finalised chain anchors, when the job is on chain: an anchored state is adopted without a quorum. */
  anchors?: AnchorSource
  fetchTimeoutMs?: number
  /** Called when a state was adopted from the network (to record it locally). */
  onAdopt?: (state: GlobalState, cid: string, weightsSha256: string) => Promise<void>
  clock?: Clock
}

export class NetworkState implements StateSync {
  readonly membership: JobMembership
  private readonly book: RoundBook
  /** Pending waitForNewer calls: `check` re-tests on each announcement, `release` ends the wait. */
  private readonly waiters = new Set<{ check: () => void, release: () => void }>()
  private unsubscribe?: () => void
  private readonly clock: Clock
  /** Contributors of rounds this peer completed itself (the newest few): an announcer of such a round outside them lies. */
  private readonly own = new Map<number, { weightsSha256: string, contributors: Set<string> }>()

  constructor (private readonly opts: NetworkStateOptions) {
    this.clock = opts.clock ?? systemClock
    this.membership = opts.membership ?? new JobMembership(opts.job, opts.rounds ?? Number.MAX_SAFE_INTEGER)
    this.book = new RoundBook(opts.peerId, opts.minPeers ?? 1)
  }

  start (): void {
    this.unsubscribe = this.opts.gossip.subscribe(jobRoundsTopic(this.opts.job), (message) => {
      if (message.type === 'round-result') this.record(message)
    }, (message, from) => this.judge(message, from))
  }

  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    for (const w of [...this.waiters]) w.release()
  }

  /**
   * The rounds topic's admission: `reject` (costs the forwarder peer score: every honest peer judges it alike)
   * a round past the job's end or one its announcer does not list itself in; `penalize` (costs the author) a round
   * this peer completed itself announced by a peer outside that round's contributors. Anything else is recorded;
   * only vouched states are ever adopted.
   */
  private judge (message: GossipMessage, from: string): GossipVerdict {
    if (message.type !== 'round-result') return 'reject'
    const rounds = this.opts.rounds ?? this.membership.rounds
    if (message.round >= rounds) return 'reject'
    if (!message.contributions.some(c => c.peer === from)) return 'reject'
    const mine = this.own.get(message.round)
    if (mine != null && !mine.contributors.has(from)) return 'penalize'
    return 'accept'
  }

  /** Announces this peer's outcome of a round, which it now holds (its contributors are the round's members). */
  async announce (round: number, weightsSha256: string, stateCid: string | undefined, contributions: Contribution[]): Promise<number> {
    const contributors = contributions.map(c => c.peer)
    this.membership.hold(round, weightsSha256, contributors)
    this.own.set(round, { weightsSha256, contributors: new Set(contributors) })
    for (const r of this.own.keys()) if (r < round - 8) this.own.delete(r)
    const message: RoundAnnouncement = {
      v: GOSSIP_VERSION,
      type: 'round-result',
      job: this.opts.job,
      round,
      peerId: this.opts.peerId,
      weightsSha256,
      ...(stateCid != null ? { checkpointCid: stateCid } : {}),
      contributions: contributions.slice(0, 1024).map(c => ({ peer: c.peer, samples: Math.round(c.samples) })),
      at: Math.floor(this.clock.now())
    }
    try {
      return await this.opts.gossip.publish(jobRoundsTopic(this.opts.job), message)
    } catch (err) {
      // No subscribed peer yet (gossipsub's NoPeersSubscribedToTopic): the next round announces again.
      this.opts.logger.debug({ err: (err as Error).message }, 'round announcement not sent')
      return 0
    }
  }

  /** The newest state the round-trust rule lets this peer adopt from what it holds (see round-trust.ts), if any. */
  newest (held: HeldRound = this.membership.heldRound()): VouchedState | undefined {
    return this.book.trusted(held)
  }

  /** Resolves when a vouched state newer than `round` is announced, or after `ms`. One announcer cannot end the wait. */
  async waitForNewer (round: number, ms: number, signal?: AbortSignal): Promise<boolean> {
    const newer = (): boolean => (this.newest()?.round ?? -1) > round
    if (newer() || signal?.aborted === true) return newer()
    await new Promise<void>(resolve => {
      const waiter = {
        check: (): void => { if (newer()) waiter.release() },
        release: (): void => { this.clock.clearTimeout(timer); this.waiters.delete(waiter); signal?.removeEventListener('abort', waiter.release); resolve() }
      }
      const timer = this.clock.setTimeout(waiter.release, ms)
      this.waiters.add(waiter)
      signal?.addEventListener('abort', waiter.release, { once: true })
    })
    return newer()
  }

  async catchUp (current: GlobalState, signal: AbortSignal): Promise<GlobalState> {
    const ownHash = weightsHash(current.weights)
    const anchored = await this.anchored(current, ownHash, signal)
    if (anchored != null) return anchored
    const best = this.newest({ round: current.round, weightsSha256: ownHash, members: this.membership.members() })
    if (best == null || best.round < current.round) return current
    if (best.round === current.round && best.weightsSha256 === ownHash) return current
    return await this.adopt(best, 'vouched', signal) ?? current
  }

  /** The chain's newest anchor, when it is ahead of `current` (or the same round with another hash), adopted. */
  private async anchored (current: GlobalState, ownHash: string, signal: AbortSignal): Promise<GlobalState | undefined> {
    if (this.opts.anchors == null) return undefined
    let anchor: AnchoredState | undefined
    try {
      anchor = await this.opts.anchors(signal)
    } catch (err) {
      this.opts.logger.debug({ err: (err as Error).message }, 'chain anchor not read')
      return undefined
    }
    if (anchor == null || anchor.round < current.round || (anchor.round === current.round && anchor.weightsSha256 === ownHash)) return undefined
    return await this.adopt(anchor, 'anchored', signal)
  }

  /** Fetches a trusted state by its CID and verifies hash, size, job and round; undefined when it cannot. */
  private async adopt (target: AnchoredState, why: 'vouched' | 'anchored', signal: AbortSignal): Promise<GlobalState | undefined> {
    let cid: CID
    try { cid = CID.parse(target.cid) } catch { return undefined }
    try {
      const state = await loadState(this.opts.helia, cid, { expectedWeightsSha256: target.weightsSha256, size: this.opts.modelSize, timeoutMs: this.opts.fetchTimeoutMs ?? STATE_FETCH_TIMEOUT_MS, signal })
      if (state.job !== this.opts.job || state.round !== target.round) {
        this.opts.logger.warn({ cid: target.cid, job: state.job, round: state.round }, 'announced state belongs to another job or round; ignored')
        return undefined
      }
      const adopted = { round: state.round, weights: state.weights, momentum: state.momentum }
      this.membership.hold(state.round, target.weightsSha256, state.contributors)
      this.opts.logger.info({ round: state.round, cid: target.cid, trust: why, members: state.contributors.length }, 'state verified')
      await this.opts.onAdopt?.(adopted, target.cid, target.weightsSha256)
      return adopted
    } catch (err) {
      this.opts.logger.warn({ cid: target.cid, round: target.round, err: (err as Error).message }, 'could not fetch the announced state')
      return undefined
    }
  }

  private record (m: RoundAnnouncement): void {
    if (m.peerId === this.opts.peerId) return
    this.book.record(m, this.membership.members().has(m.peerId))
    for (const w of [...this.waiters]) w.check()
  }
}
