/**
 * NearAI coordination contract (AssemblyScript, NEAR host functions imported from `env` directly).
 *
 * What it holds today: training jobs (each names its evaluation set), validator attestations of round
 * checkpoints, final anchors with the attestations that disagreed with them (dissent), trainer bonds
 * (registration, cheat reports, slashing, unbonding), the DAO token and the DAO's proposals and votes, and
 * NEP-145 storage balances that pay for all of it.
 *
 * State layout. Every key starts with a short prefix and a '/', so features added later get their
 * own prefixes and never collide or need a migration of existing records:
 *   v                          state version ("1"); a future `migrate` method reads it and upgrades
 *   s/<account>                storage balance: u128 total deposit (16 LE bytes) + u64 bytes used (8 LE bytes)
 *   j/<job>                    job record (JSON); `eval_cid` added in place (records written before it read as null)
 *   r/<job>/<round:20 digits>  round record: candidate anchors with their attesters, and the final one (JSON);
 *                              dissent is derived from it (every attester of a candidate other than the final one)
 *   t/<job>/<round>/<account>  a validator's attestation for a round (index of its candidate)
 *   l/<job>                    latest final round (decimal)
 *                              `trainer_bond` and `unbonding_blocks` added to j/<job> in place (older records read as
 *                              an open job: bond 0, default delay)
 *   tr/<job>/<account>         trainer registration (JSON): peer id, bond, registration/unbonding/slash blocks, index
 *   tp/<job>/<peer id>         the account a libp2p peer id is bound to on a job (one account per peer id)
 *   tn/<job>                   number of registered trainers (decimal); ti/<job>/<i> the i-th one's account
 *                              (swap-removed on withdraw_bond), for paging get_trainers
 *   tc/<job>/<account>/<registration block:20 digits>            validators that reported that registration (JSON)
 *   tc/<job>/<account>/<registration block:20 digits>/<validator> one cheat report (JSON: round, reason, block);
 *                              reports stay after the trainer withdraws (their validators paid for them)
 *   tb/slashed                 u128 total of slashed bonds (burnt: locked here, never paid out)
 *   ft/b/<account>, ft/supply, ft/meta   the DAO token (NEP-141/148): token.ts
 *   dao/...    DAO parameters, proposals, votes and vote locks: dao.ts, votelock.ts
 *   rw/...     contribution rewards (claims, minted totals): rewards.ts. A round record carries `reward` (the DAO's
 *              reward_per_round when it became final) and each candidate its `contributions_total`.
 * Reserved for the next issues (not written yet):
 *   rev/...   stablecoin revenue per token (rev/acc cumulative per-token index, rev/u/<account>),
 *             received through ft_on_transfer from the stablecoin contract.
 *   esc/...   escrowed payment for private jobs (esc/<job>), released per final anchor.
 * Method names follow the standards they implement (storage_*, ft_*), the rest are verbs on nouns.
 *
 * Storage is paid by the account that adds state: every mutating method measures storage_usage
 * before and after and charges the byte delta to the caller's storage balance, panicking (which
 * reverts the call) when the balance does not cover it, so the contract cannot be drained.
 */
import * as env from './env'
import { registrationMessage, requirePeerSignature } from './peer-proof'
import { U128 } from './u128'
import { JValue, Kind, ObjWriter, quote, strArray } from './json'
import {
  attachedDeposit, currentAccount, inputJson, panic, predecessor, returnString, storageHas, storageRead,
  storageReadString, storageRemove, storageWrite, storageWriteString, transfer
} from './near'
import { argAccount, argCid, argFloat, argHex32, argIndex, argJobId, argString, field, optString, parseStored, validAccount } from './args'
import { BYTE_COST, STATE_VERSION, StorageBalance, chargeStorage, emit, ensureVersion, loadBalance, requireOneYocto, roundKey, saveBalance } from './storage'
import { createJob, jobUnbonding, jobBond, jobView, loadJob, parseJobSpec } from './jobs'
import { tokenBalance } from './token'
import { rewardPerRound } from './dao'
import { mintedTotal, payClaim, rewardView, verifyContribution } from './rewards'

// The DAO token (NEP-141/148) and the DAO's proposals and votes live in their own modules; these are their methods.
export { ft_transfer, ft_transfer_call, ft_resolve_transfer, ft_total_supply, ft_balance_of, ft_metadata } from './token'
export {
  dao_init, dao_propose, dao_vote, dao_finalize, dao_get_proposal, dao_list_proposals, dao_get_vote, dao_params, dao_locked_balance_of
} from './dao'

