// Thin wrappers over the host functions: registers to strings/bytes, storage by string key, panics, logs.
import * as env from './env'
import { U128 } from './u128'
import { JsonParser, JValue, Kind } from './json'

const REG: u64 = 0

function ptr<T> (v: T): u64 { return <u64>changetype<usize>(v) }

export function readRegister (reg: u64): ArrayBuffer {
  const len = env.register_len(reg)
  if (len == 0xFFFFFFFFFFFFFFFF) return new ArrayBuffer(0)
  const buf = new ArrayBuffer(<i32>len)
  env.read_register(reg, ptr(buf))
  return buf
}

export function utf8 (s: string): ArrayBuffer { return String.UTF8.encode(s) }

export function panic (msg: string): void {
  const b = utf8(msg)
  env.panic_utf8(<u64>b.byteLength, ptr(b))
  unreachable()
}

export function log (msg: string): void {
  const b = utf8(msg)
  env.log_utf8(<u64>b.byteLength, ptr(b))
}

export function returnString (s: string): void {
  const b = utf8(s)
  env.value_return(<u64>b.byteLength, ptr(b))
}

export function predecessor (): string { env.predecessor_account_id(REG); return String.UTF8.decode(readRegister(REG)) }
export function currentAccount (): string { env.current_account_id(REG); return String.UTF8.decode(readRegister(REG)) }

export function attachedDeposit (): U128 {
  const b = new ArrayBuffer(16)
  env.attached_deposit(ptr(b))
  return U128.load(changetype<usize>(b))
}

/** The call's arguments as a JSON object; an empty input counts as `{}`. */
export function inputJson (): JValue {
  env.input(REG)
  const raw = readRegister(REG)
  const text = raw.byteLength == 0 ? '{}' : String.UTF8.decode(raw)
  const p = new JsonParser(text)
  const v = p.parseDocument()
  if (v == null) { panic('invalid JSON arguments: ' + p.error); return new JValue() }
  if (v.kind != Kind.Obj) panic('arguments must be a JSON object')
  return v
}

export function storageRead (key: string): ArrayBuffer | null {
  const k = utf8(key)
  if (env.storage_read(<u64>k.byteLength, ptr(k), REG) == 0) return null
  return readRegister(REG)
}

export function storageReadString (key: string): string | null {
  const v = storageRead(key)
  return v == null ? null : String.UTF8.decode(v)
}

export function storageWrite (key: string, value: ArrayBuffer): void {
  const k = utf8(key)
  env.storage_write(<u64>k.byteLength, ptr(k), <u64>value.byteLength, ptr(value), REG)
}

export function storageWriteString (key: string, value: string): void { storageWrite(key, utf8(value)) }

export function storageRemove (key: string): bool {
  const k = utf8(key)
  return env.storage_remove(<u64>k.byteLength, ptr(k), REG) == 1
}

export function storageHas (key: string): bool {
  const k = utf8(key)
  return env.storage_has_key(<u64>k.byteLength, ptr(k)) == 1
}

/** Sends `amount` to `to` in a fresh promise; NEAR executes it after this call. */
export function transfer (to: string, amount: U128): void {
  const a = utf8(to)
  const id = env.promise_batch_create(<u64>a.byteLength, ptr(a))
  const amt = amount.toBytes()
  env.promise_batch_action_transfer(id, ptr(amt))
}
