// Test fixture: a second contract for cross-contract promises in the harness.
// relay({target, method, args}) calls target.method(args) and then its own on_relay callback,
// which returns {"ok": bool, "value": <the callee's return value as a string>}.
import * as env from '../env'
import { inputJson, readRegister, returnString, utf8, currentAccount, panic } from '../near'
import { Kind, ObjWriter } from '../json'
import { U128 } from '../u128'

const GAS_CALL: u64 = 10_000_000_000_000
const GAS_CALLBACK: u64 = 5_000_000_000_000

function p<T> (v: T): u64 { return <u64>changetype<usize>(v) }

export function relay (): void {
  const args = inputJson()
  const t = args.get('target')
  const m = args.get('method')
  const a = args.get('args')
  if (t == null || m == null || a == null || t.kind != Kind.Str || m.kind != Kind.Str || a.kind != Kind.Str) panic('relay needs target, method, args strings')
  const target = utf8(t!.text)
  const method = utf8(m!.text)
  const callArgs = utf8(a!.text)
  const zero = new U128().toBytes()
  const call = env.promise_create(<u64>target.byteLength, p(target), <u64>method.byteLength, p(method), <u64>callArgs.byteLength, p(callArgs), p(zero), GAS_CALL)
  const self = utf8(currentAccount())
  const cb = utf8('on_relay')
  const none = new ArrayBuffer(0)
  const then = env.promise_then(call, <u64>self.byteLength, p(self), <u64>cb.byteLength, p(cb), 0, p(none), p(zero), GAS_CALLBACK)
  env.promise_return(then)
}

export function on_relay (): void {
  if (env.promise_results_count() != 1) panic('on_relay expects one promise result')
  const status = env.promise_result(0, 1)
  const w = new ObjWriter().raw('ok', status == 1 ? 'true' : 'false')
  w.str('value', status == 1 ? String.UTF8.decode(readRegister(1)) : '')
  returnString(w.toString())
}

export function echo (): void {
  env.input(0)
  const b = readRegister(0)
  env.value_return(<u64>b.byteLength, p(b))
}

export function fail (): void { panic('fail was called') }

export function spin (): void {
  // burns gas through host calls until the harness runs out of prepaid gas
  while (true) env.block_index()
}

/** Returns the sha256 of the input as lowercase hex, through the host's sha256. */
export function sha256_hex (): void {
  env.input(0)
  const b = readRegister(0)
  env.sha256(<u64>b.byteLength, p(b), 2)
  const h = Uint8Array.wrap(readRegister(2))
  let s = ''
  for (let i = 0; i < h.length; i++) s += (h[i] < 16 ? '0' : '') + h[i].toString(16)
  returnString('"' + s + '"')
}

/** Throws an AssemblyScript error: NEAR reports it through env.abort with the message and location. */
export function boom (): void {
  throw new Error('boom from AssemblyScript')
}

/** Loops without calling the host: only wasm metering can stop it. */
export function spin_pure (): void {
  let x: u64 = 1
  while (x != 0) x = x * 6364136223846793005 + 1442695040888963407
  returnString(x.toString())
}

/** Calls target.echo twice through promise_batch_* and joins them with promise_and; the callback sees both. */
export function relay_both (): void {
  const args = inputJson()
  const t = args.get('target')
  if (t == null || t.kind != Kind.Str) panic('relay_both needs a target')
  const target = utf8(t!.text)
  const method = utf8('echo')
  const zero = new U128().toBytes()
  const a1 = utf8('"first"')
  const a2 = utf8('"second"')
  const p1 = env.promise_batch_create(<u64>target.byteLength, p(target))
  env.promise_batch_action_function_call(p1, <u64>method.byteLength, p(method), <u64>a1.byteLength, p(a1), p(zero), GAS_CALL)
  const p2 = env.promise_batch_create(<u64>target.byteLength, p(target))
  env.promise_batch_action_function_call(p2, <u64>method.byteLength, p(method), <u64>a2.byteLength, p(a2), p(zero), GAS_CALL)
  const ids = new StaticArray<u64>(2)
  ids[0] = p1
  ids[1] = p2
  const both = env.promise_and(p(ids), 2)
  const self = utf8(currentAccount())
  const cb = utf8('on_both')
  const none = new ArrayBuffer(0)
  env.promise_return(env.promise_then(both, <u64>self.byteLength, p(self), <u64>cb.byteLength, p(cb), 0, p(none), p(zero), GAS_CALLBACK))
}

export function on_both (): void {
  const n = env.promise_results_count()
  const parts: string[] = []
  for (let i: u64 = 0; i < n; i++) {
    if (env.promise_result(i, 1) != 1) panic('a joined promise failed')
    parts.push(String.UTF8.decode(readRegister(1)))
  }
  returnString('[' + parts.join(',') + ']')
}

/**
 * NEP-141 receiver for the token tests: `msg` says what to do. "keep" uses everything (returns "0"),
 * "return:<amount>" returns that unused amount, "panic" fails, "garbage" returns something that is not a U128,
 * "vote:<id>" votes yes on DAO proposal <id> of the token contract with what it holds and returns that vote's
 * result (not an amount, so the token contract tries to refund everything).
 */
export function ft_on_transfer (): void {
  const args = inputJson()
  const m = args.get('msg')
  if (m == null || m.kind != Kind.Str) panic('ft_on_transfer needs msg')
  const msg = m!.text
  if (msg == 'panic') panic('the receiver refused the tokens')
  if (msg == 'keep') { returnString('"0"'); return }
  if (msg == 'garbage') { returnString('{"not":"an amount"}'); return }
  if (msg.startsWith('return:')) { returnString('"' + msg.substring(7) + '"'); return }
  if (msg.startsWith('vote:')) {
    env.predecessor_account_id(0)
    const token = readRegister(0)
    const method = utf8('dao_vote')
    const voteArgs = utf8('{"id":' + msg.substring(5) + ',"vote":"yes"}')
    const zero = new U128().toBytes()
    env.promise_return(env.promise_create(<u64>token.byteLength, p(token), <u64>method.byteLength, p(method), <u64>voteArgs.byteLength, p(voteArgs), p(zero), GAS_CALL))
    return
  }
  panic('unknown msg ' + msg)
}