/** Conservative NEP-145 minimum: the registration record of a 64-character account id. */
const REGISTRATION_BYTES: u64 = 2 + 64 + 24 + 40

export function storage_deposit (): void {
  const args = inputJson()
  const deposit = attachedDeposit()
  const acc = optString(args, 'account_id')
  const account = acc == null ? predecessor() : acc
  if (!validAccount(account)) panic('account_id is not a valid account id')
  const regOnlyV = args.get('registration_only')
  const registrationOnly = regOnlyV != null && regOnlyV.kind == Kind.Bool && regOnlyV.b
  ensureVersion()
  let bal = loadBalance(account)
  if (bal == null) {
    const before = env.storage_usage()
    saveBalance(account, new StorageBalance(new U128(), 0))
    const used = env.storage_usage() - before
    const cost = BYTE_COST.mulU64(used)
    if (deposit.cmp(cost) < 0) panic('attached deposit is less than the registration cost of ' + cost.toString() + ' yoctoNEAR')
    if (registrationOnly) {
      bal = new StorageBalance(cost, used)
      const refund = deposit.sub(cost)
      if (!refund.isZero()) transfer(predecessor(), refund)
    } else {
      bal = new StorageBalance(deposit, used)
    }
  } else if (registrationOnly) {
    if (!deposit.isZero()) transfer(predecessor(), deposit) // already registered: NEP-145 refunds
  } else {
    bal.total = bal.total.add(deposit)
  }
  saveBalance(account, bal)
  returnString(bal.json())
}

export function storage_balance_of (): void {
  const args = inputJson()
  const bal = loadBalance(argAccount(args, 'account_id'))
  returnString(bal == null ? 'null' : bal.json())
}

export function storage_balance_bounds (): void {
  returnString(new ObjWriter().str('min', BYTE_COST.mulU64(REGISTRATION_BYTES).toString()).raw('max', 'null').toString())
}

export function storage_withdraw (): void {
  requireOneYocto()
  const args = inputJson()
  const account = predecessor()
  const bal = loadBalance(account)
  if (bal == null) { panic('account ' + account + ' is not registered'); return }
  const available = bal.available()
  const amountText = optString(args, 'amount')
  let amount = available
  if (amountText != null) {
    const parsed = U128.parse(amountText)
    if (parsed == null) { panic('amount must be a decimal string'); return }
    amount = parsed
  }
  if (amount.cmp(available) > 0) panic('amount exceeds the available storage balance of ' + available.toString())
  bal.total = bal.total.sub(amount)
  saveBalance(account, bal)
  if (!amount.isZero()) transfer(account, amount)
  returnString(bal.json())
}

/** Unregisters only an account that holds no state but its registration; `force` is not supported. */
export function storage_unregister (): void {
  requireOneYocto()
  const args = inputJson()
  const force = args.get('force')
  if (force != null && force.kind == Kind.Bool && force.b) panic('force unregistration is not supported: jobs and attestations stay')
  const account = predecessor()
  const bal = loadBalance(account)
  if (bal == null) { returnString('false'); return }
  const tokens = tokenBalance(account)
  if (!tokens.isZero()) panic(account + ' holds ' + tokens.toString() + ' DAO tokens; transfer them before unregistering')
  const before = env.storage_usage()
  storageRemove('s/' + account)
  const freed = before - env.storage_usage()
  if (bal.used > freed) panic('account still holds state paid by its storage balance')
  transfer(account, bal.total)
  returnString('true')
}

export function create_job (): void {
  const args = inputJson()
  const owner = predecessor()
  returnString(createJob(parseJobSpec(args), owner, owner))
}

export function get_job (): void {
  const args = inputJson()
  const job = argJobId(args)
  const rec = loadJob(job)
  returnString(rec == null ? 'null' : jobView(job, rec))
}

// ---------- attestations and anchors ----------

/**
 * One claim about a round: checkpoint CID, weights hash, contributions root and total (the sum of the accepted
 * samples the root commits to, which contribution rewards divide by), and evaluation loss. The loss is
 * kept as the JSON number text the validator sent and compared as text: validators send the float64 their
 * deterministic evaluation computed in its shortest round-trip form (JSON.stringify), so equal bits give
 * equal text, and any two texts that differ are two claims (no float parsing decides what "equal" means).
 */
