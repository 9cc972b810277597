// DAO proposals and token-weighted votes, in the spirit of Sputnik DAO v2 (one token-weighted role).
//
//   dao/init           "1" once dao_init ran (it runs once)
//   dao/params         { quorum_bps, threshold_bps, voting_period_blocks, proposal_bond, reward_per_round } (defaults until set)
//   dao/n              number of proposals (ids are 0, 1, 2, ...)
//   dao/p/<id>         proposal (JSON, see proposalView)
//   dao/v/<id>/<acct>  one vote: { vote, weight, block }
//   dao/l/<acct>       the account's open votes (votelock.ts)
//   dao/kept           u128 total of bonds kept from proposals that expired without quorum
//
// Lifecycle: dao_propose (bond attached) -> open; dao_vote while block < voting_ends_at_block; dao_finalize by
// anyone once the period is over, or earlier when no remaining vote can change the outcome. A proposal passes
// with quorum (yes + no >= quorum_bps/10000 of the votable supply, i.e. the total supply minus the treasury,
// taken when the proposal was made) and threshold (yes > threshold_bps/10000 of yes + no). Outcomes: passed (the
// action ran), failed (it passed but its action could not run any more, e.g. the job id was taken meanwhile),
// rejected (quorum, no threshold), expired (no quorum). The bond goes back to the proposer unless the proposal
// expired: a proposal nobody voted on enough keeps its bond in the contract (`dao/kept`), which is what makes
// spam cost something.
import * as env from './env'
import { U128 } from './u128'
import { JValue, Kind, ObjWriter, quote } from './json'
import {
  attachedDeposit, currentAccount, inputJson, panic, predecessor, returnString, storageHas, storageRead,
  storageReadString, storageWrite, storageWriteString, transfer
} from './near'
import { argAccount, argIndex, argString, argYocto, field, parseStored } from './args'
import { chargeStorage, emit, ensureVersion } from './storage'
import { createJob, jobExists, parseJobSpec } from './jobs'
import { addLock, lockedBalance, proposalKey } from './votelock'
import { argAmount, canHold, metadataJson, mint, saveMetadata, tokenBalance, totalSupply, transferTokens } from './token'

const DEFAULT_QUORUM_BPS: u64 = 2000
const DEFAULT_THRESHOLD_BPS: u64 = 5000
const DEFAULT_VOTING_PERIOD: u64 = 86400
const DEFAULT_BOND = '1000000000000000000000000' // 1 NEAR
const MAX_VOTING_PERIOD: u64 = 31536000
const MAX_BOND = '1000000000000000000000000000000' // 10^6 NEAR
/** Largest reward_per_round: 10^33 token units (10^15 whole tokens at 18 decimals). */
const MAX_REWARD_PER_ROUND = '1000000000000000000000000000000000'
const MAX_DESCRIPTION = 2000
const MAX_PAGE: u64 = 50
const MAX_INITIAL = 100
const BPS = U128.fromU64(10000)

class Params {
  /** Token units minted per final round of a job, shared pro rata by its contributors (rewards.ts); 0 by default. */
  reward: U128 = new U128()
  constructor (public quorum: u64, public threshold: u64, public period: u64, public bond: U128) {}

  static load (): Params {
    const t = storageReadString('dao/params')
    const p = new Params(DEFAULT_QUORUM_BPS, DEFAULT_THRESHOLD_BPS, DEFAULT_VOTING_PERIOD, U128.parse(DEFAULT_BOND)!)
    if (t != null) p.apply(parseStored(t))
    return p
  }

