/**
 * Who may take part in a round's matchmaking, and which rounds a ready message may name (ARCHITECTURE.md,
 * "Round trust"). Pure rules over what the peer knows; the job (node/job/membership.ts) keeps that knowledge.
 *
 * - The round-advance rule: a peer holding the state of round s (its own, or one it verified) forms round s + 1
 *   and listens to round s + 2 (peers a moment ahead). Any other round is not matched: older rounds are stale;
 *   a round at or past the job's length cannot exist; a round further ahead is either a lie or a sign that this
 *   peer is behind, which only verified round announcements (catch-up) can tell.
 * - Membership: the participants of round s (the contributors recorded in its state) may match round s + 1, and
 *   so may a bounded number of newcomers (see {@link admitNewcomers}); a newcomer that took a place and did not
 *   contribute is barred for a while. Before any round completed (the job's initial state) membership is open.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

/** As the gossip layer's GossipVerdict (node/network/gossip.ts): `penalize` charges the author, `reject` the forwarder. */
export type Verdict = 'accept' | 'ignore' | 'penalize' | 'reject'

/** What the peer knows when it judges a message of the job's ready topic. */
export interface RoundView {
  /** The round whose state this peer holds (its own or verified); −1: the job's initial state. */
  heldRound: number
  /** The job's length: rounds 0 … rounds − 1 exist. */
  rounds: number
  /** The participants of the held round; empty: not known (the initial state), anyone may take part. */
  members: ReadonlySet<string>
  /** True while `peer` is barred as a newcomer (it took a place in a group and did not contribute). */
  barred: (peer: string) => boolean
  /** True while `peer`, a newcomer, is not waited for (it was expected once and stayed silent); it may still take part. */
  quiet?: (peer: string) => boolean
}

export interface JudgedRound { verdict: Verdict, reason: string }

/**
 * Judges a ready message (or group confirmation) for `round` from `peer`: `accept` only for the held round's
 * next two rounds from a member or an admissible newcomer; `reject` (costs the forwarder peer score: every honest
 * peer judges it alike) for a round past the job's end; `penalize` (costs the author) for a round further ahead
 * from a peer that is not a member of the round this peer holds; `ignore` (no cost) for stale rounds, for members that are ahead (this peer may be the one
 * behind) and for barred newcomers (a bar is this peer's judgement of timing, which an honest peer can fail: a
 * penalty would graylist it, and a graylisted peer no longer hears the announcements it needs to catch up).
 */
export function judgeReadyRound (round: number, peer: string, view: RoundView): JudgedRound {
  const known = view.members.size > 0
  const member = !known || view.members.has(peer)
  if (round >= view.rounds) return { verdict: 'reject', reason: `round ${round} is past the job's last round ${view.rounds - 1}` }
  if (round <= view.heldRound) return { verdict: 'ignore', reason: `round ${round} is not after the held round ${view.heldRound}` }
  if (round > view.heldRound + 2) {
    return member
      ? { verdict: 'ignore', reason: `round ${round} is ahead of the held round ${view.heldRound} (this peer may be behind)` }
      : { verdict: 'penalize', reason: `round ${round} is ahead of the held round ${view.heldRound}, from a peer outside the job's membership` }
  }
  if (!member && view.barred(peer)) return { verdict: 'ignore', reason: `${peer} is barred: it took a place in a group and did not contribute` }
  return { verdict: 'accept', reason: member ? 'member' : 'newcomer' }
}

/** How many newcomers a round admits beside `members` members: a third of them, at least one. */
export function maxNewcomers (members: number): number {
  return Math.max(1, Math.floor(members / 3))
}

/**
 * The newcomers a round admits: the first `max` candidates in an order derived from (job, round, peer), so
 * that every member admits the same ones from the same candidates, and no peer can choose its place (a peer id
 * that sorts first in one round sorts anywhere in the next).
 */
export function admitNewcomers (job: string, round: number, candidates: Iterable<string>, max: number): string[] {
  const key = (peer: string): string => bytesToHex(sha256(new TextEncoder().encode(`nearai-newcomer:${job}:${round}:${peer}`)))
  return [...new Set(candidates)]
    .map(peer => ({ peer, key: key(peer) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, Math.max(0, max))
    .map(x => x.peer)
}
