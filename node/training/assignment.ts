/**
 * Which peer trains which shard in a round: rendezvous (highest-random-weight) hashing with bounded loads.
 * Every (shard, peer) pair gets the score sha256(jobId, round, shard, peerId); going through the pairs from the
 * highest score down, a shard goes to the peer unless the shard is taken or the peer already holds ⌈S/N⌉
 * shards. Anyone can recompute it, every peer trains ⌊S/N⌋ or ⌈S/N⌉ shards (plain rendezvous hashing leaves
 * some peers idle when shards are few), and a peer leaving moves few shards besides its own.
 */
import { sha256 } from '@noble/hashes/sha2.js'

export interface ShardAssignmentInput { jobId: string, round: number, peerIds: string[], shardCount: number }

const enc = new TextEncoder()

function score (jobId: string, round: number, shard: number, peerId: string): bigint {
  const h = sha256(enc.encode(`${jobId}\n${round}\n${shard}\n${peerId}`))
  let v = 0n
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(h[i])
  return v
}

/** Map from peer id to the sorted shard indices it trains this round. */
export function assignShards (input: ShardAssignmentInput): Map<string, number[]> {
  const { jobId, round, shardCount } = input
  if (!Number.isInteger(round) || round < 0) throw new RangeError('round must be a non-negative integer')
  if (!Number.isInteger(shardCount) || shardCount < 0) throw new RangeError('shardCount must be a non-negative integer')
  const peers = [...new Set(input.peerIds)].sort()
  if (peers.length === 0) throw new RangeError('no live peers')
  const out = new Map<string, number[]>(peers.map(p => [p, []]))
  const capacity = Math.ceil(shardCount / peers.length)
  const pairs: Array<{ shard: number, peer: string, score: bigint }> = []
  for (let s = 0; s < shardCount; s++) for (const p of peers) pairs.push({ shard: s, peer: p, score: score(jobId, round, s, p) })
  // Highest score first; ties (vanishingly rare) by shard then peer id, so the order is total.
  pairs.sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : a.shard - b.shard || (a.peer < b.peer ? -1 : 1)))
  const taken = new Set<number>()
  for (const { shard, peer } of pairs) {
    if (taken.has(shard)) continue
    const mine = out.get(peer)!
    if (mine.length >= capacity) continue
    mine.push(shard)
    taken.add(shard)
    if (taken.size === shardCount) break
  }
  for (const list of out.values()) list.sort((a, b) => a - b)
  return out
}

/** The peer that should have trained `shard` (for checking others' claims). */
export function ownerOf (input: ShardAssignmentInput, shard: number): string {
  for (const [p, shards] of assignShards(input)) if (shards.includes(shard)) return p
  throw new RangeError(`shard ${shard} out of range`)
}
