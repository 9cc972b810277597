// Argument readers shared by the contract modules: each panics with a message naming the argument.
import { U128 } from './u128'
import { JValue, JsonParser, Kind } from './json'
import { panic } from './near'

/** Longest CID accepted, in characters. */
export const MAX_CID = 128


export function field (args: JValue, key: string): JValue {
  const v = args.get(key)
  if (v == null) { panic('missing argument: ' + key); return new JValue() }
  return v
}

export function argString (args: JValue, key: string): string {
  const v = field(args, key)
  if (v.kind != Kind.Str) panic('argument ' + key + ' must be a string')
  return v.text
}

export function optString (args: JValue, key: string): string | null {
  const v = args.get(key)
  if (v == null || v.kind == Kind.Null) return null
  if (v.kind != Kind.Str) panic('argument ' + key + ' must be a string')
  return v.text
}

/** Non-negative integer up to 2^53 - 1 (exact in JavaScript), given as a JSON number or digit string. */
export function argIndex (args: JValue, key: string): u64 {
  const v = field(args, key)
  if (v.kind != Kind.Num && v.kind != Kind.Str) panic('argument ' + key + ' must be an integer')
  const t = v.text
  if (t.length == 0 || t.length > 16) panic('argument ' + key + ' must be an integer below 2^53')
  let n: u64 = 0
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i)
    if (c < 48 || c > 57) panic('argument ' + key + ' must be a non-negative integer')
    n = n * 10 + <u64>(c - 48)
  }
  if (n > 9007199254740991) panic('argument ' + key + ' must be an integer below 2^53')
  return n
}

export function isIdChar (c: i32): bool {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95 || c == 46
}

/** NEAR account id rules: 2..64 chars of [a-z0-9-_.], separators not doubled nor at the ends. */
export function validAccount (s: string): bool {
  if (s.length < 2 || s.length > 64) return false
  let prevSep = true
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (!isIdChar(c)) return false
    const sep = c == 45 || c == 95 || c == 46
    if (sep && prevSep) return false
    prevSep = sep
  }
  return !prevSep
}

export function argAccount (args: JValue, key: string): string {
  const s = argString(args, key)
  if (!validAccount(s)) panic('argument ' + key + ' is not a valid account id')
  return s
}

export function argJobId (args: JValue): string {
  const s = argString(args, 'job')
  if (s.length < 1 || s.length > 64) panic('job id must be 1..64 characters')
  for (let i = 0; i < s.length; i++) if (!isIdChar(s.charCodeAt(i))) panic('job id may hold only [a-z0-9-_.]')
  return s
}

export function argCid (args: JValue, key: string): string {
  const s = argString(args, key)
  if (s.length < 1 || s.length > MAX_CID) panic('argument ' + key + ' must be 1..128 characters')
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
    if (!ok) panic('argument ' + key + ' must be a base-encoded CID')
  }
  return s
}

export function argHex32 (args: JValue, key: string): string {
  const s = argString(args, key)
  if (s.length != 64) panic('argument ' + key + ' must be 64 lowercase hex characters')
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) panic('argument ' + key + ' must be 64 lowercase hex characters')
  }
  return s
}

export function argFloat (args: JValue, key: string): string {
  const v = field(args, key)
  if (v.kind != Kind.Num) panic('argument ' + key + ' must be a number')
  const f = parseFloat(v.text)
  if (!isFinite(f)) panic('argument ' + key + ' must be finite')
  return v.text
}

export function parseStored (text: string): JValue {
  const p = new JsonParser(text)
  const v = p.parseDocument()
  if (v == null) { panic('corrupt state: ' + p.error); return new JValue() }
  return v
}

export function argYocto (args: JValue, key: string): U128 {
  const v = field(args, key)
  if (v.kind != Kind.Str) panic('argument ' + key + ' must be a decimal string of yoctoNEAR')
  const parsed = U128.parse(v.text)
  if (parsed == null) { panic('argument ' + key + ' must be a decimal string of yoctoNEAR'); return new U128() }
  return parsed
}
