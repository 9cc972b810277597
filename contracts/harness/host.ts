/**
 * The NEAR host environment (`env` imports) for one function call of a compiled contract, as nearcore's
 * VMLogic provides it: registers, context, storage with storage_usage accounting, value_return, panics,
 * logs, hashes, ed25519_verify and promises (recorded here, executed as receipts by the runtime).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { ed25519 } from '@noble/curves/ed25519.js'
import { ContractError } from './errors.ts'
import { GasCounter, HOST_CALL_GAS, BYTE_GAS, TICK_GAS } from './gas.ts'
import { GAS_GLOBAL_EXPORT, START_TICKS } from './meter.ts'

/** Bytes a stored record adds to an account's storage_usage beyond key and value (nearcore's num_extra_bytes_record). */
export const STORAGE_RECORD_OVERHEAD = 40n
const U64_MAX = (1n << 64n) - 1n

/** A contract's key-value state as the host sees it; the runtime decides when writes are committed. */
export interface ContractStorage {
  get: (key: Uint8Array) => Uint8Array | undefined
  set: (key: Uint8Array, value: Uint8Array) => void
  delete: (key: Uint8Array) => void
}

export interface CallContext {
  currentAccountId: string
  signerAccountId: string
  signerPublicKey: Uint8Array
  predecessorAccountId: string
  input: Uint8Array
  blockHeight: bigint
  blockTimestampNs: bigint
  epochHeight: bigint
  accountBalance: bigint
  accountLockedBalance: bigint
  storageUsage: bigint
  attachedDeposit: bigint
  prepaidGas: bigint
  randomSeed: Uint8Array
  isView: boolean
  /** Results of the receipts this call depends on (callbacks). */
  promiseResults: PromiseResult[]
}

export type PromiseResult = { status: 'success', value: Uint8Array } | { status: 'failed' }

export type Action =
  | { type: 'FunctionCall', methodName: string, args: Uint8Array, deposit: bigint, gas: bigint }
  | { type: 'Transfer', deposit: bigint }

/** A promise the call created: a receipt to `receiverId`, or a join of other promises (promise_and). */
export type PromiseRecord =
  | { kind: 'receipt', receiverId: string, actions: Action[], after: number[] }
  | { kind: 'and', members: number[] }

export interface CallOutcome {
  returnData: Uint8Array | undefined
  /** promise_return: the call's result is that promise's result. */
  returnPromise: number | undefined
  logs: string[]
  promises: PromiseRecord[]
  storageUsage: bigint
  balance: bigint
  gasUsed: bigint
}

/** Decodes an AssemblyScript string (UTF-16LE, byte length stored 4 bytes before the pointer). */
function readAsString (mem: Uint8Array, ptr: number): string {
  if (ptr < 4 || ptr > mem.length) return '<invalid string>'
  const len = new DataView(mem.buffer, mem.byteOffset).getUint32(ptr - 4, true)
  if (ptr + len > mem.length) return '<invalid string>'
  return Buffer.from(mem.subarray(ptr, ptr + len)).toString('utf16le')
}

function hex (b: Uint8Array): string { return Buffer.from(b).toString('hex') }

/**
 * Runs `method` of the compiled `module` under `ctx`. Throws ContractError when the call fails;
 * state writes go to `storage` as they happen, so the caller passes an overlay it can drop.
 */