class Candidate {
  attesters: string[] = []
  /** `total` is -1 for a candidate stored before attestations carried `contributions_total`. */
  constructor (public cid: string, public sha: string, public root: string, public total: i64, public loss: string) {}
  same (o: Candidate): bool {
    return this.cid == o.cid && this.sha == o.sha && this.root == o.root && this.total == o.total && this.loss == o.loss
  }
  fields (w: ObjWriter): ObjWriter {
    return w.str('checkpoint_cid', this.cid).str('weights_sha256', this.sha).str('contributions_root', this.root)
      .raw('contributions_total', this.total < 0 ? 'null' : this.total.toString()).raw('eval_loss', this.loss)
  }
  json (): string { return this.fields(new ObjWriter()).raw('attesters', strArray(this.attesters)).toString() }
}

class RoundRecord {
  candidates: Candidate[] = []
  final: i32 = -1
  /** The DAO's reward_per_round when the round became final ('' before, and for rounds final before rewards existed). */
  reward: string = ''

  static load (job: string, round: u64): RoundRecord {
    const r = new RoundRecord()
    const t = storageReadString('r/' + job + '/' + roundKey(round))
    if (t == null) return r
    const v = parseStored(t)
    r.final = <i32>parseInt(field(v, 'final').text)
    const rw = v.get('reward')
    if (rw != null && rw.kind == Kind.Str) r.reward = rw.text
    const cs = field(v, 'candidates').items
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]
      const tv = c.get('contributions_total')
      const total: i64 = tv == null || tv.kind != Kind.Num ? -1 : <i64>parseInt(tv.text)
      const cand = new Candidate(field(c, 'checkpoint_cid').text, field(c, 'weights_sha256').text, field(c, 'contributions_root').text, total, field(c, 'eval_loss').text)
      const as = field(c, 'attesters').items
      for (let j = 0; j < as.length; j++) cand.attesters.push(as[j].text)
      r.candidates.push(cand)
    }
    return r
  }

  save (job: string, round: u64): void {
    const w = new ObjWriter().raw('final', this.final.toString())
    if (this.reward.length > 0) w.str('reward', this.reward)
    storageWriteString('r/' + job + '/' + roundKey(round), w.raw('candidates', this.candidatesJson()).toString())
  }

  candidatesJson (): string {
    const parts: string[] = []
    for (let i = 0; i < this.candidates.length; i++) parts.push(this.candidates[i].json())
    return '[' + parts.join(',') + ']'
  }

  anchorJson (job: string, round: u64): string {
    if (this.final < 0) return 'null'
    const c = this.candidates[this.final]
    return c.fields(new ObjWriter().str('job', job).raw('round', round.toString())).raw('attesters', strArray(c.attesters))
      .str('reward', this.roundReward().toString()).toString()
  }

  /** The round's reward, fixed when it became final (0 for a round final before rewards existed). */
  roundReward (): U128 {
    if (this.reward.length == 0) return new U128()
    const r = U128.parse(this.reward)
    if (r == null) { panic('corrupt round record: reward'); return new U128() }
    return r
  }

  /** Once the round is final: every attestation of another candidate, made before or after it became final. */
  dissentJson (): string {
    const parts: string[] = []
    if (this.final < 0) return '[]'
    for (let i = 0; i < this.candidates.length; i++) {
      if (i == this.final) continue
      const c = this.candidates[i]
      for (let j = 0; j < c.attesters.length; j++) parts.push(c.fields(new ObjWriter().str('validator', c.attesters[j])).toString())
    }
    return '[' + parts.join(',') + ']'
  }

  view (job: string, round: u64): string {
    return new ObjWriter().str('job', job).raw('round', round.toString())
      .raw('final', this.anchorJson(job, round)).raw('candidates', this.candidatesJson())
      .raw('dissent', this.dissentJson()).toString()
  }
}

/** NEP-297 `attestation_dissent`: validators whose attestation of a final round differs from its anchor. */
function emitDissent (job: string, round: u64, rr: RoundRecord, only: string | null): void {
  if (rr.final < 0) return
  const anchor = rr.candidates[rr.final]
  const parts: string[] = []
  for (let i = 0; i < rr.candidates.length; i++) {
    if (i == rr.final) continue
    const c = rr.candidates[i]
    for (let j = 0; j < c.attesters.length; j++) {
      if (only != null && c.attesters[j] != only) continue
      parts.push(c.fields(new ObjWriter().str('job', job).raw('round', round.toString()).str('validator', c.attesters[j]))
        .str('final_checkpoint_cid', anchor.cid).str('final_weights_sha256', anchor.sha).raw('final_eval_loss', anchor.loss).toString())
    }
  }
  if (parts.length > 0) emit('attestation_dissent', parts.join(','))
}

