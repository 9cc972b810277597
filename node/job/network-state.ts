/**
 * The job's round announcements on gossip, and catching up from them. After each round every peer announces
 * (job, round, weights hash, the CID of its state snapshot, contributions); a peer that is behind (it joined
 * late, restarted, or failed a round the others completed) adopts the newest round's state: the weights hash
 * announced by the most peers, fetched by any announced CID and verified against that hash before use.
 */
import type { CID } from 'multiformats/cid'
import { CID as CIDClass } from 'multiformats/cid'
import type { Helia } from '@helia/interface'
import type { Logger } from 'pino'
import { GOSSIP_VERSION } from '../../protocol/ids.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import type { RoundAnnouncement } from '../../protocol/gossip.ts'
import type { TypedGossip } from '../network/gossip.ts'
import type { Contribution, GlobalState, StateSync } from '../round/steps.ts'
import { loadState } from './state-snapshot.ts'
import { systemClock, type Clock } from '../time/clock.ts'

/** Fetching an announced state (bounded: a peer that announces a CID it cannot serve costs this much at most). */
export const STATE_FETCH_TIMEOUT_MS = 30_000

interface Candidate { peers: Set<string>, cids: Set<string> }

export interface NetworkStateOptions {
  job: string
  gossip: TypedGossip
  helia: Helia
  peerId: string
  /** Values in the job's model: a state of another size is refused. */
  modelSize: number
  logger: Logger
  fetchTimeoutMs?: number
  /** Rounds of announcements kept (older ones are of no use to a joiner). */
  retainRounds?: number
  /** Called when a state was adopted from the network (to record it locally). */
  onAdopt?: (state: GlobalState, cid: string, weightsSha256: string) => Promise<void>
  clock?: Clock
}

export class NetworkState implements StateSync {
  private readonly rounds = new Map<number, Map<string, Candidate>>()
  /** Pending waitForNewer calls: `check` re-tests on each announcement, `release` ends the wait. */
  private readonly waiters = new Set<{ check: () => void, release: () => void }>()
  private unsubscribe?: () => void
  private readonly clock: Clock

  constructor (private readonly opts: NetworkStateOptions) {
    this.clock = opts.clock ?? systemClock
  }

  start (): void {
    this.unsubscribe = this.opts.gossip.subscribe(jobRoundsTopic(this.opts.job), (message) => {
      if (message.type === 'round-result') this.record(message)
    })
  }

  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    for (const w of [...this.waiters]) w.release()
  }

  /** Announces this peer's outcome of a round. */
  async announce (round: number, weightsSha256: string, stateCid: string | undefined, contributions: Contribution[]): Promise<number> {
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
    this.record(message)
    try {
      return await this.opts.gossip.publish(jobRoundsTopic(this.opts.job), message)
    } catch (err) {
      // No subscribed peer yet (gossipsub's NoPeersSubscribedToTopic): the next round announces again.
      this.opts.logger.debug({ err: (err as Error).message }, 'round announcement not sent')
      return 0
    }
  }

  /** The newest announced round and the weights hash most of its announcers agree on. */
  newest (): { round: number, weightsSha256: string, peers: number, cids: string[] } | undefined {
    let best: { round: number, weightsSha256: string, peers: number, cids: string[] } | undefined
    for (const [round, byHash] of this.rounds) {
      for (const [hash, c] of byHash) {
        if (c.peers.size === 0) continue
        if (best == null || round > best.round || (round === best.round && c.peers.size > best.peers)) {
          best = { round, weightsSha256: hash, peers: c.peers.size, cids: [...c.cids] }
        }
      }
    }
    return best
  }

  /** Resolves when an announcement newer than `round` arrives, or after `ms`. */
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
    const best = this.newest()
    if (best == null || best.round < current.round) return current
    if (best.round === current.round) {
      // Same round: keep ours unless the majority of the round's announcers hold another state (we forked).
      const ownHash = [...(this.rounds.get(current.round) ?? [])].find(([, c]) => c.peers.has(this.opts.peerId))?.[0]
      if (ownHash == null || ownHash === best.weightsSha256) return current
    }
    for (const cidString of best.cids) {
      if (signal.aborted) break
      let cid: CID
      try { cid = CIDClass.parse(cidString) } catch { continue }
      try {
        const state = await loadState(this.opts.helia, cid, { expectedWeightsSha256: best.weightsSha256, size: this.opts.modelSize, timeoutMs: this.opts.fetchTimeoutMs ?? STATE_FETCH_TIMEOUT_MS, signal })
        if (state.job !== this.opts.job || state.round !== best.round) {
          this.opts.logger.warn({ cid: cidString, job: state.job, round: state.round }, 'announced state belongs to another job or round; ignored')
          continue
        }
        const adopted = { round: state.round, weights: state.weights, momentum: state.momentum }
        await this.opts.onAdopt?.(adopted, cidString, best.weightsSha256)
        return adopted
      } catch (err) {
        this.opts.logger.warn({ cid: cidString, round: best.round, err: (err as Error).message }, 'could not fetch the announced state')
      }
    }
    return current
  }

  private record (m: RoundAnnouncement): void {
    let byHash = this.rounds.get(m.round)
    if (byHash == null) { byHash = new Map(); this.rounds.set(m.round, byHash) }
    // One vote per peer per round: a later announcement replaces its earlier one.
    for (const c of byHash.values()) c.peers.delete(m.peerId)
    let c = byHash.get(m.weightsSha256)
    if (c == null) { c = { peers: new Set(), cids: new Set() }; byHash.set(m.weightsSha256, c) }
    c.peers.add(m.peerId)
    if (m.checkpointCid != null) c.cids.add(m.checkpointCid)
    const keep = this.opts.retainRounds ?? 8
    const newestRound = Math.max(...this.rounds.keys())
    for (const r of this.rounds.keys()) if (r < newestRound - keep) this.rounds.delete(r)
    for (const w of [...this.waiters]) w.check()
  }
}
