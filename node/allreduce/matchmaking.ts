/**
 * Matchmaking: which peers average together this round. No coordinator: every peer that is ready
 * announces itself on the job's ready topic before the round's deadline; at the deadline each peer takes
 * the peers it heard from (same job, round, vector length and codec), publishes that view as a
 * confirmation, and the group is the intersection of the views of the members that confirmed. Peers
 * that heard the same announcements derive the same ordered group; a late announcer, seen by only some,
 * drops out of everyone's group (including its own) instead of splitting the round.
 */
import {
  jobReadyTopic, canonicalOrder, MAX_GROUP_SIZE, READY_TOPIC_VERSION,
  type ReadyAnnouncement, type GroupConfirmation
} from '../../protocol/allreduce.ts'
import type { GossipMessage } from '../../protocol/gossip.ts'
import { systemClock, sleep, type Clock } from '../time/clock.ts'
import { makeGroup, type RoundGroup } from './group.ts'
import { admitNewcomers, judgeReadyRound, maxNewcomers, type RoundView, type Verdict } from './admission.ts'

/**
 * The part of the node's typed gossip that matchmaking uses (node/network/gossip.ts's `TypedGossip` fits):
 * it validates every message of the ready topic at the edge (a malformed one is rejected, not forwarded,
 * and costs its sender peer score) and hands over only parsed messages.
 */
export interface ReadyGossip {
  /** Joins `topic`; returns what leaves it. */
  subscribe: (topic: string, handler: (message: GossipMessage, from: string) => void, admit?: (message: GossipMessage, from: string) => Verdict) => () => void
  publish: (topic: string, message: GossipMessage) => Promise<unknown>
}

export interface MatchmakingComponents {
  gossip: ReadyGossip
  /** This peer's id string. */
  peerId: string
  clock?: Clock
  /**
   * The job's round trust (node/job/membership.ts): which rounds and peers a ready message may name
   * (admission.ts). Without it every well-formed message of the topic counts (tests of matchmaking alone).
   */
  policy?: ReadyPolicy
}

/** What matchmaking asks of the job's membership. */
export interface ReadyPolicy {
  /** What this peer knows of `job`'s rounds now; undefined: nothing yet (every well-formed message counts). */
  view: (job: string) => RoundView | undefined
  /** `peer`, a newcomer, took a place in this peer's view of `round` and did not make the group (or did not contribute). */
  bar: (job: string, peer: string, round: number) => void
  /** `peer`, a newcomer, was waited for in `round` and never announced: not waited for again for a while. */
  hush: (job: string, peer: string, round: number) => void
}

export interface MatchmakingInit {
  /** How long after the deadline members wait for each other's confirmations (ms). */
  confirmWindowMs?: number
  /** Announcements are re-published at this interval until the deadline: a peer that just subscribed may miss the first. */
  republishMs?: number
  /** Rounds of announcements kept per job (announcements may arrive before this peer asks for that round). */
  retainRounds?: number
}

export interface FormGroupOptions {
  job: string
  round: number
  vectorLength: number
  codec: string
  /** This peer's measured upload speed (bytes/s), announced as a hint. */
  speedBps: number
  /** Absolute time (ms on the clock) by which announcements must have arrived. */
  deadline: number
  /**
   * Peers this one expects in the round (the last round's group that is still connected). Once all of them
   * have announced, and `minWaitMs` has passed, the view closes without waiting for the deadline: a round
   * then waits for the slowest expected peer, not for a fixed window, and the deadline only bounds how long
   * a missing peer (crashed, stalled) can hold the others.
   */
  expected?: Iterable<string>
  /** Which try of this round (0 first): peers that retry a round whose group failed meet afresh. */
  attempt?: number
  /** Earliest close after this peer's own announcement (ms), so that a peer nobody expected yet can be heard. */
  minWaitMs?: number
  signal?: AbortSignal
}

export interface FormGroupResult {
  /** The round's group, or null if this peer is not in it (it announced too late for the others). */
  group: RoundGroup | null
  /** What this peer saw at the deadline. */
  view: string[]
  /** Peers that announced but were left out (late, wrong vector length or codec, unconfirmed, or not admitted). */
  excluded: string[]
  /** Peers of the view that are not members of the held round (admitted as newcomers); absent without a policy. */
  newcomers?: string[]
}