export function attest (): void {
  const args = inputJson()
  const validator = predecessor()
  const job = argJobId(args)
  const round = argIndex(args, 'round')
  const cand = new Candidate(argCid(args, 'checkpoint_cid'), argHex32(args, 'weights_sha256'), argHex32(args, 'contributions_root'),
    <i64>argIndex(args, 'contributions_total'), argFloat(args, 'eval_loss'))
  const rec = loadJob(job)
  if (rec == null) { panic('unknown job ' + job); return }
  const validators = field(rec, 'validators').items
  let isValidator = false
  for (let i = 0; i < validators.length; i++) if (validators[i].text == validator) isValidator = true
  if (!isValidator) panic(validator + ' is not a validator of job ' + job)
  const markKey = 't/' + job + '/' + roundKey(round) + '/' + validator
  if (storageHas(markKey)) panic(validator + ' already attested round ' + round.toString() + ' of job ' + job)
  const threshold = <i32>parseInt(field(rec, 'threshold').text)

  const before = env.storage_usage()
  const rr = RoundRecord.load(job, round)
  let idx = -1
  for (let i = 0; i < rr.candidates.length; i++) if (rr.candidates[i].same(cand)) idx = i
  if (idx < 0) { rr.candidates.push(cand); idx = rr.candidates.length - 1 }
  rr.candidates[idx].attesters.push(validator)
  let finalized = false
  // The first candidate to reach the threshold wins; later attestations never move a final anchor.
  // Its reward is fixed now: a later change of the DAO's reward_per_round does not reach rounds already final.
  if (rr.final < 0 && rr.candidates[idx].attesters.length >= threshold) { rr.final = idx; finalized = true; rr.reward = rewardPerRound().toString() }
  rr.save(job, round)
  storageWriteString(markKey, idx.toString())
  if (finalized) {
    const latest = storageReadString('l/' + job)
    if (latest == null || <u64>parseInt(latest) < round) storageWriteString('l/' + job, round.toString())
  }
  chargeStorage(validator, before)

  emit('attested', cand.fields(new ObjWriter().str('job', job).raw('round', round.toString()).str('validator', validator)).toString())
  if (finalized) {
    emit('anchor_finalized', rr.anchorJson(job, round))
    emitDissent(job, round, rr, null) // everyone outvoted so far
  } else if (rr.final >= 0 && rr.final != idx) {
    emitDissent(job, round, rr, validator) // a late attestation that disagrees with the final anchor
  }
  returnString(rr.view(job, round))
}

export function get_anchor (): void {
  const args = inputJson()
  const job = argJobId(args)
  const round = argIndex(args, 'round')
  if (!storageHas('j/' + job)) { returnString('null'); return }
  returnString(RoundRecord.load(job, round).view(job, round))
}

export function latest_anchor (): void {
  const args = inputJson()
  const job = argJobId(args)
  const latest = storageReadString('l/' + job)
  if (latest == null) { returnString('null'); return }
  const round = <u64>parseInt(latest)
  returnString(RoundRecord.load(job, round).anchorJson(job, round))
}

export function get_attestations (): void {
  const args = inputJson()
  const job = argJobId(args)
  const round = argIndex(args, 'round')
  const rr = RoundRecord.load(job, round)
  const parts: string[] = []
  for (let i = 0; i < rr.candidates.length; i++) {
    const c = rr.candidates[i]
    for (let j = 0; j < c.attesters.length; j++) parts.push(c.fields(new ObjWriter().str('validator', c.attesters[j])).toString())
  }
  returnString('[' + parts.join(',') + ']')
}

export function state_version (): void {
  const v = storageReadString('v')
  returnString(v == null ? quote(STATE_VERSION) : quote(v))
}

// ---------- trainer bonds (Sybil resistance for on-chain jobs) ----------
//
// A job may require each trainer to bond `trainer_bond` yoctoNEAR and bind its account to one libp2p peer id.
// The job's validators report a trainer that cheated; once `threshold` distinct validators reported the same
// registration (any rounds) its bond is slashed: burnt, i.e. kept locked in this contract for good and added to
// `tb/slashed`, never paid to anyone, so neither validators nor the job owner profit from slashing. An honest
// trainer deregisters, waits the job's `unbonding_blocks` (a cheat found late can still be slashed meanwhile)
// and withdraws exactly its bond. Rewards (a later issue) are paid only to registered, unslashed peers:
// `rewardEligible` / the `reward_eligible` view.