  /** Overwrites the fields `v` names (`{ quorum_bps?, threshold_bps?, voting_period_blocks?, proposal_bond?, reward_per_round? }`), checked. */
  apply (v: JValue): void {
    if (v.kind != Kind.Obj) panic('params must be an object')
    for (let i = 0; i < v.keys.length; i++) {
      const k = v.keys[i]
      if (k != 'quorum_bps' && k != 'threshold_bps' && k != 'voting_period_blocks' && k != 'proposal_bond' && k != 'reward_per_round') panic('unknown DAO parameter ' + k)
    }
    if (v.get('quorum_bps') != null) {
      this.quorum = argIndex(v, 'quorum_bps')
      if (this.quorum < 1 || this.quorum > 10000) panic('quorum_bps must be 1..10000')
    }
    if (v.get('threshold_bps') != null) {
      this.threshold = argIndex(v, 'threshold_bps')
      if (this.threshold > 9999) panic('threshold_bps must be 0..9999 (yes must exceed it)')
    }
    if (v.get('voting_period_blocks') != null) {
      this.period = argIndex(v, 'voting_period_blocks')
      if (this.period < 1 || this.period > MAX_VOTING_PERIOD) panic('voting_period_blocks must be 1..' + MAX_VOTING_PERIOD.toString())
    }
    if (v.get('proposal_bond') != null) {
      this.bond = argYocto(v, 'proposal_bond')
      if (this.bond.cmp(U128.parse(MAX_BOND)!) > 0) panic('proposal_bond must be at most 10^30 yoctoNEAR (10^6 NEAR)')
    }
    if (v.get('reward_per_round') != null) {
      const rv = field(v, 'reward_per_round')
      if (rv.kind != Kind.Str) panic('reward_per_round must be a decimal string of token units')
      const r = U128.parse(rv.text)
      if (r == null) { panic('reward_per_round must be a decimal string of token units'); return }
      if (r.cmp(U128.parse(MAX_REWARD_PER_ROUND)!) > 0) panic('reward_per_round must be at most 10^33 token units')
      this.reward = r
    }
  }

  json (): string {
    return new ObjWriter().raw('quorum_bps', this.quorum.toString()).raw('threshold_bps', this.threshold.toString())
      .raw('voting_period_blocks', this.period.toString()).str('proposal_bond', this.bond.toString())
      .str('reward_per_round', this.reward.toString()).toString()
  }
}

/** The DAO's `reward_per_round` now: what a round that becomes final now will pay its contributors in all. */
export function rewardPerRound (): U128 { return Params.load().reward }

class Proposal {
  status: string = 'open'
  yes: U128 = new U128()
  no: U128 = new U128()
  votes: u64 = 0
  finalizedAt: i64 = -1
  reason: string = ''
  job: string = ''
  constructor (
    public id: u64, public proposer: string, public kind: string, public description: string, public action: string,
    public bond: U128, public votable: U128, public quorum: u64, public threshold: u64, public createdAt: u64, public endsAt: u64
  ) {}

  static load (id: u64): Proposal | null {
    const t = storageReadString(proposalKey(id))
    if (t == null) return null
    const v = parseStored(t)
    const pr = new Proposal(id, field(v, 'proposer').text, field(v, 'kind').text, field(v, 'description').text,
      field(v, 'action').kind == Kind.Null ? 'null' : rawOf(field(v, 'action')),
      u128Of(v, 'bond'), u128Of(v, 'votable_supply'), <u64>parseInt(field(v, 'quorum_bps').text),
      <u64>parseInt(field(v, 'threshold_bps').text), <u64>parseInt(field(v, 'created_at_block').text),
      <u64>parseInt(field(v, 'voting_ends_at_block').text))
    pr.status = field(v, 'status').text
    pr.yes = u128Of(v, 'yes')
    pr.no = u128Of(v, 'no')
    pr.votes = <u64>parseInt(field(v, 'votes').text)
    const f = field(v, 'finalized_at_block')
    if (f.kind != Kind.Null) pr.finalizedAt = <i64>parseInt(f.text)
    const r = field(v, 'reason')
    if (r.kind != Kind.Null) pr.reason = r.text
    const j = field(v, 'job')
    if (j.kind != Kind.Null) pr.job = j.text
    return pr
  }

  view (): string {
    return new ObjWriter().raw('id', this.id.toString()).str('proposer', this.proposer).str('kind', this.kind)
      .str('description', this.description).raw('action', this.action).str('bond', this.bond.toString())
      .str('status', this.status).str('yes', this.yes.toString()).str('no', this.no.toString()).raw('votes', this.votes.toString())
      .str('votable_supply', this.votable.toString()).raw('quorum_bps', this.quorum.toString()).raw('threshold_bps', this.threshold.toString())
      .raw('created_at_block', this.createdAt.toString()).raw('voting_ends_at_block', this.endsAt.toString())
      .raw('finalized_at_block', this.finalizedAt < 0 ? 'null' : this.finalizedAt.toString())
      .raw('reason', this.reason.length == 0 ? 'null' : quote(this.reason))
      .raw('job', this.job.length == 0 ? 'null' : quote(this.job))
      .toString()
  }

  save (): void { storageWriteString(proposalKey(this.id), this.view()) }

  cast (): U128 { return this.yes.add(this.no) }

  quorumMet (): bool { return this.cast().mulU64(10000).cmp(this.votable.mulU64(this.quorum)) >= 0 }

  /** The outcome once the voting period is over. */
  outcome (): string {
    if (!this.quorumMet()) return 'expired'
    return this.yes.mulU64(10000).cmp(this.cast().mulU64(this.threshold)) > 0 ? 'passed' : 'rejected'
  }

