import assert from 'node:assert/strict'
import {
  CheckpointAttester, DevChain, DevChainLedger, LedgerCallError, isTransientChainError, ledgerConfigFrom,
  type AttestOutcome, type CheckpointAttestationInput, type Ledger
} from '../../node/chain/index.ts'
import { contributionsRoot } from '../../protocol/contributions.ts'
import { NodeConfig } from '../../node/config/schema.ts'
import { ConfigError } from '../../node/config/load.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { devGenesis, hex32 } from './helpers.ts'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const peer = (i: number): string => '12D3KooW' + B58[i % 58] + 'y'.repeat(43)
const contributions = [{ peer: peer(3), samples: 640 }, { peer: peer(1), samples: 512 }, { peer: peer(2), samples: 128 }]
const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

const input = (round: number, over: Partial<CheckpointAttestationInput> = {}): CheckpointAttestationInput =>
  ({ round, checkpointCid: CID, weightsSha256: hex32('a'), contributions, evalLoss: 0.42, ...over })

/** A ledger that behaves like `base` except for the methods given. */
function withOverrides (base: Ledger, over: Partial<Ledger>): Ledger {
  return Object.assign(Object.create(base) as Ledger, over)
}

function expectOutcome<K extends AttestOutcome['outcome']> (o: AttestOutcome, kind: K): Extract<AttestOutcome, { outcome: K }> {
  assert.equal(o.outcome, kind, JSON.stringify(o, (_k, v) => v instanceof Error ? v.message : v))
  return o as Extract<AttestOutcome, { outcome: K }>
}