/** Longest cheat-report reason kept on chain, in characters. */
const MAX_REASON = 256
/** Most trainers one get_trainers page returns. */
const MAX_TRAINERS_PAGE: u64 = 100

function isBase58Char (c: i32): bool {
  return (c >= 49 && c <= 57) || (c >= 65 && c <= 72) || (c >= 74 && c <= 78) || (c >= 80 && c <= 90) ||
    (c >= 97 && c <= 107) || (c >= 109 && c <= 122)
}

/** A libp2p peer id as the node writes it: 40..100 base58btc characters (protocol/primitives.ts PEER_ID_PATTERN). */
function argPeerId (args: JValue): string {
  const s = argString(args, 'peer_id')
  if (s.length < 40 || s.length > 100) panic('peer_id must be a libp2p peer id (40..100 base58 characters)')
  for (let i = 0; i < s.length; i++) if (!isBase58Char(s.charCodeAt(i))) panic('peer_id must be a libp2p peer id (40..100 base58 characters)')
  return s
}


function isJobValidator (rec: JValue, account: string): bool {
  const validators = field(rec, 'validators').items
  for (let i = 0; i < validators.length; i++) if (validators[i].text == account) return true
  return false
}

function requireJob (job: string): JValue {
  const rec = loadJob(job)
  if (rec == null) { panic('unknown job ' + job); return new JValue() }
  return rec
}

/** One registration: `tr/<job>/<account>`. Reports against it are keyed by its registration block. */
class Trainer {
  constructor (
    public peer: string, public bond: U128, public registeredAt: u64, public index: u64,
    public unbondingAt: i64 = -1, public slashedAt: i64 = -1
  ) {}

  static load (job: string, account: string): Trainer | null {
    const t = storageReadString('tr/' + job + '/' + account)
    if (t == null) return null
    const v = parseStored(t)
    const bond = U128.parse(field(v, 'bond').text)
    if (bond == null) { panic('corrupt trainer record'); return null }
    const tr = new Trainer(field(v, 'peer_id').text, bond, <u64>parseInt(field(v, 'registered_at_block').text), <u64>parseInt(field(v, 'index').text))
    const u = field(v, 'unbonding_at_block')
    if (u.kind != Kind.Null) tr.unbondingAt = <i64>parseInt(u.text)
    const s = field(v, 'slashed_at_block')
    if (s.kind != Kind.Null) tr.slashedAt = <i64>parseInt(s.text)
    return tr
  }

  save (job: string, account: string): void {
    storageWriteString('tr/' + job + '/' + account, new ObjWriter()
      .str('peer_id', this.peer).str('bond', this.bond.toString())
      .raw('registered_at_block', this.registeredAt.toString()).raw('index', this.index.toString())
      .raw('unbonding_at_block', this.unbondingAt < 0 ? 'null' : this.unbondingAt.toString())
      .raw('slashed_at_block', this.slashedAt < 0 ? 'null' : this.slashedAt.toString())
      .toString())
  }

  reportsPrefix (job: string, account: string): string {
    return 'tc/' + job + '/' + account + '/' + roundKey(this.registeredAt)
  }

  /** Validators that reported this registration, in report order (`tc/<job>/<account>/<registered block>`). */
  reporters (job: string, account: string): string[] {
    const t = storageReadString(this.reportsPrefix(job, account))
    const out: string[] = []
    if (t == null) return out
    const items = parseStored(t).items
    for (let i = 0; i < items.length; i++) out.push(items[i].text)
    return out
  }

  status (): string { return this.slashedAt >= 0 ? 'slashed' : (this.unbondingAt >= 0 ? 'unbonding' : 'active') }

  view (job: string, account: string, unbondingBlocks: u64): string {
    const reporters = this.reporters(job, account)
    const reports: string[] = []
    for (let i = 0; i < reporters.length; i++) {
      const r = storageReadString(this.reportsPrefix(job, account) + '/' + reporters[i])
      if (r != null) reports.push(r)
    }
    return new ObjWriter()
      .str('job', job).str('account_id', account).str('peer_id', this.peer).str('bond', this.bond.toString())
      .str('status', this.status())
      .raw('registered_at_block', this.registeredAt.toString())
      .raw('unbonding_at_block', this.unbondingAt < 0 ? 'null' : this.unbondingAt.toString())
      .raw('withdrawable_at_block', this.unbondingAt < 0 || this.slashedAt >= 0 ? 'null' : (<u64> this.unbondingAt + unbondingBlocks).toString())
      .raw('slashed_at_block', this.slashedAt < 0 ? 'null' : this.slashedAt.toString())
      .raw('reports', '[' + reports.join(',') + ']')
      .toString()
  }
}