  /**
   * The outcome while voting still runs, if no remaining vote can change it; else ''. Tokens not yet counted are
   * at most the total supply minus the votes cast (counted tokens are locked), so: passed when quorum is met and
   * yes > threshold of the whole supply; rejected when quorum is met and yes cannot exceed the threshold even if
   * every other token voted yes.
   */
  earlyOutcome (): string {
    if (!this.quorumMet()) return ''
    const supply = totalSupply()
    if (this.yes.mulU64(10000).cmp(supply.mulU64(this.threshold)) > 0) return 'passed'
    const rest = supply.cmp(this.no) > 0 ? supply.sub(this.no) : new U128()
    if (rest.mulU64(10000).cmp(supply.mulU64(this.threshold)) <= 0) return 'rejected'
    return ''
  }
}

/** The JSON text of a parsed value (actions are stored as objects and written back unchanged). */
function rawOf (v: JValue): string {
  if (v.kind == Kind.Null) return 'null'
  if (v.kind == Kind.Bool) return v.b ? 'true' : 'false'
  if (v.kind == Kind.Num) return v.text
  if (v.kind == Kind.Str) return quote(v.text)
  const parts: string[] = []
  if (v.kind == Kind.Arr) {
    for (let i = 0; i < v.items.length; i++) parts.push(rawOf(v.items[i]))
    return '[' + parts.join(',') + ']'
  }
  for (let i = 0; i < v.keys.length; i++) parts.push(quote(v.keys[i]) + ':' + rawOf(v.items[i]))
  return '{' + parts.join(',') + '}'
}

function u128Of (v: JValue, key: string): U128 {
  const parsed = U128.parse(field(v, key).text)
  if (parsed == null) { panic('corrupt proposal: ' + key); return new U128() }
  return parsed
}

function proposalCount (): u64 {
  const n = storageReadString('dao/n')
  return n == null ? 0 : <u64>parseInt(n)
}

function requireProposal (args: JValue): Proposal {
  const id = argIndex(args, 'id')
  const pr = Proposal.load(id)
  if (pr == null) { panic('unknown proposal ' + id.toString()); return changetype<Proposal>(0) }
  return pr
}

/**
 * One-time set-up, callable only by the contract account itself (its own key, e.g. right after deploy or by the
 * dev chain's tooling): `{ metadata?: { name?, symbol?, decimals?, icon? }, initial?: [[account, amount]], params? }`.
 * Mints the initial distribution (at most 100 holders; each must be registered through storage_deposit, or be the
 * contract itself, whose balance is the DAO treasury) and sets the DAO parameters.
 */
export function dao_init (): void {
  if (predecessor() != currentAccount()) panic('dao_init can only be called by the contract account itself')
  if (storageHas('dao/init')) panic('dao_init already ran')
  const args = inputJson()
  ensureVersion()
  storageWriteString('dao/init', '1')
  saveMetadata(metadataJson(args.get('metadata')))
  const pv = args.get('params')
  if (pv != null) {
    const params = Params.load()
    params.apply(pv)
    storageWriteString('dao/params', params.json())
  }
  const initial = args.get('initial')
  if (initial != null) {
    if (initial.kind != Kind.Arr || initial.items.length > MAX_INITIAL) panic('initial must be an array of at most 100 [account, amount] pairs')
    for (let i = 0; i < initial.items.length; i++) {
      const pair = initial.items[i]
      if (pair.kind != Kind.Arr || pair.items.length != 2 || pair.items[0].kind != Kind.Str) panic('initial must be an array of [account, amount] pairs')
      const holder = new JValue()
      holder.kind = Kind.Obj
      holder.keys = ['account_id', 'amount']
      holder.items = [pair.items[0], pair.items[1]]
      mint(argAccount(holder, 'account_id'), argAmount(holder, 'amount'), 'dao_init')
    }
  }
  returnString(new ObjWriter().str('total_supply', totalSupply().toString()).raw('params', Params.load().json()).toString())
}

export function dao_params (): void { returnString(Params.load().json()) }