describe('CheckpointAttester on the dev chain', function () {
  this.timeout(60_000)
  let chain: DevChain
  const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })
  const attester = (accountId: string | Ledger, job: string, extra: { sleep?: (ms: number) => Promise<void> } = {}): CheckpointAttester =>
    new CheckpointAttester({ ledger: typeof accountId === 'string' ? as(accountId) : accountId, job, logger: silentLogger(), sleep: extra.sleep ?? (async () => {}) })

  before(async () => {
    chain = await DevChain.open({ genesis: await devGenesis() })
    const owner = as('alice.test')
    await owner.storageDeposit()
    await owner.createJob({ job: 'auto', specCid: CID, evalCid: CID, validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
    await owner.createJob({ job: 'solo', specCid: CID, evalCid: CID, validators: ['validator-3.test'], threshold: 1 })
  })

  after(() => { chain?.close() })

  it('two validators attest the same round: the anchor is final with both, over the contributions root and total', async () => {
    const root = contributionsRoot('auto', 5, contributions)
    assert.equal(await as('validator-1.test').storageBalanceOf(), null)
    const first = expectOutcome(await attester('validator-1.test', 'auto').attest(input(5)), 'attested')
    assert.equal(first.final, false)
    assert.equal(first.contributionsRoot, root)
    assert.notEqual(await as('validator-1.test').storageBalanceOf(), null, 'the attester made the storage deposit')

    const second = expectOutcome(await attester('validator-2.test', 'auto').attest(input(5, { contributions: [...contributions].reverse() })), 'attested')
    assert.equal(second.final, true)
    assert.deepEqual(second.anchors.final?.attesters, ['validator-1.test', 'validator-2.test'])
    assert.equal(second.anchors.final?.contributions_root, root)
    // The total the reward shares divide by: the samples under the root, the same from either order.
    const total = contributions.reduce((n, c) => n + c.samples, 0)
    assert.deepEqual([first.contributionsTotal, second.contributionsTotal, second.anchors.final?.contributions_total], [total, total, total])
    assert.equal(second.anchors.final?.checkpoint_cid, CID)
    assert.equal((await as('alice.test').latestAnchor('auto'))?.round, 5)
  })

  it('does nothing for an account outside the validator set', async () => {
    const before = chain.head.height
    const a = attester('carol.test', 'auto')
    expectOutcome(await a.attest(input(6)), 'not-validator')
    expectOutcome(await a.attest(input(7)), 'not-validator')
    assert.equal(chain.head.height, before, 'no transaction was sent')
    assert.equal(await as('carol.test').storageBalanceOf(), null)
    assert.deepEqual(await as('alice.test').getAttestations('auto', 6), [])
  })

  it('reports an unknown job, and finds the job once it is created', async () => {
    const a = attester('validator-3.test', 'later')
    expectOutcome(await a.attest(input(0)), 'unknown-job')
    await as('alice.test').createJob({ job: 'later', specCid: CID, evalCid: CID, validators: ['validator-3.test'], threshold: 1 })
    assert.equal(expectOutcome(await a.attest(input(0)), 'attested').final, true)
  })

  it('treats a second attestation of a round as done, and says whether the claim was the same', async () => {
    const a = attester('validator-3.test', 'solo')
    expectOutcome(await a.attest(input(1)), 'attested')
    const again = expectOutcome(await a.attest(input(1)), 'already')
    assert.equal(again.sameClaim, true)
    assert.equal(again.final, true)
    assert.equal(again.anchors?.final?.checkpoint_cid, CID)
    const other = expectOutcome(await attester('validator-3.test', 'solo').attest(input(1, { evalLoss: 0.5 })), 'already')
    assert.equal(other.sameClaim, false)
  })

  it('attests queued rounds in the background, one at a time in round order, and drains', async () => {
    const base = as('validator-3.test')
    const seen: number[] = []
    let inFlight = 0
    const ledger = withOverrides(base, {
      attest: async (i) => {
        assert.equal(++inFlight, 1, 'one attestation at a time')
        seen.push(i.round)
        try { return await base.attest(i) } finally { inFlight-- }
      }
    })
    const a = attester(ledger, 'solo')
    const outcomes = [10, 14, 12, 11, 13].map(r => a.attestInBackground(input(r)))
    assert.ok(a.pending > 0, 'attestInBackground returns before the attestation is done')
    await a.drain()
    assert.equal(a.pending, 0)
    assert.deepEqual(seen, [10, 11, 12, 13, 14])
    for (const o of await Promise.all(outcomes)) assert.equal(expectOutcome(o, 'attested').final, true)
    // the queue starts again after a drain
    const late = await a.attestInBackground(input(15))
    expectOutcome(late, 'attested')
    await a.drain()
  })

  it('retries transient failures with backoff, and never throws on permanent ones', async () => {
    const base = as('validator-3.test')
    const waits: number[] = []
    const sleep = async (ms: number): Promise<void> => { waits.push(ms) }
    let failures = 2
    const flaky = withOverrides(base, {
      attest: async (i) => {
        if (failures-- > 0) throw new LedgerCallError('attest failed: fetch failed', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3030'), { code: 'ECONNREFUSED' }))
        return await base.attest(i)
      }
    })
    expectOutcome(await attester(flaky, 'solo', { sleep }).attest(input(20)), 'attested')
    assert.deepEqual(waits, [500, 1000])

    waits.length = 0
    const down = withOverrides(base, { getJob: async () => { throw new TypeError('fetch failed') } })
    const failed = expectOutcome(await attester(down, 'solo', { sleep }).attest(input(21)), 'failed')
    assert.match(failed.error.message, /fetch failed/)
    assert.deepEqual(waits, [500, 1000, 2000], 'four tries in all')

    waits.length = 0
    const panics = withOverrides(base, { attest: async () => { throw new LedgerCallError('attest failed: Smart contract panicked: argument checkpoint_cid must be a base-encoded CID') } })
    expectOutcome(await attester(panics, 'solo', { sleep }).attest(input(22)), 'failed')
    assert.deepEqual(waits, [], 'a contract panic is not retried')

    const real = attester('validator-3.test', 'solo', { sleep })
    const dup = expectOutcome(await real.attest(input(23, { contributions: [{ peer: peer(1), samples: 1 }, { peer: peer(1), samples: 2 }] })), 'failed')
    assert.match(dup.error.message, /more than once/)
    expectOutcome(await real.attest(input(24, { checkpointCid: 'not a cid!' })), 'failed')
    assert.deepEqual(await base.getAttestations('solo', 23), [])
    assert.deepEqual(waits, [], 'the chain\'s own rejection is not retried')
  })

  it('tops the storage deposit up when it runs low', async () => {
    const base = as('validator-3.test')
    let deposits = 0
    const counting = withOverrides(base, { storageDeposit: async (amount, account) => { deposits++; return await base.storageDeposit(amount, account) } })
    const before = BigInt((await base.storageBalanceOf())!.available)
    const a = new CheckpointAttester({ ledger: counting, job: 'solo', logger: silentLogger(), minStorageAvailable: before + 1n, storageDeposit: 10n ** 22n })
    expectOutcome(await a.attest(input(30)), 'attested')
    assert.equal(deposits, 1)
    const b = new CheckpointAttester({ ledger: counting, job: 'solo', logger: silentLogger(), minStorageAvailable: 1n })
    expectOutcome(await b.attest(input(31)), 'attested')
    assert.equal(deposits, 1, 'no deposit while enough is available')
  })
})

describe('isTransientChainError', () => {
  it('tells network trouble from contract panics', () => {
    assert.equal(isTransientChainError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), true)
    assert.equal(isTransientChainError(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'UND_ERR_CONNECT_TIMEOUT' }) })), true)
    assert.equal(isTransientChainError(new LedgerCallError('attest failed: request timed out', new Error('Transaction timed out'))), true)
    assert.equal(isTransientChainError(new LedgerCallError('attest failed: validator-1.test already attested round 3 of job j')), false)
    assert.equal(isTransientChainError(new LedgerCallError('attest failed: {"ActionError":{}}', { ActionError: {} })), false)
    assert.equal(isTransientChainError(new LedgerCallError('attest failed: Smart contract panicked: x', new Error('network'))), false)
    assert.equal(isTransientChainError('fetch failed'), false)
  })
})