function trainerCount (job: string): u64 {
  const n = storageReadString('tn/' + job)
  return n == null ? 0 : <u64>parseInt(n)
}

/** The account bound to `peer` on `job`, or null. */
function accountOfPeer (job: string, peer: string): string | null {
  return storageReadString('tp/' + job + '/' + peer)
}

/**
 * Whether contribution rewards may be paid to `peer` on `job`: it is bound to a registered trainer that was not
 * slashed (a trainer that is unbonding still counts for the rounds it trained; after withdraw_bond it is gone).
 * Not exported (every wasm export is a contract method): the reward claim of a later issue calls it in this module.
 */
function rewardEligible (job: string, peer: string): bool {
  const account = accountOfPeer(job, peer)
  if (account == null) return false
  const tr = Trainer.load(job, account)
  return tr != null && tr.slashedAt < 0 && tr.peer == peer
}

export function register_trainer (): void {
  const args = inputJson()
  const account = predecessor()
  const job = argJobId(args)
  const peer = argPeerId(args)
  const signature = argString(args, 'peer_signature')
  const rec = requireJob(job)
  const bond = jobBond(rec)
  const deposit = attachedDeposit()
  if (deposit.cmp(bond) < 0) panic('job ' + job + ' requires a trainer bond of ' + bond.toString() + ' yoctoNEAR; attached ' + deposit.toString())
  const existing = Trainer.load(job, account)
  if (existing != null) panic(account + ' is already registered as a trainer of job ' + job + ' (' + existing.status() + ', peer ' + existing.peer + ')')
  const holder = accountOfPeer(job, peer)
  if (holder != null) panic('peer ' + peer + ' is already registered on job ' + job + ' by ' + holder)
  // The peer's key signs (contract, job, account): nobody binds a peer id it does not hold (peer-proof.ts).
  requirePeerSignature(peer, registrationMessage(currentAccount(), job, account), signature)
  ensureVersion()
  const before = env.storage_usage()
  const index = trainerCount(job)
  // The whole attached deposit is the bond: withdraw_bond returns exactly it.
  const tr = new Trainer(peer, deposit, env.block_index(), index)
  tr.save(job, account)
  storageWriteString('tp/' + job + '/' + peer, account)
  storageWriteString('ti/' + job + '/' + index.toString(), account)
  storageWriteString('tn/' + job, (index + 1).toString())
  chargeStorage(account, before)
  const view = tr.view(job, account, jobUnbonding(rec))
  emit('trainer_registered', view)
  returnString(view)
}

/** Starts the unbonding delay: the trainer stops counting as an active member; its bond stays slashable until withdrawn. */
export function deregister_trainer (): void {
  const args = inputJson()
  const account = predecessor()
  const job = argJobId(args)
  const rec = requireJob(job)
  const tr = Trainer.load(job, account)
  if (tr == null) { panic(account + ' is not a trainer of job ' + job); return }
  if (tr.slashedAt >= 0) panic(account + ' was slashed on job ' + job)
  if (tr.unbondingAt >= 0) panic(account + ' is already unbonding on job ' + job)
  const before = env.storage_usage()
  tr.unbondingAt = <i64>env.block_index()
  tr.save(job, account)
  chargeStorage(account, before)
  const view = tr.view(job, account, jobUnbonding(rec))
  emit('trainer_unbonding', view)
  returnString(view)
}