export async function runMethod (module: WebAssembly.Module, method: string, ctx: CallContext, storage: ContractStorage): Promise<CallOutcome> {
  const gas = new GasCounter(ctx.prepaidGas)
  const registers = new Map<bigint, Uint8Array>()
  const logs: string[] = []
  const promises: PromiseRecord[] = []
  let returnData: Uint8Array | undefined
  let returnPromise: number | undefined
  let storageUsage = ctx.storageUsage
  let balance = ctx.accountBalance
  let memory: WebAssembly.Memory | undefined

  const mem = (): Uint8Array => {
    if (memory == null) throw new ContractError('MemoryAccessViolation', 'memory is not exported')
    return new Uint8Array(memory.buffer)
  }
  const read = (ptr: bigint, len: bigint): Uint8Array => {
    const m = mem()
    const p = Number(ptr); const l = Number(len)
    if (p < 0 || l < 0 || p + l > m.length) throw new ContractError('MemoryAccessViolation', 'MemoryAccessViolation')
    gas.charge(BYTE_GAS * len)
    return m.slice(p, p + l)
  }
  const write = (ptr: bigint, data: Uint8Array): void => {
    const m = mem()
    const p = Number(ptr)
    if (p < 0 || p + data.length > m.length) throw new ContractError('MemoryAccessViolation', 'MemoryAccessViolation')
    m.set(data, p)
  }
  const readU128 = (ptr: bigint): bigint => {
    const b = read(ptr, 16n)
    const dv = new DataView(b.buffer)
    return dv.getBigUint64(0, true) | (dv.getBigUint64(8, true) << 64n)
  }
  const writeU128 = (ptr: bigint, v: bigint): void => {
    const b = new Uint8Array(16)
    const dv = new DataView(b.buffer)
    dv.setBigUint64(0, v & U64_MAX, true)
    dv.setBigUint64(8, v >> 64n, true)
    write(ptr, b)
  }
  const readStr = (len: bigint, ptr: bigint): string => {
    const bytes = read(ptr, len)
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    } catch {
      throw new ContractError('GuestPanic', 'BadUTF8')
    }
  }
  const noView = (name: string): void => {
    if (ctx.isView) throw new ContractError('ProhibitedInView', `ProhibitedInView { method_name: "${name}" }`)
  }
  const promiseAt = (idx: bigint): PromiseRecord => {
    const p = promises[Number(idx)]
    if (p == null) throw new ContractError('InvalidPromiseIndex', `InvalidPromiseIndex { promise_idx: ${idx} }`)
    return p
  }
  const receiptAt = (idx: bigint): PromiseRecord & { kind: 'receipt' } => {
    const p = promiseAt(idx)
    if (p.kind !== 'receipt') throw new ContractError('InvalidPromiseIndex', 'cannot add actions to a promise_and')
    return p
  }
  const spend = (amount: bigint): void => {
    if (amount > balance) throw new ContractError('BalanceExceeded', `BalanceExceeded: needs ${amount}, has ${balance}`)
    balance -= amount
  }

  // Ticks the metered module spent since the last refill are charged at every host call and at the end.
  let ticks: WebAssembly.Global | undefined
  let ticksGiven = 0n
  const syncTicks = (): void => {
    if (ticks == null) return
    const spent = ticksGiven - BigInt(ticks.value)
    ticksGiven = gas.remaining / TICK_GAS
    ticks.value = ticksGiven
    gas.charge(spent * TICK_GAS)
    ticksGiven = gas.remaining / TICK_GAS
    ticks.value = ticksGiven
  }
  // Every host function charges HOST_CALL_GAS first: that is what bounds a loop of host calls.
  const host = (f: (...a: any[]) => any) => (...a: any[]) => { syncTicks(); gas.charge(HOST_CALL_GAS); return f(...a) }

  const env: Record<string, (...a: any[]) => any> = {
    read_register: (id: bigint, ptr: bigint) => {
      const r = registers.get(id)
      if (r == null) throw new ContractError('InvalidRegisterId', `InvalidRegisterId { register_id: ${id} }`)
      write(ptr, r)
    },
    register_len: (id: bigint) => registers.get(id)?.length != null ? BigInt(registers.get(id)!.length) : U64_MAX,
    write_register: (id: bigint, len: bigint, ptr: bigint) => { registers.set(id, read(ptr, len)) },
    current_account_id: (r: bigint) => { registers.set(r, Buffer.from(ctx.currentAccountId)) },
    signer_account_id: (r: bigint) => { noView('signer_account_id'); registers.set(r, Buffer.from(ctx.signerAccountId)) },
    signer_account_pk: (r: bigint) => { noView('signer_account_pk'); registers.set(r, Uint8Array.from([0, ...ctx.signerPublicKey])) },
    predecessor_account_id: (r: bigint) => { noView('predecessor_account_id'); registers.set(r, Buffer.from(ctx.predecessorAccountId)) },
    input: (r: bigint) => { registers.set(r, ctx.input) },
    block_index: () => ctx.blockHeight,
    block_timestamp: () => ctx.blockTimestampNs,
    epoch_height: () => ctx.epochHeight,
    storage_usage: () => storageUsage,
    account_balance: (ptr: bigint) => { writeU128(ptr, balance) },
    account_locked_balance: (ptr: bigint) => { writeU128(ptr, ctx.accountLockedBalance) },
    attached_deposit: (ptr: bigint) => { noView('attached_deposit'); writeU128(ptr, ctx.attachedDeposit) },
    prepaid_gas: () => { noView('prepaid_gas'); return ctx.prepaidGas },
    used_gas: () => { noView('used_gas'); return gas.used },
    random_seed: (r: bigint) => { registers.set(r, ctx.randomSeed) },
    sha256: (len: bigint, ptr: bigint, r: bigint) => { registers.set(r, sha256(read(ptr, len))) },
    keccak256: (len: bigint, ptr: bigint, r: bigint) => { registers.set(r, keccak_256(read(ptr, len))) },
    ed25519_verify: (sigLen: bigint, sigPtr: bigint, msgLen: bigint, msgPtr: bigint, pkLen: bigint, pkPtr: bigint) => {
      if (sigLen !== 64n) throw new ContractError('GuestPanic', 'Ed25519VerifyInvalidInput { msg: "invalid signature length" }')
      if (pkLen !== 32n) throw new ContractError('GuestPanic', 'Ed25519VerifyInvalidInput { msg: "invalid public key length" }')
      try {
        return ed25519.verify(read(sigPtr, sigLen), read(msgPtr, msgLen), read(pkPtr, pkLen)) ? 1n : 0n
      } catch { return 0n }
    },
    value_return: (len: bigint, ptr: bigint) => { returnData = read(ptr, len) },
    panic: () => { throw new ContractError('GuestPanic', 'explicit guest panic') },
    panic_utf8: (len: bigint, ptr: bigint) => { throw new ContractError('GuestPanic', readStr(len, ptr)) },
    abort: (msg: number, file: number, line: number, col: number) => {
      const m = mem()
      throw new ContractError('GuestPanic', `${readAsString(m, msg)}, filename: "${readAsString(m, file)}" line: ${line} col: ${col}`)
    },
    log_utf8: (len: bigint, ptr: bigint) => { logs.push(readStr(len, ptr)) },
    log_utf16: (len: bigint, ptr: bigint) => { logs.push(Buffer.from(read(ptr, len)).toString('utf16le')) },
    storage_write: (kl: bigint, kp: bigint, vl: bigint, vp: bigint, r: bigint) => {
      noView('storage_write')
      const key = read(kp, kl); const value = read(vp, vl)
      const old = storage.get(key)
      if (old != null) {
        storageUsage += BigInt(value.length) - BigInt(old.length)
        registers.set(r, old)
      } else {
        storageUsage += BigInt(key.length + value.length) + STORAGE_RECORD_OVERHEAD
      }
      storage.set(key, value)
      return old != null ? 1n : 0n
    },
    storage_read: (kl: bigint, kp: bigint, r: bigint) => {
      const v = storage.get(read(kp, kl))
      if (v == null) return 0n
      registers.set(r, v)
      return 1n
    },
    storage_remove: (kl: bigint, kp: bigint, r: bigint) => {
      noView('storage_remove')
      const key = read(kp, kl)
      const old = storage.get(key)
      if (old == null) return 0n
      storageUsage -= BigInt(key.length + old.length) + STORAGE_RECORD_OVERHEAD
      storage.delete(key)
      registers.set(r, old)
      return 1n
    },
    storage_has_key: (kl: bigint, kp: bigint) => storage.get(read(kp, kl)) != null ? 1n : 0n,
    promise_create: (al: bigint, ap: bigint, fl: bigint, fp: bigint, gl: bigint, gp: bigint, amountPtr: bigint, g: bigint) => {
      noView('promise_create')
      const amount = readU128(amountPtr)
      gas.charge(g); spend(amount)
      promises.push({ kind: 'receipt', receiverId: readStr(al, ap), actions: [{ type: 'FunctionCall', methodName: readStr(fl, fp), args: read(gp, gl), deposit: amount, gas: g }], after: [] })
      return BigInt(promises.length - 1)
    },
    promise_then: (idx: bigint, al: bigint, ap: bigint, fl: bigint, fp: bigint, gl: bigint, gp: bigint, amountPtr: bigint, g: bigint) => {
      noView('promise_then')
      promiseAt(idx)
      const amount = readU128(amountPtr)
      gas.charge(g); spend(amount)
      promises.push({ kind: 'receipt', receiverId: readStr(al, ap), actions: [{ type: 'FunctionCall', methodName: readStr(fl, fp), args: read(gp, gl), deposit: amount, gas: g }], after: [Number(idx)] })
      return BigInt(promises.length - 1)
    },
    promise_and: (idsPtr: bigint, count: bigint) => {
      noView('promise_and')
      const b = read(idsPtr, count * 8n)
      const dv = new DataView(b.buffer)
      const members: number[] = []
      for (let i = 0; i < Number(count); i++) { const id = dv.getBigUint64(i * 8, true); promiseAt(id); members.push(Number(id)) }
      promises.push({ kind: 'and', members })
      return BigInt(promises.length - 1)
    },
    promise_batch_create: (al: bigint, ap: bigint) => {
      noView('promise_batch_create')
      promises.push({ kind: 'receipt', receiverId: readStr(al, ap), actions: [], after: [] })
      return BigInt(promises.length - 1)
    },
    promise_batch_then: (idx: bigint, al: bigint, ap: bigint) => {
      noView('promise_batch_then')
      promiseAt(idx)
      promises.push({ kind: 'receipt', receiverId: readStr(al, ap), actions: [], after: [Number(idx)] })
      return BigInt(promises.length - 1)
    },
    promise_batch_action_function_call: (idx: bigint, fl: bigint, fp: bigint, gl: bigint, gp: bigint, amountPtr: bigint, g: bigint) => {
      noView('promise_batch_action_function_call')
      const p = receiptAt(idx)
      const amount = readU128(amountPtr)
      gas.charge(g); spend(amount)
      p.actions.push({ type: 'FunctionCall', methodName: readStr(fl, fp), args: read(gp, gl), deposit: amount, gas: g })
    },
    promise_batch_action_transfer: (idx: bigint, amountPtr: bigint) => {
      noView('promise_batch_action_transfer')
      const p = receiptAt(idx)
      const amount = readU128(amountPtr)
      spend(amount)
      p.actions.push({ type: 'Transfer', deposit: amount })
    },
    promise_results_count: () => { noView('promise_results_count'); return BigInt(ctx.promiseResults.length) },
    promise_result: (i: bigint, r: bigint) => {
      noView('promise_result')
      const res = ctx.promiseResults[Number(i)]
      if (res == null) throw new ContractError('InvalidPromiseIndex', `InvalidPromiseResultIndex { result_idx: ${i} }`)
      if (res.status === 'failed') return 2n
      registers.set(r, res.value)
      return 1n
    },
    promise_return: (idx: bigint) => { noView('promise_return'); promiseAt(idx); returnPromise = Number(idx) }
  }
  const imports: Record<string, any> = {}
  for (const [name, f] of Object.entries(env)) imports[name] = host(f)

  let instance: WebAssembly.Instance
  try {
    instance = await WebAssembly.instantiate(module, { env: imports })
  } catch (err: any) {
    throw new ContractError('CompilationError', `CompilationError: ${err.message}`)
  }
  memory = instance.exports.memory as WebAssembly.Memory | undefined
  ticks = instance.exports[GAS_GLOBAL_EXPORT] as WebAssembly.Global | undefined
  if (ticks != null) { ticksGiven = BigInt(START_TICKS); syncTicks() }
  const fn = instance.exports[method]
  if (typeof fn !== 'function') throw new ContractError('MethodNotFound', `MethodNotFound: ${method}`)
  try {
    (fn as () => void)()
    syncTicks()
  } catch (err) {
    if (err instanceof ContractError) throw err
    syncTicks() // a trap from the metering check surfaces here as out of gas
    throw new ContractError('WasmTrap', `WasmTrap: ${(err as Error).message}`)
  }
  return { returnData, returnPromise, logs, promises, storageUsage, balance, gasUsed: gas.used }
}

export { hex }
