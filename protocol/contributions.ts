/**
 * A round's contributions (which peer contributed how many accepted samples) committed to by one
 * SHA-256 Merkle root. Validators put the root in their checkpoint attestation (`contributions_root`);
 * later a contributor claims its reward by showing the contract its leaf and a proof against the
 * round's final anchor. Pure: no I/O.
 *
 * Byte layout (version 1). All integers little-endian, strings UTF-8 (job ids and peer ids are
 * ASCII), `u32 len || bytes` is a length-prefixed string, `||` is concatenation:
 *
 *   leaf  = sha256( "nearai/contributions/v1/leaf"          28 ASCII bytes, no length prefix
 *                   || u32 len(job)   || job                contract job id, [a-z0-9._-]{1,64}
 *                   || u64 round                            0 .. 2^53-1
 *                   || u32 len(peer)  || peer               libp2p peer id string (base58btc)
 *                   || u64 samples )                        accepted samples, 0 .. 2^53-1
 *   node  = sha256( "nearai/contributions/v1/node" || min(a, b) || max(a, b) )
 *   empty = sha256( "nearai/contributions/v1/empty" )      the root of a round without contributions
 *
 * The bytes after the leaf tag are exactly the Borsh encoding of
 * `struct { job: String, round: u64, peer: String, samples: u64 }`.
 *
 * Tree: leaves are ordered by peer id (byte order; ids are ASCII so this is plain string order), a
 * peer may appear only once. Each level pairs neighbours left to right; a level of odd length
 * promotes its last node unchanged to the next level. Pairs are hashed sorted (the smaller 32-byte
 * hash first, compared bytewise), as in OpenZeppelin's MerkleProof, so a proof is just the list of
 * sibling hashes from the leaf up, with no left/right flags:
 *
 *   h = leaf; for s in proof: h = node(h, s); valid iff h == root
 *
 * Domain tags keep leaves, inner nodes and the empty root apart: no leaf can pass for a node.
 * A one-contribution round's root is its leaf hash.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { InvalidMessageError } from './errors.ts'
import { PEER_ID_PATTERN as PEER_ID, SHA256_HEX_PATTERN as HEX32 } from './primitives.ts'
import { MAX_GROUP_SIZE } from './allreduce.ts'

export const CONTRIBUTIONS_LEAF_TAG = 'nearai/contributions/v1/leaf'
export const CONTRIBUTIONS_NODE_TAG = 'nearai/contributions/v1/node'
export const CONTRIBUTIONS_EMPTY_TAG = 'nearai/contributions/v1/empty'
/** Proofs longer than this cannot come from any tree of at most 2^53 leaves. */
export const MAX_PROOF_LENGTH = 64

/** One peer's part of a round: accepted samples it trained on. */
export interface Contribution {
  /** libp2p peer id (base58btc string). */
  peer: string
  samples: number
  /**
   * SHA-256 (lowercase hex) of the payload this peer contributed to each all-reduce part, in part order
   * (protocol/update-parts.ts). Carried beside the leaf, never in it: the leaf and the root commit to peer and
   * samples only, so the chain's `contributions_root` does not depend on it.
   */
  update?: string[]
}

/** What a leaf commits to. */
export interface ContributionLeafInput extends Contribution {
  job: string
  round: number
}

/** Contributions or a proof that cannot be committed to or checked: duplicates, bad ids, bad numbers. */
export class InvalidContributionsError extends InvalidMessageError {
  override name = 'InvalidContributionsError'
}

const JOB_ID = /^[a-z0-9._-]{1,64}$/ // the contract's job id rule
const encoder = new TextEncoder()
const LEAF_TAG = encoder.encode(CONTRIBUTIONS_LEAF_TAG)
const NODE_TAG = encoder.encode(CONTRIBUTIONS_NODE_TAG)

function checkUint (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidContributionsError(`${what} must be an integer in 0..2^53-1, got ${String(value)}`)
  }
  return value
}

function checkJobRound (job: unknown, round: unknown): void {
  if (typeof job !== 'string' || !JOB_ID.test(job)) throw new InvalidContributionsError(`job must be a contract job id ([a-z0-9._-]{1,64}), got ${JSON.stringify(job)}`)
  checkUint(round, 'round')
}

function checkUpdate (update: unknown, where: string): string[] {
  if (!Array.isArray(update) || update.length < 1 || update.length > MAX_GROUP_SIZE) {
    throw new InvalidContributionsError(`${where} must be an array of 1..${MAX_GROUP_SIZE} part digests`)
  }
  update.forEach((d, k) => { if (typeof d !== 'string' || !HEX32.test(d)) throw new InvalidContributionsError(`${where}[${k}] must be 64 lowercase hex characters (SHA-256), got ${JSON.stringify(d)}`) })
  return [...update as string[]]
}

function checkContribution (c: unknown, where: string): Contribution {
  if (c == null || typeof c !== 'object') throw new InvalidContributionsError(`${where} must be an object { peer, samples }`)
  const { peer, samples, update } = c as Record<string, unknown>
  if (typeof peer !== 'string' || !PEER_ID.test(peer)) throw new InvalidContributionsError(`${where}.peer must be a libp2p peer id, got ${JSON.stringify(peer)}`)
  const checked: Contribution = { peer, samples: checkUint(samples, `${where}.samples`) }
  if (update !== undefined) checked.update = checkUpdate(update, `${where}.update`)
  return checked
}

function hexOf (bytes: Uint8Array): string { return Buffer.from(bytes).toString('hex') }

