/**
 * @packageDocumentation
 * Runs compiled NEAR contracts in Node exactly as NEAR calls them: `Runtime` holds accounts, code and
 * state, executes transactions as receipts (with promises and callbacks) and view calls.
 *
 * @example
 * ```ts
 * const rt = new Runtime()
 * rt.createAccount('nearai.test', 10n ** 26n); rt.deploy('nearai.test', wasm)
 * rt.createAccount('alice.test', 10n ** 26n)
 * const out = await rt.executeTransaction({ hash, signerId: 'alice.test', signerPublicKey, receiverId: 'nearai.test',
 *   actions: [{ type: 'FunctionCall', methodName: 'get_job', args, deposit: 0n, gas: 30n * 10n ** 12n }] }, { height: 1n, timestampNs: 0n })
 * ```
 */
export { Runtime, STORAGE_PRICE_PER_BYTE, ACCOUNT_RECORD_BYTES, type AccountState, type TxAction, type TransactionOutcome, type ReceiptOutcome, type ExecutionStatus, type BlockContext } from './runtime.ts'
export { runMethod, STORAGE_RECORD_OVERHEAD, type CallContext, type CallOutcome, type Action, type PromiseResult } from './host.ts'
export { ContractError, type ContractErrorKind } from './errors.ts'
export { GasCounter, DEFAULT_PREPAID_GAS, HOST_CALL_GAS, TICK_GAS } from './gas.ts'
export { inspectWasm, type WasmReport } from './wasm-inspect.ts'
export { meterWasm, GAS_GLOBAL_EXPORT } from './meter.ts'
