// Contribution rewards: each final round of a job mints the DAO's `reward_per_round` (fixed when the round became
// final) to its contributors pro rata to their accepted samples, claimed one leaf at a time with a Merkle proof
// against the final anchor's `contributions_root`.
//
//   rw/c/<job>/<round:20>/<peer>  a claim: { account_id, weight, amount, block } (each (job, round, peer) once)
//   rw/r/<job>/<round:20>         u128 minted for that round so far (never above the round's reward)
//   rw/j/<job>                    u128 minted for the job
//   rw/t                          u128 minted by all claims
//
// A claim pays floor(reward × weight / contributions_total). The remainders ("dust") are never minted: the sum of a
// round's claims is at most its reward, and the per-round total enforces that even if the anchored total were
// smaller than the sum of the leaves. The leaf and node hashing is byte-identical to protocol/contributions.ts:
//   leaf = sha256("nearai/contributions/v1/leaf" || u32 len(job) || job || u64 round || u32 len(peer) || peer || u64 samples)
//   node = sha256("nearai/contributions/v1/node" || min(a, b) || max(a, b))   (little-endian integers, bytewise min/max)
import * as env from './env'
import { U128 } from './u128'
import { JValue, Kind, ObjWriter } from './json'
import { panic, readRegister, storageHas, storageRead, storageReadString, storageWrite, storageWriteString, utf8 } from './near'
import { parseStored, field } from './args'
import { chargeStorage, emit, ensureVersion, roundKey } from './storage'
import { hexBytes } from './peer-proof'
import { mint } from './token'

const LEAF_TAG = 'nearai/contributions/v1/leaf'
const NODE_TAG = 'nearai/contributions/v1/node'
/** Proofs longer than this cannot come from any tree of at most 2^53 leaves (protocol/contributions.ts). */
export const MAX_PROOF_LENGTH = 64
const HASH_REGISTER: u64 = 3
const LIMB: u64 = 0xFFFFFFFF

function sha256 (data: Uint8Array): Uint8Array {
  env.sha256(<u64>data.length, <u64>data.dataStart, HASH_REGISTER)
  return Uint8Array.wrap(readRegister(HASH_REGISTER))
}

function putU32 (out: Uint8Array, at: i32, v: u32): void {
  for (let i = 0; i < 4; i++) out[at + i] = <u8>((v >> (8 * i)) & 0xff)
}

function putU64 (out: Uint8Array, at: i32, v: u64): void {
  for (let i = 0; i < 8; i++) out[at + i] = <u8>((v >> (8 * <u64>i)) & 0xff)
}

function putBytes (out: Uint8Array, at: i32, b: Uint8Array): void {
  for (let i = 0; i < b.length; i++) out[at + i] = b[i]
}

/** The leaf hash of (job, round, peer, samples), as protocol/contributions.ts computes it. */
export function contributionLeaf (job: string, round: u64, peer: string, samples: u64): Uint8Array {
  const tag = Uint8Array.wrap(utf8(LEAF_TAG))
  const j = Uint8Array.wrap(utf8(job))
  const p = Uint8Array.wrap(utf8(peer))
  const out = new Uint8Array(tag.length + 4 + j.length + 8 + 4 + p.length + 8)
  let o = 0
  putBytes(out, o, tag); o += tag.length
  putU32(out, o, <u32>j.length); o += 4
  putBytes(out, o, j); o += j.length
  putU64(out, o, round); o += 8
  putU32(out, o, <u32>p.length); o += 4
  putBytes(out, o, p); o += p.length
  putU64(out, o, samples)
  return sha256(out)
}

function compareBytes (a: Uint8Array, b: Uint8Array): i32 {
  for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return <i32>a[i] - <i32>b[i]
  return 0
}

function hashPair (a: Uint8Array, b: Uint8Array): Uint8Array {
  const tag = Uint8Array.wrap(utf8(NODE_TAG))
  const ordered = compareBytes(a, b) <= 0
  const lo = ordered ? a : b
  const hi = ordered ? b : a
  const buf = new Uint8Array(tag.length + 64)
  putBytes(buf, 0, tag)
  putBytes(buf, tag.length, lo)
  putBytes(buf, tag.length + 32, hi)
  return sha256(buf)
}

/** Whether `proof` (an array of at most 64 hex hashes, leaf to root) shows the leaf under `rootHex`; panics on a malformed proof. */
export function verifyContribution (rootHex: string, job: string, round: u64, peer: string, samples: u64, proof: JValue): bool {
  if (proof.kind != Kind.Arr) panic('proof must be an array of 64-character hex hashes')
  if (proof.items.length > MAX_PROOF_LENGTH) panic('proof has more than ' + MAX_PROOF_LENGTH.toString() + ' hashes')
  let h = contributionLeaf(job, round, peer, samples)
  for (let i = 0; i < proof.items.length; i++) {
    const s = proof.items[i]
    if (s.kind != Kind.Str) panic('proof must be an array of 64-character hex hashes')
    h = hashPair(h, hexBytes(s.text, 32, 'proof[' + i.toString() + ']'))
  }
  return compareBytes(h, hexBytes(rootHex, 32, 'contributions_root')) == 0
}

/**
 * floor(reward × weight / total) for weight ≤ total ≤ 2^53: the product (up to 181 bits) in 32-bit limbs, then a
 * binary long division whose remainder stays below total (so below 2^54 after each shift).
 */
