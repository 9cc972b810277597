// The DAO token: NEP-141 fungible token with NEP-148 metadata and NEP-297 events in the nep141 format.
//
//   ft/b/<account>  balance, u128 (16 LE bytes); absent means 0 (a balance that reaches 0 is removed)
//   ft/supply       total supply, u128
//   ft/meta         NEP-148 metadata (JSON), written once by dao_init
//
// Holders pay for their balance record through their NEP-145 storage balance, like every other record: it is
// charged when the record appears and credited back when it goes. So a receiver must be registered
// (storage_deposit) with room for its record, or the transfer is refused. The contract's own balance (the DAO
// treasury) is the one exception: the contract pays for that record itself. There is no public mint: tokens
// appear only through `mint`, called by contract logic (dao_init's initial distribution today, rewards later).
import * as env from './env'
import { U128 } from './u128'
import { JValue, JsonParser, Kind, ObjWriter, quote } from './json'
import {
  currentAccount, inputJson, log, panic, predecessor, readRegister, returnString, storageRead, storageRemove,
  storageWrite, storageWriteString, storageReadString, utf8
} from './near'
import { argAccount, argString, field, optString } from './args'
import { BYTE_COST, chargeStorage, loadBalance, requireOneYocto } from './storage'
import { lockedBalance } from './votelock'

/** Bytes a balance record adds to storage beyond its key: 16 value bytes and NEAR's 40 per record. */
const BALANCE_RECORD_EXTRA: u64 = 16 + 40
/** Longest memo or msg kept in logs or forwarded, in characters. */
const MAX_MEMO = 256
const MAX_MSG = 4096
/** Gas kept for ft_resolve_transfer, and the least ft_transfer_call must leave for the receiver. */
const GAS_RESOLVE: u64 = 10_000_000_000_000
const GAS_RECEIVER_MIN: u64 = 20_000_000_000_000
/** Gas ft_transfer_call keeps for its own remaining work after creating the promises. */
const GAS_SELF: u64 = 5_000_000_000_000
const MAX_U128 = '340282366920938463463374607431768211455'

function p<T> (v: T): u64 { return <u64>changetype<usize>(v) }

function loadU128 (key: string): U128 {
  const b = storageRead(key)
  if (b == null) return new U128()
  if (b.byteLength != 16) panic('corrupt u128 at ' + key)
  return U128.load(changetype<usize>(b))
}

export function tokenBalance (account: string): U128 { return loadU128('ft/b/' + account) }
export function totalSupply (): U128 { return loadU128('ft/supply') }

/** A token amount: a decimal string of 1..39 digits that fits in u128, and not zero. */
export function argAmount (args: JValue, key: string): U128 {
  const v = field(args, key)
  if (v.kind != Kind.Str) panic('argument ' + key + ' must be a decimal string (U128)')
  const t = v.text
  if (t.length == 39 && t > MAX_U128) panic('argument ' + key + ' overflows u128')
  const parsed = U128.parse(t)
  if (parsed == null) { panic('argument ' + key + ' must be a decimal string (U128)'); return new U128() }
  if (parsed.isZero()) panic('argument ' + key + ' must be positive')
  return parsed
}

function recordCost (account: string): U128 {
  return BYTE_COST.mulU64(<u64>('ft/b/' + account).length + BALANCE_RECORD_EXTRA)
}

/** Whether `account` can be credited now: the treasury, a holder already, or registered with room for its record. */
export function canHold (account: string): bool {
  if (account == currentAccount() || storageRead('ft/b/' + account) != null) return true
  const bal = loadBalance(account)
  return bal != null && bal.available().cmp(recordCost(account)) >= 0
}

/** Writes `account`'s balance and settles the storage its record adds or frees with that account. */
function writeBalance (account: string, amount: U128): void {
  const before = env.storage_usage()
  if (amount.isZero()) storageRemove('ft/b/' + account)
  else storageWrite('ft/b/' + account, amount.toBytes())
  if (account != currentAccount()) chargeStorage(account, before)
}

function credit (account: string, amount: U128): void {
  if (account != currentAccount() && storageRead('ft/b/' + account) == null && loadBalance(account) == null) {
    panic('receiver ' + account + ' is not registered with the token; call storage_deposit for it first')
  }
  writeBalance(account, tokenBalance(account).add(amount))
}

/** Balance minus the tokens open DAO votes lock. */
export function unlockedBalance (account: string): U128 {
  const bal = tokenBalance(account)
  const locked = lockedBalance(account)
  return bal.cmp(locked) > 0 ? bal.sub(locked) : new U128()
}

