import { readFileSync } from 'node:fs'
import { sha256 } from '@noble/hashes/sha2.js'
import { ensureContractBuilt, RELAY_FIXTURE_WASM } from '../../contracts/build.ts'
import { Runtime, type TransactionOutcome } from '../../contracts/harness/index.ts'

export const NEAR = 10n ** 24n
export const TGAS = 10n ** 12n
export const CONTRACT = 'nearai.test'

let counter = 0

export async function contractWasm (): Promise<{ main: Uint8Array, relay: Uint8Array }> {
  const main = readFileSync(await ensureContractBuilt())
  return { main, relay: readFileSync(RELAY_FIXTURE_WASM) }
}

export class CallFailed extends Error {
  override name = 'CallFailed'
  constructor (readonly outcome: TransactionOutcome) {
    super(JSON.stringify((outcome.status as any).Failure))
  }
}

/** A runtime with the contract at nearai.test and funded accounts, plus call/view helpers. */
export async function world (accounts: string[] = ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'eve.test']): Promise<{
  rt: Runtime
  call: (signer: string, method: string, args: unknown, opts?: { deposit?: bigint, gas?: bigint, receiver?: string }) => Promise<{ value: any, outcome: TransactionOutcome }>
  view: (method: string, args: unknown, receiver?: string) => Promise<any>
  /** Lets `n` empty blocks pass (each call otherwise lands in the next block). */
  skipBlocks: (n: number) => void
  /** The height the next call lands in. */
  nextHeight: () => bigint
}> {
  const { main, relay } = await contractWasm()
  const rt = new Runtime()
  rt.createAccount(CONTRACT, 100n * NEAR)
  rt.deploy(CONTRACT, main)
  rt.createAccount('relay.test', 100n * NEAR)
  rt.deploy('relay.test', relay)
  rt.createAccount('echo.test', 100n * NEAR)
  rt.deploy('echo.test', relay)
  for (const a of accounts) rt.createAccount(a, 1000n * NEAR)
  let height = 1n
  const call = async (signer: string, method: string, args: unknown, opts: { deposit?: bigint, gas?: bigint, receiver?: string } = {}) => {
    const outcome = await rt.executeTransaction({
      hash: sha256(Buffer.from(`tx-${counter++}`)),
      signerId: signer,
      signerPublicKey: new Uint8Array(32),
      receiverId: opts.receiver ?? CONTRACT,
      actions: [{ type: 'FunctionCall', methodName: method, args: Buffer.from(JSON.stringify(args)), deposit: opts.deposit ?? 0n, gas: opts.gas ?? 100n * TGAS }]
    }, { height: height++, timestampNs: height * 1_000_000_000n })
    if (!('SuccessValue' in outcome.status)) throw new CallFailed(outcome)
    const text = Buffer.from(outcome.status.SuccessValue, 'base64').toString('utf8')
    return { value: text === '' ? undefined : JSON.parse(text), outcome }
  }
  const view = async (method: string, args: unknown, receiver = CONTRACT) => {
    const { result } = await rt.view(receiver, method, Buffer.from(JSON.stringify(args)), { height, timestampNs: 0n })
    return JSON.parse(Buffer.from(result).toString('utf8'))
  }
  return { rt, call, view, skipBlocks: (n: number) => { height += BigInt(n) }, nextHeight: () => height }
}

export const hex32 = (c: string): string => c.repeat(64).slice(0, 64)

export function anchorArgs (job: string, round: number, cid = 'bafyckpt1', loss = 0.5): Record<string, unknown> {
  return { job, round, checkpoint_cid: cid, weights_sha256: hex32('a'), contributions_root: hex32('b'), contributions_total: 100, eval_loss: loss }
}

/** NEP-297 events of a transaction (every receipt's logs, in order), optionally of one standard. */
export function eventLogs (outcome: TransactionOutcome, standard?: string): Array<{ standard: string, version: string, event: string, data: any[] }> {
  return outcome.receipts.flatMap(r => r.logs).filter(l => l.startsWith('EVENT_JSON:'))
    .map(l => JSON.parse(l.slice('EVENT_JSON:'.length))).filter(e => standard == null || e.standard === standard)
}

/**
 * A world whose holders are registered (storage_deposit of 0.1 NEAR each) and whose DAO the contract account
 * initialised with `initial` balances (the contract's own entry is the treasury) and `params`.
 */
export async function daoWorld (initial: Array<[string, bigint]>, params: Record<string, unknown> = {}, accounts?: string[]): Promise<Awaited<ReturnType<typeof world>> & { init: TransactionOutcome }> {
  const w = await world(accounts)
  for (const [a] of initial) if (a !== CONTRACT) await w.call(a, 'storage_deposit', {}, { deposit: NEAR / 10n })
  const { outcome } = await w.call(CONTRACT, 'dao_init', { initial: initial.map(([a, n]) => [a, n.toString()]), params })
  return { ...w, init: outcome }
}