describe('ledgerConfigFrom', () => {
  const chainConfig = (chain: Record<string, unknown>): NodeConfig['chain'] => NodeConfig.parse({ chain }).chain

  it('defaults to the embedded dev chain and maps each network', () => {
    assert.deepEqual(NodeConfig.parse({}).chain, { network: 'dev', attest: true })
    assert.deepEqual(ledgerConfigFrom(chainConfig({ accountId: 'validator-1.test' }), '/h'), { network: 'dev', home: '/h', accountId: 'validator-1.test', contractId: 'nearai.test' })
    assert.deepEqual(ledgerConfigFrom(chainConfig({ attest: false }), '/h'), { network: 'dev', home: '/h', accountId: 'alice.test', contractId: 'nearai.test' })
    assert.deepEqual(ledgerConfigFrom(chainConfig({ network: 'testnet', accountId: 'me.testnet', contractId: 'nearai.testnet' }), '/h'),
      { network: 'testnet', accountId: 'me.testnet', contractId: 'nearai.testnet', rpcUrl: undefined, credentialsFile: undefined })
    assert.deepEqual(ledgerConfigFrom(chainConfig({ network: 'custom', accountId: 'v.test', contractId: 'nearai.test', rpcUrl: 'http://127.0.0.1:3030', credentialsFile: '/k.json' }), '/h'),
      { network: 'custom', accountId: 'v.test', contractId: 'nearai.test', rpcUrl: 'http://127.0.0.1:3030', credentialsFile: '/k.json' })
  })

  it('names the missing setting', () => {
    const fails = (chain: Record<string, unknown>, re: RegExp): void => { assert.throws(() => ledgerConfigFrom(chainConfig(chain), '/h'), (e: Error) => e instanceof ConfigError && re.test(e.message)) }
    fails({}, /chain\.accountId is required to attest/)
    fails({ network: 'mainnet', contractId: 'nearai.near', attest: false }, /chain\.accountId is required/)
    fails({ network: 'testnet', accountId: 'me.testnet' }, /chain\.contractId is required/)
    fails({ network: 'custom', accountId: 'me.test', contractId: 'c.test' }, /chain\.rpcUrl is required/)
    fails({ accountId: 'v.test', rpcUrl: 'http://127.0.0.1:3030' }, /"custom"/)
    assert.throws(() => NodeConfig.parse({ chain: { network: 'betanet' } }))
    assert.throws(() => NodeConfig.parse({ chain: { rpcUrl: 'ftp://x' } }))
    assert.throws(() => NodeConfig.parse({ chain: { attest: true, extra: 1 } }))
  })
})