function debit (account: string, amount: U128): void {
  const bal = tokenBalance(account)
  if (bal.cmp(amount) < 0) panic(account + ' holds ' + bal.toString() + ' tokens, less than ' + amount.toString())
  const locked = lockedBalance(account)
  if (bal.sub(amount).cmp(locked) < 0) {
    panic(locked.toString() + ' of ' + account + "'s tokens are locked by open DAO votes; it can move at most " + (bal.cmp(locked) > 0 ? bal.sub(locked) : new U128()).toString())
  }
  writeBalance(account, bal.sub(amount))
}

function event (name: string, data: string): void {
  log('EVENT_JSON:{"standard":"nep141","version":"1.0.0","event":' + quote(name) + ',"data":[' + data + ']}')
}

function withMemo (w: ObjWriter, memo: string | null): string {
  if (memo != null) w.str('memo', memo)
  return w.toString()
}

/** Moves `amount` from `from` to `to` (both checked), with an `ft_transfer` event. */
export function transferTokens (from: string, to: string, amount: U128, memo: string | null): void {
  if (from == to) panic('sender and receiver must differ')
  if (amount.isZero()) panic('the amount must be positive')
  debit(from, amount)
  credit(to, amount)
  event('ft_transfer', withMemo(new ObjWriter().str('old_owner_id', from).str('new_owner_id', to).str('amount', amount.toString()), memo))
}

/** Creates `amount` new tokens for `account`. Contract logic only: no method mints on a caller's word. */
export function mint (account: string, amount: U128, memo: string | null): void {
  if (amount.isZero()) panic('the amount must be positive')
  credit(account, amount)
  storageWrite('ft/supply', totalSupply().add(amount).toBytes())
  event('ft_mint', withMemo(new ObjWriter().str('owner_id', account).str('amount', amount.toString()), memo))
}

function burnFrom (account: string, amount: U128, memo: string | null): void {
  storageWrite('ft/supply', totalSupply().sub(amount).toBytes())
  event('ft_burn', withMemo(new ObjWriter().str('owner_id', account).str('amount', amount.toString()), memo))
}

function optMemo (args: JValue): string | null {
  const memo = optString(args, 'memo')
  if (memo != null && memo.length > MAX_MEMO) panic('memo must be at most 256 characters')
  return memo
}

/** NEP-141: `{ receiver_id, amount, memo? }`, exactly 1 yoctoNEAR attached. */
export function ft_transfer (): void {
  requireOneYocto()
  const args = inputJson()
  const receiver = argAccount(args, 'receiver_id')
  const amount = argAmount(args, 'amount')
  transferTokens(predecessor(), receiver, amount, optMemo(args))
}

/**
 * NEP-141: `{ receiver_id, amount, memo?, msg }`, exactly 1 yoctoNEAR. Moves the tokens, calls
 * `receiver.ft_on_transfer({ sender_id, amount, msg })`, then `ft_resolve_transfer`, whose result (the amount the
 * receiver kept) is this call's result.
 */
export function ft_transfer_call (): void {
  requireOneYocto()
  const args = inputJson()
  const sender = predecessor()
  const receiver = argAccount(args, 'receiver_id')
  const amount = argAmount(args, 'amount')
  const memo = optMemo(args)
  const msg = argString(args, 'msg')
  if (msg.length > MAX_MSG) panic('msg must be at most 4096 characters')
  const left = env.prepaid_gas() - env.used_gas()
  if (left < GAS_RECEIVER_MIN + GAS_RESOLVE + GAS_SELF) panic('ft_transfer_call needs at least 35 Tgas of prepaid gas')
  transferTokens(sender, receiver, amount, memo)
  const receiverGas = env.prepaid_gas() - env.used_gas() - GAS_RESOLVE - GAS_SELF
  const zero = new U128().toBytes()
  const to = utf8(receiver)
  const method = utf8('ft_on_transfer')
  const callArgs = utf8(new ObjWriter().str('sender_id', sender).str('amount', amount.toString()).str('msg', msg).toString())
  const call = env.promise_create(<u64>to.byteLength, p(to), <u64>method.byteLength, p(method), <u64>callArgs.byteLength, p(callArgs), p(zero), receiverGas)
  const self = utf8(currentAccount())
  const cb = utf8('ft_resolve_transfer')
  const cbArgs = utf8(new ObjWriter().str('sender_id', sender).str('receiver_id', receiver).str('amount', amount.toString()).toString())
  const then = env.promise_then(call, <u64>self.byteLength, p(self), <u64>cb.byteLength, p(cb), <u64>cbArgs.byteLength, p(cbArgs), p(zero), GAS_RESOLVE)
  env.promise_return(then)
}