/** A newcomer is waited for only if it sent a ready message within this long (ms). */
export const ACTIVE_NEWCOMER_MS = 60_000
/** How long after the deadline members wait for each other's confirmations. */
export const DEFAULT_CONFIRM_WINDOW_MS = 2_000
/** Announcements are re-published this often until the deadline (a peer that just subscribed may miss the first). */
export const DEFAULT_REPUBLISH_MS = 1_000

interface Heard { announcement: ReadyAnnouncement, receivedAt: number }

interface RoundState {
  ready: Map<string, Heard>
  confirmations: Map<string, GroupConfirmation>
  onChange: Set<() => void>
  /** A formGroup is using this state: never evicted meanwhile. */
  inUse: boolean
}

export class Matchmaking {
  private readonly gossip: ReadyGossip
  private readonly peerId: string
  private readonly clock: Clock
  private readonly policy?: ReadyPolicy
  private readonly confirmWindowMs: number
  private readonly republishMs: number
  private readonly retainRounds: number
  /** job → round → try → state */
  private readonly jobs = new Map<string, Map<number, Map<number, RoundState>>>()
  /** job → leaves its ready topic */
  private readonly subscriptions = new Map<string, () => void>()
  /** peer → when it last sent a ready-topic message that was accepted or merely stale: who is active at all. */
  private readonly heard = new Map<string, number>()

  constructor (components: MatchmakingComponents, init: MatchmakingInit = {}) {
    this.gossip = components.gossip
    this.peerId = components.peerId
    this.clock = components.clock ?? systemClock
    this.policy = components.policy
    this.confirmWindowMs = init.confirmWindowMs ?? DEFAULT_CONFIRM_WINDOW_MS
    this.republishMs = init.republishMs ?? DEFAULT_REPUBLISH_MS
    this.retainRounds = init.retainRounds ?? 4
  }

  stop (): void {
    for (const job of [...this.jobs.keys()]) this.leave(job)
  }

  /** Subscribes to the job's ready topic, so announcements are heard before this peer's own round begins. */
  join (job: string): void {
    if (this.jobs.has(job)) return
    this.jobs.set(job, new Map())
    this.subscriptions.set(job, this.gossip.subscribe(jobReadyTopic(job), (message) => {
      if (message.type === 'allreduce-ready' || message.type === 'allreduce-group') this.record(message)
    }, (message, from) => this.judge(message, from)))
  }

  /** The round-advance and membership rules (admission.ts) for a message of the ready topic. */
  private judge (message: GossipMessage, from: string): Verdict {
    if (message.type !== 'allreduce-ready' && message.type !== 'allreduce-group') return 'reject'
    const view = this.policy?.view(message.job)
    const verdict = view == null ? 'accept' : judgeReadyRound(message.round, from, view).verdict
    if (verdict === 'accept' || verdict === 'ignore') {
      // Active: an honest peer catching up sends stale rounds; one that sends impossible rounds is not waited for.
      this.heard.delete(from)
      this.heard.set(from, this.clock.now())
      if (this.heard.size > 4 * MAX_GROUP_SIZE) this.heard.delete(this.heard.keys().next().value as string)
    }
    return verdict
  }

  leave (job: string): void {
    if (!this.jobs.delete(job)) return
    this.subscriptions.get(job)?.()
    this.subscriptions.delete(job)
  }

  /** State of one try of a round; only the newest `retainRounds` rounds are kept (bounded memory). */
  private roundState (job: string, round: number, attempt: number, create: boolean): RoundState | undefined {
    const rounds = this.jobs.get(job)
    if (rounds == null) return undefined
    let state = rounds.get(round)?.get(attempt)
    if (state == null && create) {
      const newest = Math.max(round, ...rounds.keys())
      if (round <= newest - this.retainRounds) return undefined
      const tries = rounds.get(round) ?? new Map<number, RoundState>()
      rounds.set(round, tries)
      // A peer may flood attempts of one round: keep the newest 16 tries of a round, forgetting the oldest.
      const oldestFirst = [...tries.keys()].filter(a => tries.get(a)?.inUse !== true).sort((x, y) => x - y)
      for (const a of oldestFirst.slice(0, Math.max(0, oldestFirst.length - 15))) tries.delete(a)
      state = { ready: new Map(), confirmations: new Map(), onChange: new Set(), inUse: false }
      tries.set(attempt, state)
      for (const r of rounds.keys()) if (r <= newest - this.retainRounds) rounds.delete(r)
    }
    return state
  }

