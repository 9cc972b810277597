// State version, NEP-297 events and NEP-145 storage balances: what every state-changing method of the contract uses.
import * as env from './env'
import { U128 } from './u128'
import { ObjWriter, quote } from './json'
import { attachedDeposit, log, panic, storageRead, storageReadString, storageWrite, storageWriteString } from './near'

export const STATE_VERSION = '1'
/** NEAR's storage price: 10^19 yoctoNEAR per byte (1 NEAR per 100 kB). */
export const BYTE_COST = new U128(10000000000000000000, 0)

/** A round number as 20 zero-padded digits, so round keys sort in round order. */
export function roundKey (round: u64): string {
  const s = round.toString()
  return '00000000000000000000'.substring(0, 20 - s.length) + s
}

export function ensureVersion (): void {
  const v = storageReadString('v')
  if (v == null) storageWriteString('v', STATE_VERSION)
  else if (v != STATE_VERSION) panic('state version ' + v + ' needs a migration')
}

export function emit (event: string, data: string): void {
  log('EVENT_JSON:{"standard":"nearai","version":"1.0.0","event":' + quote(event) + ',"data":[' + data + ']}')
}

// ---------- NEP-145 storage balances ----------

export class StorageBalance {
  constructor (public total: U128, public used: u64) {}
  available (): U128 {
    const locked = BYTE_COST.mulU64(this.used)
    return this.total.cmp(locked) > 0 ? this.total.sub(locked) : new U128()
  }
  json (): string {
    return new ObjWriter().str('total', this.total.toString()).str('available', this.available().toString()).toString()
  }
}

export function loadBalance (account: string): StorageBalance | null {
  const b = storageRead('s/' + account)
  if (b == null) return null
  if (b.byteLength != 24) panic('corrupt storage balance')
  const p = changetype<usize>(b)
  return new StorageBalance(U128.load(p), load<u64>(p + 16))
}

export function saveBalance (account: string, bal: StorageBalance): void {
  const b = new ArrayBuffer(24)
  const p = changetype<usize>(b)
  bal.total.store(p)
  store<u64>(p + 16, bal.used)
  storageWrite('s/' + account, b)
}

/** Charges the bytes added since `before` to `account`, or panics if its deposit does not cover them. */
export function chargeStorage (account: string, before: u64): void {
  const after = env.storage_usage()
  const bal = loadBalance(account)
  if (bal == null) { panic('account ' + account + ' has no storage deposit; call storage_deposit first'); return }
  if (after >= before) bal.used += after - before
  else bal.used = bal.used > before - after ? bal.used - (before - after) : 0
  if (bal.total.cmp(BYTE_COST.mulU64(bal.used)) < 0) {
    panic('insufficient storage balance: ' + account + ' needs ' + BYTE_COST.mulU64(bal.used).toString() + ' yoctoNEAR deposited, has ' + bal.total.toString())
  }
  saveBalance(account, bal)
}

export function requireOneYocto (): void {
  const d = attachedDeposit()
  if (!(d.lo == 1 && d.hi == 0)) panic('requires an attached deposit of exactly 1 yoctoNEAR')
}