/** The action a proposal of `kind` carries, checked now so that a passed proposal can run it. */
function proposalAction (kind: string, args: JValue): string {
  if (kind == 'text') return 'null'
  if (kind == 'train') {
    const jv = field(args, 'job')
    if (jv.kind != Kind.Obj) panic('a train proposal needs job: the object create_job takes')
    const spec = parseJobSpec(jv)
    if (jobExists(spec.job)) panic('job ' + spec.job + ' already exists')
    return spec.json()
  }
  if (kind == 'params') {
    const pv = field(args, 'params')
    if (pv.kind != Kind.Obj || pv.keys.length == 0) panic('a params proposal needs params: { quorum_bps?, threshold_bps?, voting_period_blocks?, proposal_bond?, reward_per_round? }')
    Params.load().apply(pv) // checks every value
    return rawOf(pv)
  }
  if (kind == 'transfer') {
    const receiver = argAccount(args, 'receiver_id')
    if (receiver == currentAccount()) panic('the treasury cannot pay itself')
    const amount = argAmount(args, 'amount')
    const w = new ObjWriter().str('receiver_id', receiver).str('amount', amount.toString())
    const memo = args.get('memo')
    if (memo != null && memo.kind != Kind.Null) {
      if (memo.kind != Kind.Str || memo.text.length > 256) panic('memo must be a string of at most 256 characters')
      w.str('memo', memo.text)
    }
    return w.toString()
  }
  panic('kind must be one of train, params, transfer, text')
  return 'null'
}

/**
 * `{ kind: "train"|"params"|"transfer"|"text", description, job? | params? | receiver_id?, amount?, memo? }`, with
 * at least the DAO's proposal_bond attached (the whole deposit is the bond). Returns the proposal.
 */
export function dao_propose (): void {
  const args = inputJson()
  const proposer = predecessor()
  const kind = argString(args, 'kind')
  const description = argString(args, 'description')
  if (description.length < 1 || description.length > MAX_DESCRIPTION) panic('description must be 1..2000 characters')
  const action = proposalAction(kind, args)
  const params = Params.load()
  const deposit = attachedDeposit()
  if (deposit.cmp(params.bond) < 0) panic('a proposal needs a bond of ' + params.bond.toString() + ' yoctoNEAR; attached ' + deposit.toString())
  const votable = totalSupply().sub(tokenBalance(currentAccount()))
  if (votable.isZero()) panic('no DAO tokens are held outside the treasury: nobody could vote')
  ensureVersion()
  const before = env.storage_usage()
  const id = proposalCount()
  const now = env.block_index()
  const pr = new Proposal(id, proposer, kind, description, action, deposit, votable, params.quorum, params.threshold, now, now + params.period)
  pr.save()
  storageWriteString('dao/n', (id + 1).toString())
  chargeStorage(proposer, before)
  const view = pr.view()
  emit('dao_proposal_created', view)
  returnString(view)
}

/** `{ id, vote: "yes"|"no" }`: counts the caller's whole token balance and locks it until the vote ends. */
export function dao_vote (): void {
  const args = inputJson()
  const voter = predecessor()
  const pr = requireProposal(args)
  const vote = argString(args, 'vote')
  if (vote != 'yes' && vote != 'no') panic('vote must be "yes" or "no"')
  const now = env.block_index()
  if (pr.status != 'open') panic('proposal ' + pr.id.toString() + ' is ' + pr.status)
  if (now >= pr.endsAt) panic('voting on proposal ' + pr.id.toString() + ' ended at block ' + pr.endsAt.toString())
  if (voter == currentAccount()) panic('the treasury does not vote')
  const key = 'dao/v/' + pr.id.toString() + '/' + voter
  if (storageHas(key)) panic(voter + ' already voted on proposal ' + pr.id.toString())
  const weight = tokenBalance(voter)
  if (weight.isZero()) panic(voter + ' holds no DAO tokens to vote with')
  const before = env.storage_usage()
  storageWriteString(key, new ObjWriter().str('vote', vote).str('weight', weight.toString()).raw('block', now.toString()).toString())
  addLock(voter, pr.id, weight, pr.endsAt)
  if (vote == 'yes') pr.yes = pr.yes.add(weight)
  else pr.no = pr.no.add(weight)
  pr.votes++
  pr.save()
  chargeStorage(voter, before)
  emit('dao_vote', new ObjWriter().raw('id', pr.id.toString()).str('account_id', voter).str('vote', vote).str('weight', weight.toString()).toString())
  returnString(pr.view())
}