export function proRata (reward: U128, weight: u64, total: u64): U128 {
  if (total == 0 || weight > total) panic('weight must be at most the round\'s contributions_total')
  const a: u64[] = [reward.lo & LIMB, reward.lo >> 32, reward.hi & LIMB, reward.hi >> 32]
  const b: u64[] = [weight & LIMB, weight >> 32]
  const p = new StaticArray<u64>(6)
  for (let i = 0; i < 4; i++) {
    let carry: u64 = 0
    for (let j = 0; j < 2; j++) {
      const t = a[i] * b[j] + p[i + j] + carry
      p[i + j] = t & LIMB
      carry = t >> 32
    }
    p[i + 2] += carry
  }
  const q = new StaticArray<u64>(6)
  let rem: u64 = 0
  for (let k = 191; k >= 0; k--) {
    const limb = k >> 5
    const bit = (p[limb] >> <u64>(k & 31)) & 1
    rem = (rem << 1) | bit
    if (rem >= total) {
      rem -= total
      q[limb] |= (<u64>1) << <u64>(k & 31)
    }
  }
  if (q[4] != 0 || q[5] != 0) panic('reward overflow') // cannot happen with weight <= total
  return new U128(q[0] | (q[1] << 32), q[2] | (q[3] << 32))
}

function loadU128 (key: string): U128 {
  const b = storageRead(key)
  if (b == null) return new U128()
  if (b.byteLength != 16) panic('corrupt u128 at ' + key)
  return U128.load(changetype<usize>(b))
}

function claimKey (job: string, round: u64, peer: string): string { return 'rw/c/' + job + '/' + roundKey(round) + '/' + peer }
function roundMintedKey (job: string, round: u64): string { return 'rw/r/' + job + '/' + roundKey(round) }

/** Tokens minted by claims: of one job, or of all jobs when `job` is null. */
export function mintedTotal (job: string | null): U128 { return loadU128(job == null ? 'rw/t' : 'rw/j/' + job) }

/**
 * Pays one checked claim: `account` (bound to `peer`, eligible, proof verified by the caller) gets
 * floor(roundReward × weight / total), minted. Panics when the leaf was claimed before, the round carries no reward,
 * the amount rounds to 0, or the round's claims would exceed its reward. Returns the claim's view.
 */
export function payClaim (job: string, round: u64, peer: string, account: string, weight: u64, total: u64, roundReward: U128): string {
  const key = claimKey(job, round, peer)
  if (storageHas(key)) panic('the reward of peer ' + peer + ' for round ' + round.toString() + ' of job ' + job + ' was already claimed')
  if (roundReward.isZero()) panic('round ' + round.toString() + ' of job ' + job + ' carries no reward (reward_per_round was 0 when it became final)')
  if (weight > total) panic('weight ' + weight.toString() + ' exceeds the round\'s contributions_total ' + total.toString())
  const amount = proRata(roundReward, weight, total)
  if (amount.isZero()) panic('the reward of weight ' + weight.toString() + ' in round ' + round.toString() + ' of job ' + job + ' rounds down to 0')
  const roundMinted = loadU128(roundMintedKey(job, round)).add(amount)
  if (roundMinted.cmp(roundReward) > 0) panic('claims of round ' + round.toString() + ' of job ' + job + ' would exceed its reward of ' + roundReward.toString() + ': its anchored contributions_total is below the sum of its leaves')
  ensureVersion()
  const block = env.block_index()
  const before = env.storage_usage()
  storageWriteString(key, new ObjWriter().str('account_id', account).raw('weight', weight.toString())
    .str('amount', amount.toString()).raw('block', block.toString()).toString())
  storageWrite(roundMintedKey(job, round), roundMinted.toBytes())
  storageWrite('rw/j/' + job, mintedTotal(job).add(amount).toBytes())
  storageWrite('rw/t', mintedTotal(null).add(amount).toBytes())
  chargeStorage(account, before)
  mint(account, amount, 'reward ' + job + ' round ' + round.toString()) // charges the balance record itself
  const view = new ObjWriter().str('job', job).raw('round', round.toString()).str('peer_id', peer).str('account_id', account)
    .raw('weight', weight.toString()).raw('contributions_total', total.toString()).str('round_reward', roundReward.toString())
    .str('amount', amount.toString()).raw('block', block.toString()).toString()
  emit('reward_claimed', view)
  return view
}

/**
 * The reward view of one leaf: `{ job, round, peer_id, final, round_reward, contributions_total, round_minted,
 * claimed, account_id, weight, amount, claimed_at_block }` (`round_reward`/`contributions_total` null while the round
 * is not final; the claim's fields null until claimed).
 */
export function rewardView (job: string, round: u64, peer: string, final: bool, roundReward: string | null, total: i64): string {
  const w = new ObjWriter().str('job', job).raw('round', round.toString()).str('peer_id', peer).raw('final', final ? 'true' : 'false')
    .raw('round_reward', roundReward == null ? 'null' : '"' + roundReward + '"')
    .raw('contributions_total', total < 0 ? 'null' : total.toString())
    .str('round_minted', loadU128(roundMintedKey(job, round)).toString())
  const t = storageReadString(claimKey(job, round, peer))
  if (t == null) {
    return w.raw('claimed', 'false').raw('account_id', 'null').raw('weight', 'null').raw('amount', 'null').raw('claimed_at_block', 'null').toString()
  }
  const c = parseStored(t)
  return w.raw('claimed', 'true').str('account_id', field(c, 'account_id').text).raw('weight', field(c, 'weight').text)
    .str('amount', field(c, 'amount').text).raw('claimed_at_block', field(c, 'block').text).toString()
}
