/**
 * Which announced state a peer may adopt (ARCHITECTURE.md, "Round trust"). Pure: a book of the job's round
 * announcements and the quorum rule over it; NetworkState (network-state.ts) fetches and verifies what it names.
 *
 * The rule: from the state it holds (round s, whose participants M_s it knows), a peer adopts the state
 * (round r > s, weights hash H, state CID c) only when at least q(n) distinct peers of M_s other than itself
 * announced exactly (r, H, c), with n = |M_s \ {self}| and q(n) = f + 1, f = ⌊(n − 1) / 3⌋: the most faults n
 * peers tolerate when fewer than a third of them are Byzantine. Then at least one voucher is honest, and an
 * honest peer announces only a state it computed in the round's all-reduce. It steps from round to round (the
 * adopted state's contributors vouch for the next), so a peer that was away while the job's peers changed
 * follows the membership as it went. Same round, another hash (this peer forked): adopted under the same rule
 * when more of the round's participants vouch for it than hold this peer's own hash (itself included).
 *
 * A peer that knows no participants (it holds the job's initial state: a fresh joiner, or a job whose only
 * peers restarted from nothing) has no one to ask: it adopts a state only when at least max(2, minPeers)
 * distinct announcers that list themselves among its contributors announced it, and no other state of that
 * round has as many. Without a chain anchor that is the weakest point: an attacker with that many identities
 * can mislead a fresh joiner (never a peer that holds a state).
 */
import type { RoundAnnouncement } from '../../protocol/gossip.ts'

/** How many announcements of one peer are kept (its newest rounds). */
export const ANNOUNCEMENTS_PER_PEER = 8
/** How many announcers are tracked (beyond it, new announcers that are not members are not recorded). */
export const MAX_ANNOUNCERS = 1024

/** f + 1 with f = ⌊(n − 1) / 3⌋: the vouchers needed among n peers of which fewer than a third may be Byzantine. */
export function quorumSize (n: number): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`a quorum of ${n} peers`)
  return Math.floor((n - 1) / 3) + 1
}

/** What this peer holds: the start of the walk. */
export interface HeldRound {
  round: number
  /** Its weights hash (undefined for the job's initial state, which nobody announces). */
  weightsSha256?: string
  /** Its participants (the round's contributors); empty for the initial state. */
  members: ReadonlySet<string>
}

export interface VouchedState {
  round: number
  weightsSha256: string
  cid: string
  /** The peers whose announcements made it trusted. */
  vouchers: string[]
  /** Its contributors as its vouchers announced them (the fetched checkpoint's own list replaces them). */
  contributors: string[]
}

interface Candidate { weightsSha256: string, cid: string, announcers: Map<string, string[]> }

export class RoundBook {
  /** announcer → its newest announcements, newest last */
  private readonly byPeer = new Map<string, RoundAnnouncement[]>()

  constructor (private readonly self: string, private readonly minPeers = 1) {}

  /** Records an announcement (one per peer per round: a later one replaces it). `member`: keep it even past MAX_ANNOUNCERS. */
  record (m: RoundAnnouncement, member = false): void {
    if (m.checkpointCid == null) return // nothing to fetch: it can vouch for nothing
    let list = this.byPeer.get(m.peerId)
    if (list == null) {
      if (this.byPeer.size >= MAX_ANNOUNCERS && !member) return
      list = []
      this.byPeer.set(m.peerId, list)
    }
    const kept = list.filter(a => a.round !== m.round)
    kept.push(m)
    kept.sort((a, b) => a.round - b.round)
    this.byPeer.set(m.peerId, kept.slice(-ANNOUNCEMENTS_PER_PEER))
  }

  /** Candidates of `round`: (hash, CID) → announcer → the contributors it announced. */
  private candidates (round: number): Candidate[] {
    const byKey = new Map<string, Candidate>()
    for (const [peer, list] of this.byPeer) {
      const m = list.find(a => a.round === round)
      if (m?.checkpointCid == null) continue
      const key = `${m.weightsSha256}|${m.checkpointCid}`
      let c = byKey.get(key)
      if (c == null) { c = { weightsSha256: m.weightsSha256, cid: m.checkpointCid, announcers: new Map() }; byKey.set(key, c) }
      c.announcers.set(peer, m.contributions.map(x => x.peer))
    }
    return [...byKey.values()]
  }

  private rounds (): number[] {
    const all = new Set<number>()
    for (const list of this.byPeer.values()) for (const m of list) all.add(m.round)
    return [...all].sort((a, b) => a - b)
  }

  /** The peers of `c` that count as its vouchers for a peer whose participants are `members`, when they are enough. */
  vouchers (c: { announcers: ReadonlyMap<string, readonly string[]> }, members: ReadonlySet<string>): string[] | undefined {
    const others = [...members].filter(p => p !== this.self)
    if (others.length > 0) {
      const vouchers = others.filter(p => c.announcers.has(p))
      return vouchers.length >= quorumSize(others.length) ? vouchers : undefined
    }
    // No participants known (the initial state): announcers that took part in the state they announce.
    const vouchers = [...c.announcers].filter(([peer, contributors]) => peer !== this.self && contributors.includes(peer)).map(([peer]) => peer)
    return vouchers.length >= Math.max(2, this.minPeers) ? vouchers : undefined
  }

  /**
   * The newest state this peer may adopt from `held` (walking round by round), or undefined: nothing announced
   * is both newer (or, at the held round, another hash) and vouched for.
   */
  trusted (held: HeldRound): VouchedState | undefined {
    let members = held.members
    let best: VouchedState | undefined
    for (const round of this.rounds()) {
      if (round < held.round) continue
      const all = this.candidates(round)
      const vouched = all
        .filter(c => round > held.round || c.weightsSha256 !== held.weightsSha256)
        .map(c => ({ c, vouchers: this.vouchers(c, members) }))
        .filter((x): x is { c: Candidate, vouchers: string[] } => x.vouchers != null)
        .sort((a, b) => b.vouchers.length - a.vouchers.length)
      if (round === held.round && vouched.length > 0) {
        // A fork of the held round is adopted only over fewer peers of the round holding this peer's own state.
        const mine = all.filter(c => c.weightsSha256 === held.weightsSha256).flatMap(c => [...c.announcers.keys()]).filter(p => members.has(p))
        if (vouched[0].vouchers.length <= new Set(mine).size + 1) continue
      }
      // Two states of one round both vouched for as strongly: ambiguous, adopt neither.
      if (vouched.length === 0 || (vouched.length > 1 && vouched[1].vouchers.length === vouched[0].vouchers.length)) continue
      const { c, vouchers } = vouched[0]
      const contributors = mostAnnounced(vouchers.map(v => c.announcers.get(v) ?? []))
      best = { round, weightsSha256: c.weightsSha256, cid: c.cid, vouchers, contributors }
      members = new Set(contributors)
    }
    return best
  }
}

/** The contributor list most vouchers announced (their lists should be identical: the all-reduce's result). */
function mostAnnounced (lists: Array<readonly string[]>): string[] {
  const counts = new Map<string, { list: readonly string[], n: number }>()
  for (const list of lists) {
    const key = [...list].sort().join(',')
    const entry = counts.get(key) ?? { list, n: 0 }
    entry.n++
    counts.set(key, entry)
  }
  return [...([...counts.values()].sort((a, b) => b.n - a.n)[0]?.list ?? [])]
}