/** Runs a passed proposal's action; returns '' or why it could not run (the proposal is then `failed`). */
function execute (pr: Proposal): string {
  if (pr.kind == 'train') {
    const spec = parseJobSpec(parseStored(pr.action))
    if (jobExists(spec.job)) return 'job ' + spec.job + ' already exists'
    // The DAO (this contract) owns the job; the proposer's storage balance pays for its record, as create_job's caller would.
    createJob(spec, currentAccount(), pr.proposer)
    pr.job = spec.job
  } else if (pr.kind == 'transfer') {
    const a = parseStored(pr.action)
    const receiver = field(a, 'receiver_id').text
    const amount = U128.parse(field(a, 'amount').text)!
    const treasury = tokenBalance(currentAccount())
    if (treasury.cmp(amount) < 0) return 'the treasury holds ' + treasury.toString() + ', less than ' + amount.toString()
    if (!canHold(receiver)) return receiver + ' is not registered with room for a token balance'
    const memo = a.get('memo')
    transferTokens(currentAccount(), receiver, amount, memo == null ? 'dao proposal ' + pr.id.toString() : memo.text)
  } else if (pr.kind == 'params') {
    const params = Params.load()
    params.apply(parseStored(pr.action))
    const before = env.storage_usage()
    storageWriteString('dao/params', params.json())
    chargeStorage(pr.proposer, before)
  }
  return ''
}

/** `{ id }`: anyone, once the voting period is over or the outcome is certain. Returns the proposal. */
export function dao_finalize (): void {
  const args = inputJson()
  const pr = requireProposal(args)
  if (pr.status != 'open') panic('proposal ' + pr.id.toString() + ' is already ' + pr.status)
  const now = env.block_index()
  let outcome = now >= pr.endsAt ? pr.outcome() : pr.earlyOutcome()
  if (outcome.length == 0) panic('proposal ' + pr.id.toString() + ' can change until block ' + pr.endsAt.toString() + ' (now ' + now.toString() + ')')
  pr.status = outcome // closes the proposal before its action runs, which releases its vote locks
  pr.finalizedAt = <i64>now
  // The proposer pays for what its proposal's record grows by, as for everything it adds (execute charges the rest).
  let before = env.storage_usage()
  pr.save()
  chargeStorage(pr.proposer, before)
  if (outcome == 'passed') {
    const why = execute(pr)
    if (why.length > 0) { pr.status = 'failed'; pr.reason = why; outcome = 'failed' }
    before = env.storage_usage()
    pr.save()
    chargeStorage(pr.proposer, before)
  }
  if (outcome == 'expired') {
    const kept = loadKept().add(pr.bond)
    storageWrite('dao/kept', kept.toBytes())
  } else if (!pr.bond.isZero()) {
    transfer(pr.proposer, pr.bond)
  }
  const view = pr.view()
  emit('dao_proposal_finalized', new ObjWriter().raw('id', pr.id.toString()).str('status', pr.status)
    .str('yes', pr.yes.toString()).str('no', pr.no.toString())
    .raw('reason', pr.reason.length == 0 ? 'null' : quote(pr.reason)).raw('job', pr.job.length == 0 ? 'null' : quote(pr.job)).toString())
  returnString(view)
}

function loadKept (): U128 {
  const b = storageRead('dao/kept')
  if (b == null) return new U128()
  if (b.byteLength != 16) panic('corrupt dao/kept')
  return U128.load(changetype<usize>(b))
}

export function dao_get_proposal (): void {
  const args = inputJson()
  const pr = Proposal.load(argIndex(args, 'id'))
  returnString(pr == null ? 'null' : pr.view())
}

/** `{ from_index?, limit? }` (at most 50 a page): `{ total, proposals: [proposal] }` in id order. */
export function dao_list_proposals (): void {
  const args = inputJson()
  const from: u64 = args.get('from_index') == null ? 0 : argIndex(args, 'from_index')
  let limit: u64 = args.get('limit') == null ? MAX_PAGE : argIndex(args, 'limit')
  if (limit > MAX_PAGE) limit = MAX_PAGE
  const total = proposalCount()
  const parts: string[] = []
  for (let i = from; i < total && i < from + limit; i++) {
    const pr = Proposal.load(i)
    if (pr == null) { panic('corrupt proposal index'); return }
    parts.push(pr.view())
  }
  returnString(new ObjWriter().raw('total', total.toString()).raw('proposals', '[' + parts.join(',') + ']').toString())
}

/** `{ id, account_id }`: the account's vote on a proposal `{ vote, weight, block }`, or null. */
export function dao_get_vote (): void {
  const args = inputJson()
  const id = argIndex(args, 'id')
  const v = storageReadString('dao/v/' + id.toString() + '/' + argAccount(args, 'account_id'))
  returnString(v == null ? 'null' : v)
}

/** `{ account_id }`: tokens of the account that open votes lock (a decimal string). */
export function dao_locked_balance_of (): void {
  const args = inputJson()
  returnString(quote(lockedBalance(argAccount(args, 'account_id')).toString()))
}
