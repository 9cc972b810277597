/** The Ledger on the embedded dev chain: transactions are signed like any NEAR client's and submitted directly. */
import type { KeyPairString } from 'near-api-js'
import { KeyPair } from 'near-api-js'
import type { DevChain } from './dev-chain/chain.ts'
import { signFunctionCall, unb58 } from './dev-chain/transaction.ts'
import { devSecretKey } from './dev-chain/genesis.ts'
import { ContractLedger, DEFAULT_CALL_GAS, LedgerCallError } from './ledger.ts'
import { decodeJson } from './schemas.ts'

export interface DevChainLedgerOptions {
  chain: DevChain
  accountId: string
  /** Defaults to the account's deterministic dev key. */
  secretKey?: KeyPairString
  contractId?: string
  /** Close the chain when the ledger closes. */
  ownsChain?: boolean
}

export class DevChainLedger extends ContractLedger {
  readonly accountId: string
  readonly contractId: string
  readonly chain: DevChain
  private readonly secretKey: KeyPairString
  private readonly publicKey: string
  private readonly ownsChain: boolean

  constructor (opts: DevChainLedgerOptions) {
    super()
    this.chain = opts.chain
    this.accountId = opts.accountId
    this.contractId = opts.contractId ?? opts.chain.genesis.contract.accountId
    this.secretKey = opts.secretKey ?? devSecretKey(opts.accountId)
    this.publicKey = KeyPair.fromString(this.secretKey).getPublicKey().toString()
    this.ownsChain = opts.ownsChain ?? false
  }

  protected async call (method: string, args: Record<string, unknown>, deposit: bigint): Promise<unknown> {
    const nonce = this.chain.viewAccessKey(this.accountId, this.publicKey).nonce + 1n
    const signed = signFunctionCall({
      signerId: this.accountId, secretKey: this.secretKey, receiverId: this.contractId, nonce, blockHash: unb58(this.chain.head.hash),
      calls: [{ methodName: method, args: Buffer.from(JSON.stringify(args)), gas: DEFAULT_CALL_GAS, deposit }]
    })
    const { outcome } = await this.chain.submit(signed)
    if ('Failure' in outcome.status) throw new LedgerCallError(`${method} failed: ${failureMessage(outcome.status.Failure)}`, outcome.status.Failure)
    return decodeJson(Buffer.from(outcome.status.SuccessValue, 'base64'), method)
  }

  protected async view (method: string, args: Record<string, unknown>): Promise<unknown> {
    const { result } = await this.chain.view(this.contractId, method, Buffer.from(JSON.stringify(args)))
    return decodeJson(result, method)
  }

  async close (): Promise<void> { if (this.ownsChain) this.chain.close() }
}

/** The panic message inside NEAR's nested failure object, or the whole object as JSON. */
export function failureMessage (failure: unknown): string {
  const panic = (failure as any)?.ActionError?.kind?.FunctionCallError?.ExecutionError
  return typeof panic === 'string' ? panic : JSON.stringify(failure)
}
