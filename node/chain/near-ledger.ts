/** The Ledger on a NEAR network (testnet, mainnet, or any RPC such as the dev chain's) through near-api-js 7. */
import { Account, JsonRpcProvider, KeyPairSigner, type KeyPairString } from 'near-api-js'
import { ContractLedger, DEFAULT_CALL_GAS, LedgerCallError } from './ledger.ts'

export interface NearLedgerOptions {
  rpcUrl: string
  accountId: string
  secretKey: KeyPairString
  contractId: string
}

export class NearLedger extends ContractLedger {
  readonly accountId: string
  readonly contractId: string
  private readonly provider: JsonRpcProvider
  private readonly account: Account

  constructor (opts: NearLedgerOptions) {
    super()
    this.accountId = opts.accountId
    this.contractId = opts.contractId
    this.provider = new JsonRpcProvider({ url: opts.rpcUrl })
    this.account = new Account(opts.accountId, this.provider, KeyPairSigner.fromSecretKey(opts.secretKey))
  }

  protected async call (method: string, args: Record<string, unknown>, deposit: bigint): Promise<unknown> {
    try {
      return await this.account.callFunction({ contractId: this.contractId, methodName: method, args, gas: DEFAULT_CALL_GAS, deposit })
    } catch (err) {
      throw new LedgerCallError(`${method} failed: ${(err as Error).message}`, err)
    }
  }

  protected async view (method: string, args: Record<string, unknown>): Promise<unknown> {
    // provider.callFunction returns the raw string when the result is not JSON; schemas reject it then.
    return await this.provider.callFunction({ contractId: this.contractId, method, args })
  }

  async close (): Promise<void> {}
}