export function withdraw_bond (): void {
  requireOneYocto()
  const args = inputJson()
  const account = predecessor()
  const job = argJobId(args)
  const rec = requireJob(job)
  const tr = Trainer.load(job, account)
  if (tr == null) { panic(account + ' is not a trainer of job ' + job); return }
  if (tr.slashedAt >= 0) panic(account + ' was slashed on job ' + job + ': its bond is burnt')
  if (tr.unbondingAt < 0) panic(account + ' must call deregister_trainer first and wait ' + jobUnbonding(rec).toString() + ' blocks')
  const due = <u64>tr.unbondingAt + jobUnbonding(rec)
  const now = env.block_index()
  if (now < due) panic('the bond of ' + account + ' on job ' + job + ' unlocks at block ' + due.toString() + ' (now ' + now.toString() + ')')
  const before = env.storage_usage()
  // swap-remove from the trainer index
  const last = trainerCount(job) - 1
  if (tr.index != last) {
    const moved = storageReadString('ti/' + job + '/' + last.toString())
    if (moved == null) { panic('corrupt trainer index'); return }
    const mt = Trainer.load(job, moved)
    if (mt == null) { panic('corrupt trainer index'); return }
    mt.index = tr.index
    mt.save(job, moved)
    storageWriteString('ti/' + job + '/' + tr.index.toString(), moved)
  }
  storageRemove('ti/' + job + '/' + last.toString())
  if (last == 0) storageRemove('tn/' + job)
  else storageWriteString('tn/' + job, last.toString())
  storageRemove('tp/' + job + '/' + tr.peer)
  storageRemove('tr/' + job + '/' + account)
  chargeStorage(account, before)
  if (!tr.bond.isZero()) transfer(account, tr.bond)
  emit('bond_withdrawn', new ObjWriter().str('job', job).str('account_id', account).str('peer_id', tr.peer).str('bond', tr.bond.toString()).toString())
  returnString(new ObjWriter().str('job', job).str('account_id', account).str('bond', tr.bond.toString()).toString())
}

export function report_cheat (): void {
  const args = inputJson()
  const validator = predecessor()
  const job = argJobId(args)
  const account = argAccount(args, 'account_id')
  const round = argIndex(args, 'round')
  const reason = argString(args, 'reason')
  if (reason.length < 1 || reason.length > MAX_REASON) panic('reason must be 1..256 characters')
  const rec = requireJob(job)
  if (!isJobValidator(rec, validator)) panic(validator + ' is not a validator of job ' + job)
  const tr = Trainer.load(job, account)
  if (tr == null) { panic(account + ' is not a trainer of job ' + job); return }
  if (tr.slashedAt >= 0) panic(account + ' was already slashed on job ' + job)
  const reporters = tr.reporters(job, account)
  if (reporters.includes(validator)) panic(validator + ' already reported ' + account + ' on job ' + job)
  const threshold = <i32>parseInt(field(rec, 'threshold').text)
  const before = env.storage_usage()
  reporters.push(validator)
  const prefix = tr.reportsPrefix(job, account)
  // Reports stay on record (paid by their validators) even after the trainer withdraws.
  storageWriteString(prefix, strArray(reporters))
  storageWriteString(prefix + '/' + validator, new ObjWriter().str('validator', validator).raw('round', round.toString())
    .str('reason', reason).raw('block', env.block_index().toString()).toString())
  const slashed = reporters.length >= threshold
  if (slashed) {
    tr.slashedAt = <i64>env.block_index()
    tr.save(job, account)
    const burnt = loadSlashedTotal().add(tr.bond)
    storageWrite('tb/slashed', burnt.toBytes())
  }
  chargeStorage(validator, before)
  emit('cheat_reported', new ObjWriter().str('job', job).str('account_id', account).str('peer_id', tr.peer)
    .str('validator', validator).raw('round', round.toString()).str('reason', reason).toString())
  if (slashed) {
    emit('trainer_slashed', new ObjWriter().str('job', job).str('account_id', account).str('peer_id', tr.peer)
      .str('bond', tr.bond.toString()).raw('reporters', strArray(reporters)).raw('block', tr.slashedAt.toString()).toString())
  }
  returnString(tr.view(job, account, jobUnbonding(rec)))
}

function loadSlashedTotal (): U128 {
  const b = storageRead('tb/slashed')
  if (b == null) return new U128()
  if (b.byteLength != 16) panic('corrupt slashed total')
  return U128.load(changetype<usize>(b))
}

export function get_trainer (): void {
  const args = inputJson()
  const job = argJobId(args)
  const account = argAccount(args, 'account_id')
  returnTrainerView(job, account)
}

/** The registration a peer id is bound to on a job, or null. */
export function get_trainer_by_peer (): void {
  const args = inputJson()
  const job = argJobId(args)
  const peer = argPeerId(args)
  returnTrainerView(job, accountOfPeer(job, peer))
}

/** Returns `account`'s registration on `job` as the views show it, or null (no job, no account, not registered). */
function returnTrainerView (job: string, account: string | null): void {
  const rec = loadJob(job)
  if (rec == null || account == null) { returnString('null'); return }
  const tr = Trainer.load(job, account)
  if (tr == null) { returnString('null'); return }
  returnString(tr.view(job, account, jobUnbonding(rec)))
}