function bytesOfHex (hex: unknown, what: string): Uint8Array {
  if (typeof hex !== 'string' || !HEX32.test(hex)) throw new InvalidContributionsError(`${what} must be 64 lowercase hex characters`)
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

/** The bytes hashed into a leaf: the leaf tag, then Borsh (job, round, peer, samples). */
export function encodeContributionLeaf (input: ContributionLeafInput): Uint8Array {
  checkJobRound(input.job, input.round)
  const { peer, samples } = checkContribution(input, 'leaf')
  const job = encoder.encode(input.job)
  const peerBytes = encoder.encode(peer)
  const out = new Uint8Array(LEAF_TAG.length + 4 + job.length + 8 + 4 + peerBytes.length + 8)
  const view = new DataView(out.buffer)
  let o = 0
  out.set(LEAF_TAG, o); o += LEAF_TAG.length
  view.setUint32(o, job.length, true); o += 4
  out.set(job, o); o += job.length
  view.setBigUint64(o, BigInt(input.round), true); o += 8
  view.setUint32(o, peerBytes.length, true); o += 4
  out.set(peerBytes, o); o += peerBytes.length
  view.setBigUint64(o, BigInt(samples), true)
  return out
}

/** The leaf hash, hex. */
export function contributionLeafHash (input: ContributionLeafInput): string {
  return hexOf(sha256(encodeContributionLeaf(input)))
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

function hashPair (a: Uint8Array, b: Uint8Array): Uint8Array {
  const [lo, hi] = compareBytes(a, b) <= 0 ? [a, b] : [b, a]
  const buf = new Uint8Array(NODE_TAG.length + 64)
  buf.set(NODE_TAG, 0)
  buf.set(lo, NODE_TAG.length)
  buf.set(hi, NODE_TAG.length + 32)
  return sha256(buf)
}

/** The root of a round without contributions. */
export const EMPTY_CONTRIBUTIONS_ROOT = hexOf(sha256(encoder.encode(CONTRIBUTIONS_EMPTY_TAG)))

/** Validated contributions in leaf order (by peer id); duplicate peers are an error. */
export function canonicalContributions (contributions: readonly Contribution[]): Contribution[] {
  if (!Array.isArray(contributions)) throw new InvalidContributionsError('contributions must be an array')
  const sorted = contributions.map((c, i) => checkContribution(c, `contributions[${i}]`))
    .sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].peer === sorted[i - 1].peer) throw new InvalidContributionsError(`peer ${sorted[i].peer} appears more than once in the contributions`)
  }
  return sorted
}

/**
 * The round's total accepted samples: the sum of the weights the root commits to, which validators attest beside
 * the root (`contributions_total`) so that a reward share is weight / total. Validated like the root's input.
 */
export function contributionsTotal (contributions: readonly Contribution[]): number {
  const total = canonicalContributions(contributions).reduce((s, c) => s + c.samples, 0)
  if (!Number.isSafeInteger(total)) throw new InvalidContributionsError(`the round's accepted samples add up past 2^53-1`)
  return total
}

/** Leaf hashes in tree order. */
function leavesOf (job: string, round: number, contributions: readonly Contribution[]): { sorted: Contribution[], leaves: Uint8Array[] } {
  checkJobRound(job, round)
  const sorted = canonicalContributions(contributions)
  return { sorted, leaves: sorted.map(c => sha256(encodeContributionLeaf({ job, round, peer: c.peer, samples: c.samples }))) }
}

/** Hashes one level into the next; an odd last node is promoted unchanged. */
function nextLevel (level: Uint8Array[]): Uint8Array[] {
  const next: Uint8Array[] = []
  for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? hashPair(level[i], level[i + 1]) : level[i])
  return next
}

/** The Merkle root (hex sha256) of a round's contributions; order-independent, duplicates rejected. */
export function contributionsRoot (job: string, round: number, contributions: readonly Contribution[]): string {
  let level = leavesOf(job, round, contributions).leaves
  if (level.length === 0) return EMPTY_CONTRIBUTIONS_ROOT
  while (level.length > 1) level = nextLevel(level)
  return hexOf(level[0])
}

/** The sibling hashes (hex, leaf to root) proving `peer`'s contribution; throws if the peer did not contribute. */
export function contributionProof (job: string, round: number, contributions: readonly Contribution[], peer: string): string[] {
  const { sorted, leaves } = leavesOf(job, round, contributions)
  let index = sorted.findIndex(c => c.peer === peer)
  if (index < 0) throw new InvalidContributionsError(`peer ${peer} has no contribution in round ${round} of job ${job}`)
  const proof: string[] = []
  let level = leaves
  while (level.length > 1) {
    const sibling = index % 2 === 0 ? index + 1 : index - 1
    if (sibling < level.length) proof.push(hexOf(level[sibling])) // else: promoted, no sibling at this level
    level = nextLevel(level)
    index = Math.floor(index / 2)
  }
  return proof
}

/**
 * Whether `proof` shows that `leafInput` is in the tree with `root`. Malformed input (a bad id or
 * number, a hash that is not 64 lowercase hex characters, an over-long proof) throws
 * InvalidContributionsError; a well-formed proof that does not match returns false.
 */
export function verifyContributionProof (root: string, leafInput: ContributionLeafInput, proof: readonly string[]): boolean {
  const expected = bytesOfHex(root, 'root')
  if (!Array.isArray(proof)) throw new InvalidContributionsError('proof must be an array of hex hashes')
  if (proof.length > MAX_PROOF_LENGTH) throw new InvalidContributionsError(`proof has ${proof.length} hashes, at most ${MAX_PROOF_LENGTH} are possible`)
  let h: Uint8Array = sha256(encodeContributionLeaf(leafInput))
  proof.forEach((s, i) => { h = hashPair(h, bytesOfHex(s, `proof[${i}]`)) })
  return compareBytes(h, expected) === 0
}
