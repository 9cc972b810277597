import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ContractLedger, DevChain, DevChainLedger, LedgerCallError, openLedger, readCredentials, credentialsPath, devSecretKey } from '../../node/chain/index.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { devGenesis, hex32, steppingClock, tempDir } from './helpers.ts'

const claim = (cid: string) => ({ job: 'led', round: 4, checkpointCid: cid, weightsSha256: hex32('c'), contributionsRoot: hex32('d'), contributionsTotal: 64, evalLoss: 1.5 })

describe('Ledger on the embedded dev chain', () => {
  it('creates a job, collects attestations to a final anchor, and keeps it across a reopen', async () => {
    const tmp = tempDir()
    try {
      const owner = await openLedger({ network: 'dev', home: tmp.dir, accountId: 'alice.test' })
      const chain = (owner as DevChainLedger).chain
      const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })
      await owner.storageDeposit()
      await owner.createJob({ job: 'led', specCid: 'bafyspec', evalCid: 'bafyeval', validators: ['validator-1.test', 'validator-2.test', 'validator-3.test'], threshold: 2 })
      for (const v of ['validator-1.test', 'validator-2.test', 'validator-3.test']) await as(v).storageDeposit()
      await as('validator-1.test').attest(claim('bafyA'))
      await as('validator-2.test').attest(claim('bafyB'))
      assert.equal(await owner.latestAnchor('led'), null)
      const r = await as('validator-3.test').attest(claim('bafyA'))
      assert.equal(r.final?.checkpoint_cid, 'bafyA')
      assert.deepEqual(r.dissent.map(d => [d.validator, d.checkpoint_cid]), [['validator-2.test', 'bafyB']], 'the outvoted validator is listed as dissent')
      assert.equal((await owner.getJob('led'))?.eval_cid, 'bafyeval')
      await assert.rejects(as('validator-3.test').attest(claim('bafyA')), LedgerCallError)
      assert.equal((await owner.getAttestations('led', 4)).length, 3)
      await owner.close()

      const again = await openLedger({ network: 'dev', home: tmp.dir, accountId: 'alice.test' })
      assert.equal((await again.latestAnchor('led'))?.checkpoint_cid, 'bafyA')
      assert.equal((await again.getJob('led'))?.latest_final_round, 4)
      assert.equal((await again.getAnchor('led', 4))?.candidates.length, 2)
      assert.equal((await again.getAnchor('led', 4))?.dissent[0]?.validator, 'validator-2.test', 'dissent survives a reopen (replayed from the journal)')
      await again.close()
    } finally { tmp.remove() }
  })

  it('rejects malformed chain results with InvalidMessageError', async () => {
    class Fake extends ContractLedger {
      readonly accountId = 'a.test'
      readonly contractId = 'c.test'
      constructor (private readonly reply: unknown) { super() }
      protected async call (): Promise<unknown> { return this.reply }
      protected async view (): Promise<unknown> { return this.reply }
      async close (): Promise<void> {}
    }
    await assert.rejects(new Fake({ job: 'x', owner: 'a.test' }).getJob('x'), InvalidMessageError)
    await assert.rejects(new Fake('not json').latestAnchor('x'), InvalidMessageError)
    await assert.rejects(new Fake([{ validator: 'v.test', checkpoint_cid: 'c', weights_sha256: 'zz', contributions_root: hex32('a'), eval_loss: 1 }]).getAttestations('x', 1), InvalidMessageError)
    assert.equal(await new Fake(null).getJob('x'), null)
  })

  it('advances block timestamps from the injected clock', async () => {
    const chain = await DevChain.open({ genesis: await devGenesis(), now: steppingClock(2_000_000_000_000) })
    const l = new DevChainLedger({ chain, accountId: 'bob.test' })
    await l.storageDeposit()
    assert.equal(chain.head.timestampMs, 2_000_000_001_000)
    assert.equal(chain.head.height, 1n)
  })

  it('reads near-cli credentials files', () => {
    const tmp = tempDir()
    try {
      const path = credentialsPath('testnet', 'me.testnet', tmp.dir)
      mkdirSync(join(tmp.dir, 'testnet'), { recursive: true })
      writeFileSync(path, JSON.stringify({ account_id: 'me.testnet', public_key: 'ed25519:x', private_key: devSecretKey('me.testnet') }))
      assert.deepEqual(readCredentials(path), { accountId: 'me.testnet', secretKey: devSecretKey('me.testnet') })
      writeFileSync(path, JSON.stringify({ account_id: 'me.testnet' }))
      assert.throws(() => readCredentials(path), InvalidMessageError)
    } finally { tmp.remove() }
  })
})