/** Trainers of a job in index order, a page at a time (`from_index` default 0, `limit` default and at most 100). */
export function get_trainers (): void {
  const args = inputJson()
  const job = argJobId(args)
  const rec = loadJob(job)
  if (rec == null) { returnString('null'); return }
  const from: u64 = args.get('from_index') == null ? 0 : argIndex(args, 'from_index')
  let limit: u64 = args.get('limit') == null ? MAX_TRAINERS_PAGE : argIndex(args, 'limit')
  if (limit > MAX_TRAINERS_PAGE) limit = MAX_TRAINERS_PAGE
  const count = trainerCount(job)
  const parts: string[] = []
  const unbonding = jobUnbonding(rec)
  for (let i = from; i < count && i < from + limit; i++) {
    const account = storageReadString('ti/' + job + '/' + i.toString())
    if (account == null) { panic('corrupt trainer index'); return }
    const tr = Trainer.load(job, account)
    if (tr == null) { panic('corrupt trainer index'); return }
    parts.push(tr.view(job, account, unbonding))
  }
  returnString(new ObjWriter().str('job', job).raw('total', count.toString()).raw('trainers', '[' + parts.join(',') + ']').toString())
}

/** `true` when rewards may be paid to `peer_id` on `job`: see rewardEligible. */
export function reward_eligible (): void {
  const args = inputJson()
  returnString(rewardEligible(argJobId(args), argPeerId(args)) ? 'true' : 'false')
}

/** Total yoctoNEAR burnt by slashing (locked in this contract; no method pays it out). */
export function slashed_total (): void {
  returnString(quote(loadSlashedTotal().toString()))
}

// ---------- contribution rewards (rewards.ts) ----------

/**
 * `{ job, round, peer_id, weight, proof }`: pays the caller its share of a final round's reward for the leaf
 * (job, round, peer_id, weight), proven against the final anchor's contributions_root. The caller must be the account
 * bound to `peer_id` on the job and eligible (registered, not slashed). Returns the claim (see rewards.ts payClaim).
 */
export function claim_reward (): void {
  const args = inputJson()
  const caller = predecessor()
  const job = argJobId(args)
  const round = argIndex(args, 'round')
  const peer = argPeerId(args)
  const weight = argIndex(args, 'weight')
  const proof = field(args, 'proof')
  requireJob(job)
  const rr = RoundRecord.load(job, round)
  if (rr.final < 0) panic('round ' + round.toString() + ' of job ' + job + ' is not final: there is no reward to claim yet')
  const anchor = rr.candidates[rr.final]
  if (anchor.total < 0) panic('the final anchor of round ' + round.toString() + ' of job ' + job + ' carries no contributions_total (attested before rewards existed)')
  const holder = accountOfPeer(job, peer)
  if (holder == null) panic('peer ' + peer + ' is not bound to a trainer of job ' + job + ': register_trainer first')
  if (holder != caller) panic('peer ' + peer + ' is bound to ' + holder! + ' on job ' + job + ': only that account claims its rewards')
  if (!rewardEligible(job, peer)) panic('the trainer of peer ' + peer + ' on job ' + job + ' was slashed: it earns no rewards')
  if (!verifyContribution(anchor.root, job, round, peer, weight, proof)) {
    panic('the proof does not show (job, round, peer_id, weight) under the final contributions_root of round ' + round.toString() + ' of job ' + job)
  }
  returnString(payClaim(job, round, peer, caller, weight, <u64>anchor.total, rr.roundReward()))
}

/** `{ job, round, peer_id }`: the leaf's reward, claimed or not (rewards.ts rewardView); null for an unknown job. */
export function get_reward (): void {
  const args = inputJson()
  const job = argJobId(args)
  const round = argIndex(args, 'round')
  const peer = argPeerId(args)
  if (loadJob(job) == null) { returnString('null'); return }
  const rr = RoundRecord.load(job, round)
  const final = rr.final >= 0
  returnString(rewardView(job, round, peer, final, final ? rr.roundReward().toString() : null, final ? rr.candidates[rr.final].total : -1))
}

/** `{ job? }`: tokens minted by reward claims, of one job or of all (a decimal string). */
export function rewards_minted_total (): void {
  const args = inputJson()
  returnString(quote(mintedTotal(args.get('job') == null ? null : argJobId(args)).toString()))
}
