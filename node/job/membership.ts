/**
 * A job's membership as one peer knows it (ARCHITECTURE.md, "Round trust"): the round whose state it holds (its
 * own or verified), that round's participants, and the newcomers barred for a while. Matchmaking judges ready
 * messages against it (node/allreduce/admission.ts), NetworkState walks catch-up from it (round-trust.ts), the
 * train step assigns shards among its members.
 */
import type { RoundView } from '../allreduce/admission.ts'
import type { ReadyPolicy } from '../allreduce/matchmaking.ts'
import type { HeldRound } from './round-trust.ts'

/** A barred newcomer's first bar lasts this many rounds, doubling with each further strike (up to 64). */
const FIRST_BAR_ROUNDS = 2
const MAX_BAR_ROUNDS = 64

export class JobMembership implements ReadyPolicy {
  private held: { round: number, weightsSha256?: string, members: Set<string> }
  private readonly bars = new Map<string, { strikes: number, untilRound: number }>()
  private readonly hushes = new Map<string, { strikes: number, untilRound: number }>()

  /**
   * `rounds`: the job's length. Starts at the job's initial state (round −1, open membership) unless told otherwise.
   * `admits`: whether a peer may train the job at all (an on-chain job's trainer roster: registered with a bond
   * when the job requires one, never slashed; node/chain/trainer-roster.ts). A peer it refuses is no member and is
   * barred, whatever rounds it took part in: a trainer slashed by the job's validators is out from the next round.
   */
  constructor (readonly job: string, readonly rounds: number, private readonly admits: (peer: string) => boolean = () => true) {
    this.held = { round: -1, members: new Set() }
  }

  /** This peer now holds the state of `round` (computed by itself, resumed, or adopted after verification). */
  hold (round: number, weightsSha256: string | undefined, contributors: Iterable<string>): void {
    // A member left out of one round (a partition, a slow round) stays a member for the next one: it rejoins as a
    // member, not as a newcomer waiting for admission. Catch-up's quorum still counts the held round's contributors only.
    if (round > this.held.round) this.previous = round === this.held.round + 1 ? this.held.members : new Set()
    this.held = { round, weightsSha256, members: new Set(contributors) }
    this.recent = new Set([...this.held.members, ...this.previous])
  }

  /** The members of the round before the held one (when the held round followed it). */
  private previous: ReadonlySet<string> = new Set()
  /** Who counts as a member for the next round: the held round's contributors and the round's before them. */
  private recent: ReadonlySet<string> = new Set()

  heldRound (): HeldRound {
    return { round: this.held.round, weightsSha256: this.held.weightsSha256, members: this.held.members }
  }

  members (): ReadonlySet<string> {
    return this.held.members
  }

  isMember (peer: string): boolean {
    return this.admits(peer) && (this.held.members.size === 0 || this.recent.has(peer))
  }

  barred (peer: string): boolean {
    if (!this.admits(peer)) return true
    const bar = this.bars.get(peer)
    return bar != null && this.held.round + 1 <= bar.untilRound
  }

  /** True while `peer` is not waited for (expected once as a newcomer, it never announced). */
  quiet (peer: string): boolean {
    const hush = this.hushes.get(peer)
    return hush != null && this.held.round + 1 <= hush.untilRound
  }

  /** ReadyPolicy: what matchmaking judges ready messages of this job against. */
  view (job: string): RoundView | undefined {
    if (job !== this.job) return undefined
    const members = this.held.members.size === 0 ? this.held.members : new Set([...this.recent].filter(p => this.admits(p)))
    return { heldRound: this.held.round, rounds: this.rounds, members, barred: (p) => this.barred(p), quiet: (p) => this.quiet(p) }
  }

  /** ReadyPolicy: a newcomer took a place in `round` and gave nothing: barred (left out of views) for 2, 4, 8 … rounds. */
  bar (job: string, peer: string, round: number): void {
    if (job === this.job && !this.recent.has(peer)) strike(this.bars, peer, round, this.held.round)
  }

  /** ReadyPolicy: a newcomer waited for in `round` never announced: not waited for during 2, 4, 8 … rounds. */
  hush (job: string, peer: string, round: number): void {
    if (job === this.job && !this.recent.has(peer)) strike(this.hushes, peer, round, this.held.round)
  }

  /**
   * The job's peers among `live` that take part in the next round's shard assignment and group: the held
   * round's members (all of `live` while membership is open), and this peer.
   */
  participants (live: Iterable<string>, self: string): string[] {
    return [...new Set([...live].filter(p => this.isMember(p)).concat(self))].sort()
  }
}

/** One more strike against `peer` in `round`: it lasts 2, 4, 8 … rounds (at most 64). Bounded: ended strikes are forgotten. */
function strike (strikes: Map<string, { strikes: number, untilRound: number }>, peer: string, round: number, held: number): void {
  const n = (strikes.get(peer)?.strikes ?? 0) + 1
  strikes.set(peer, { strikes: n, untilRound: round + Math.min(MAX_BAR_ROUNDS, FIRST_BAR_ROUNDS * 2 ** (n - 1)) })
  if (strikes.size > 4096) for (const [p, s] of strikes) if (s.untilRound < held) strikes.delete(p)
}