  /**
   * The highest try of `round` heard so far (-1: none). Peers that failed a round different numbers of times
   * meet again by joining the highest try anyone announced, instead of each counting on its own.
   */
  highestAttempt (job: string, round: number): number {
    const tries = this.jobs.get(job)?.get(round)
    return tries == null ? -1 : Math.max(-1, ...tries.keys())
  }

  private record (message: ReadyAnnouncement | GroupConfirmation): void {
    // Judged again on arrival (the gossip layer judged it when it came in; what this peer holds may have changed).
    if (message.peerId !== this.peerId && this.judge(message, message.peerId) !== 'accept') return
    const state = this.roundState(message.job, message.round, message.attempt, true)
    if (state == null) return
    if (message.type === 'allreduce-ready') {
      if (!state.ready.has(message.peerId) && state.ready.size < 4 * MAX_GROUP_SIZE) {
        state.ready.set(message.peerId, { announcement: message, receivedAt: this.clock.now() })
      }
    } else if (!state.confirmations.has(message.peerId) && state.confirmations.size < 4 * MAX_GROUP_SIZE) {
      state.confirmations.set(message.peerId, message)
    }
    for (const fn of state.onChange) fn()
  }

  private async publish (job: string, message: ReadyAnnouncement | GroupConfirmation): Promise<void> {
    try {
      await this.gossip.publish(jobReadyTopic(job), message)
    } catch {
      // No subscribed peers yet (or a transient failure): the next republish tries again.
    }
  }

  /** Publishes `message` now and again every `republishMs` until `until` (or until `done()` says stop). */
  private async announceUntil (job: string, message: ReadyAnnouncement | GroupConfirmation, until: number, state: RoundState, done: () => boolean, signal?: AbortSignal): Promise<void> {
    await this.publish(job, message)
    while (!done()) {
      const left = until - this.clock.now()
      if (left <= 0) return
      await this.waitForChange(state, Math.min(left, this.republishMs), done, signal)
      if (!done() && this.clock.now() < until) await this.publish(job, message)
    }
  }