/** The unused amount ft_on_transfer returned: a U128 string at most `amount`; anything else, or a failure, is `amount`. */
function unusedAmount (amount: U128): U128 {
  if (env.promise_results_count() != 1) panic('ft_resolve_transfer expects one promise result')
  if (env.promise_result(0, 1) != 1) return amount // the receiver failed: everything goes back
  const raw = readRegister(1)
  const parser = new JsonParser(String.UTF8.decode(raw))
  const v = parser.parseDocument()
  if (v == null || v.kind != Kind.Str) return amount
  const t = v.text
  if (t.length == 39 && t > MAX_U128) return amount
  const unused = U128.parse(t)
  if (unused == null) return amount
  return unused.cmp(amount) < 0 ? unused : amount
}

/**
 * Private callback of ft_transfer_call: `{ sender_id, receiver_id, amount }`. Returns the amount the receiver kept.
 * The refund is at most what the receiver can still move (tokens it spent, or that its own open votes lock, stay:
 * a refund must not carry voted tokens back to vote again). If the sender can no longer hold tokens (it unregistered
 * meanwhile) the refund is burnt, as NEP-141 does for a sender that is gone.
 */
export function ft_resolve_transfer (): void {
  if (predecessor() != currentAccount()) panic('ft_resolve_transfer is private')
  const args = inputJson()
  const sender = argAccount(args, 'sender_id')
  const receiver = argAccount(args, 'receiver_id')
  const amount = argAmount(args, 'amount')
  const unused = unusedAmount(amount)
  let refund = new U128()
  if (!unused.isZero()) {
    const movable = unlockedBalance(receiver)
    refund = unused.cmp(movable) < 0 ? unused : movable
  }
  if (!refund.isZero()) {
    debit(receiver, refund)
    if (canHold(sender)) {
      credit(sender, refund)
      event('ft_transfer', new ObjWriter().str('old_owner_id', receiver).str('new_owner_id', sender).str('amount', refund.toString()).str('memo', 'refund').toString())
    } else {
      burnFrom(receiver, refund, 'refund to ' + sender + ', which can no longer hold tokens')
    }
  }
  returnString(quote(amount.sub(refund).toString()))
}

export function ft_total_supply (): void { returnString(quote(totalSupply().toString())) }

export function ft_balance_of (): void {
  const args = inputJson()
  returnString(quote(tokenBalance(argAccount(args, 'account_id')).toString()))
}

const DEFAULT_NAME = 'NearAI DAO'
const DEFAULT_SYMBOL = 'NEARAI'
const DEFAULT_DECIMALS = 18

/** NEP-148 metadata from dao_init's `metadata` argument (`{ name?, symbol?, decimals?, icon? }`), checked. */
export function metadataJson (m: JValue | null): string {
  let name = DEFAULT_NAME
  let symbol = DEFAULT_SYMBOL
  let decimals = DEFAULT_DECIMALS
  let icon: string | null = null
  if (m != null && m.kind != Kind.Null) {
    if (m.kind != Kind.Obj) panic('metadata must be an object')
    const n = optString(m, 'name')
    if (n != null) name = n
    const s = optString(m, 'symbol')
    if (s != null) symbol = s
    const d = m.get('decimals')
    if (d != null) {
      if (d.kind != Kind.Num || d.text.length > 2 || d.text.includes('.') || d.text.includes('-') || d.text.includes('e')) panic('metadata.decimals must be an integer 0..24')
      decimals = <i32>parseInt(d.text)
      if (decimals > 24) panic('metadata.decimals must be an integer 0..24')
    }
    icon = optString(m, 'icon')
  }
  if (name.length < 1 || name.length > 64) panic('metadata.name must be 1..64 characters')
  if (symbol.length < 1 || symbol.length > 16) panic('metadata.symbol must be 1..16 characters')
  if (icon != null && (icon.length > 4096 || !icon.startsWith('data:'))) panic('metadata.icon must be a data: URL of at most 4096 characters')
  return new ObjWriter().str('spec', 'ft-1.0.0').str('name', name).str('symbol', symbol)
    .raw('icon', icon == null ? 'null' : quote(icon)).raw('reference', 'null').raw('reference_hash', 'null')
    .raw('decimals', decimals.toString()).toString()
}

export function saveMetadata (json: string): void { storageWriteString('ft/meta', json) }

export function ft_metadata (): void {
  const m = storageReadString('ft/meta')
  returnString(m == null ? metadataJson(null) : m)
}
