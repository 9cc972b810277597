import assert from 'node:assert/strict'
import { ContractLedger } from '../../node/chain/ledger.ts'

/** The shared contract layer over call/view primitives that never answer (a hung RPC). */
class HungLedger extends ContractLedger {
  readonly accountId = 'alice.test'
  readonly contractId = 'nearai.test'
  calls = 0
  protected async call (): Promise<unknown> { this.calls++; return await new Promise(() => {}) }
  protected async view (): Promise<unknown> { this.calls++; return await new Promise(() => {}) }
  async close (): Promise<void> {}
}

describe('Ledger calls take an AbortSignal', () => {
  it('an abort releases a call the chain never answers; an aborted signal sends nothing', async () => {
    const ledger = new HungLedger()
    const controller = new AbortController()
    setTimeout(() => { controller.abort(new Error('node stopping')) }, 20)
    await assert.rejects(ledger.getJob('job', { signal: controller.signal }), /node stopping/)
    await assert.rejects(ledger.attest({ job: 'job', round: 0, checkpointCid: 'c', weightsSha256: 'h', contributionsRoot: 'r', contributionsTotal: 64, evalLoss: 0 }, { signal: controller.signal }), /node stopping/)
    await assert.rejects(ledger.storageBalanceOf(undefined, { signal: controller.signal }), /node stopping/)
    assert.equal(ledger.calls, 1, 'only the call made before the abort reached the chain')
  })
})