  /** Resolves after `ms`, or earlier once `done()` holds after a received message. */
  private async waitForChange (state: RoundState, ms: number, done: () => boolean, signal?: AbortSignal): Promise<void> {
    const controller = new AbortController()
    const onChange = (): void => { if (done()) controller.abort() }
    const onAbort = (): void => { controller.abort() }
    state.onChange.add(onChange)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await sleep(ms, { clock: this.clock, signal: controller.signal })
    } catch {
      // woken early
    } finally {
      state.onChange.delete(onChange)
      signal?.removeEventListener('abort', onAbort)
    }
    signal?.throwIfAborted()
  }

  async formGroup (opts: FormGroupOptions): Promise<FormGroupResult> {
    this.join(opts.job)
    const attempt = opts.attempt ?? 0
    const state = this.roundState(opts.job, opts.round, attempt, true)
    if (state == null) throw new RangeError(`round ${opts.round} (try ${attempt}) of ${opts.job} is older than the rounds being formed`)
    const self: ReadyAnnouncement = {
      v: READY_TOPIC_VERSION,
      type: 'allreduce-ready',
      job: opts.job,
      round: opts.round,
      attempt,
      peerId: this.peerId,
      vectorLength: opts.vectorLength,
      codec: opts.codec,
      speedBps: Math.max(1, opts.speedBps),
      at: Math.floor(this.clock.now())
    }
    state.ready.set(this.peerId, { announcement: self, receivedAt: this.clock.now() })
    state.inUse = true
    try {
      return await this.form(opts, state, self, attempt)
    } finally {
      state.inUse = false
    }
  }

  private async form (opts: FormGroupOptions, state: RoundState, self: ReadyAnnouncement, attempt: number): Promise<FormGroupResult> {
    // Who may take part: the held round's members and the newcomers this round admits (admission.ts).
    const policyView = this.policy?.view(opts.job)
    const members = policyView?.members ?? new Set<string>()
    const open = members.size === 0
    /** Of the peers that announced compatibly, those that take part: members, this peer, the admitted newcomers. */
    const admitted = (compatible: string[]): Set<string> => {
      if (open) return new Set(compatible)
      const newcomers = compatible.filter(p => p !== this.peerId && !members.has(p) && policyView?.barred(p) !== true)
      return new Set(compatible.filter(p => members.has(p) || p === this.peerId)
        .concat(admitNewcomers(opts.job, opts.round, newcomers, maxNewcomers(members.size))))
    }

    // 1. Announce until the deadline, or until every expected peer has announced.
    // Expected: the live members, and the newcomers this round would admit among the live peers that sent a ready
    // message lately (of any round: a peer catching up does). A newcomer expected and silent at the close is not
    // waited for again for a while: a peer that only subscribes holds no round up, one that sends only stale or
    // impossible rounds holds up one round in a growing number.
    const live = [...new Set([...(opts.expected ?? []), this.peerId])]
    const active = (p: string): boolean => this.clock.now() - (this.heard.get(p) ?? -Infinity) <= ACTIVE_NEWCOMER_MS
    const expectedNewcomers = open ? [] : admitNewcomers(opts.job, opts.round, live.filter(p => p !== this.peerId && !members.has(p) && active(p) && policyView?.barred(p) !== true && policyView?.quiet?.(p) !== true), maxNewcomers(members.size))
    const expected = live.filter(p => open || members.has(p) || p === this.peerId).concat(expectedNewcomers)
    const earliest = this.clock.now() + (opts.minWaitMs ?? 0)
    const complete = (): boolean => opts.expected != null && expected.every(p => state.ready.has(p))
    const closed = (): boolean => this.clock.now() >= opts.deadline || (this.clock.now() >= earliest && complete())
    // Republishes until `closed()`: it only returns once closed (at the latest, at the deadline).
    await this.announceUntil(opts.job, self, opts.deadline, state, closed, opts.signal)
    const closedAt = this.clock.now()
    for (const p of expectedNewcomers) if (!state.ready.has(p)) this.policy?.hush(opts.job, p, opts.round)

    // 2. The view at the close: compatible announcements received in time.
    const excluded = new Set<string>()
    const compatible: string[] = []
    for (const [peer, heard] of state.ready) {
      const a = heard.announcement
      if (heard.receivedAt <= closedAt && a.vectorLength === opts.vectorLength && a.codec === opts.codec) compatible.push(peer)
      else excluded.add(peer)
    }
    const inRound = admitted(compatible)
    const viewPeers = compatible.filter(p => inRound.has(p))
    for (const p of compatible) if (!inRound.has(p)) excluded.add(p)
    const view = canonicalOrder(viewPeers).slice(0, MAX_GROUP_SIZE)
    const speeds = new Map(view.map(p => [p, state.ready.get(p)?.announcement.speedBps ?? 0]))

    // 3. Confirm the view and wait for the other members' confirmations.
    const confirmation: GroupConfirmation = {
      v: READY_TOPIC_VERSION, type: 'allreduce-group', job: opts.job, round: opts.round, attempt, peerId: this.peerId, members: view, at: Math.floor(this.clock.now())
    }
    state.confirmations.set(this.peerId, confirmation)
    const allConfirmed = (): boolean => view.every(p => state.confirmations.has(p))
    const confirmUntil = this.clock.now() + this.confirmWindowMs
    await this.announceUntil(opts.job, confirmation, confirmUntil, state, allConfirmed, opts.signal)
    // A last word for peers still waiting on ours: they may have heard us only once.
    if (!allConfirmed()) await this.publish(opts.job, confirmation)

    // 4. The group: members of our view that confirmed, and that every confirmer also saw.
    let groupMembers = view.filter(p => state.confirmations.has(p))
    for (const p of [...groupMembers]) {
      const theirs = new Set(state.confirmations.get(p)?.members ?? [])
      groupMembers = groupMembers.filter(m => theirs.has(m))
    }
    for (const p of state.ready.keys()) if (!groupMembers.includes(p)) excluded.add(p)
    excluded.delete(this.peerId)
    // A newcomer that took a place in the view and did not make the group held the round up for nothing.
    const newcomers = open ? [] : view.filter(p => !members.has(p) && p !== this.peerId)
    for (const p of newcomers) if (!groupMembers.includes(p)) this.policy?.bar(opts.job, p, opts.round)
    const group = groupMembers.includes(this.peerId)
      ? makeGroup({ job: opts.job, round: opts.round, attempt, members: groupMembers, vectorLength: opts.vectorLength, speeds })
      : null
    return { group, view, excluded: canonicalOrder(excluded), newcomers }
  }
}
