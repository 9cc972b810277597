/**
 * Which peer trains which shard in a round: rendezvous (highest-random-weight) hashing. Each shard goes to
 * the live peer with the largest sha256(jobId, round, shard, peerId), so anyone can recompute it and a peer
 * leaving only moves that peer's shards.
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
  for (let s = 0; s < shardCount; s++) {
    let best = peers[0]; let bestScore = -1n
    for (const p of peers) {
      const sc = score(jobId, round, s, p)
      if (sc > bestScore) { bestScore = sc; best = p }
    }
    out.get(best)!.push(s)
  }
  return out
}

/** The peer that should have trained `shard` (for checking others' claims). */
export function ownerOf (input: ShardAssignmentInput, shard: number): string {
  for (const [p, shards] of assignShards(input)) if (shards.includes(shard)) return p
  throw new RangeError(`shard ${shard} out of range`)
}
