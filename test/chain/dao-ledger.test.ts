/**
 * The DAO through the node's Ledger on the embedded dev chain: the contract account initialises the token,
 * holders transfer and vote, a passed train proposal puts an active job on chain.
 */
import assert from 'node:assert/strict'
import { DevChain, DevChainLedger, LedgerCallError } from '../../node/chain/index.ts'
import { devGenesis } from './helpers.ts'

const NEAR = 10n ** 24n
const CONTRACT = 'nearai.test'
const JOB = { job: 'dao-job', specCid: 'bafyspec', evalCid: 'bafyeval', validators: ['validator-1.test', 'validator-2.test'], threshold: 2, trainerBondYocto: NEAR, unbondingBlocks: 5 }

describe('the DAO through the Ledger on the dev chain', function () {
  this.timeout(60_000)
  let chain: DevChain
  const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })

  before(async () => {
    chain = await DevChain.open({ genesis: await devGenesis() })
    for (const a of ['alice.test', 'bob.test', 'carol.test']) await as(a).storageDeposit()
  })
  after(() => { chain.close() })

  it('dao_init by the contract account, ft_transfer, a train proposal voted through and its job active on chain', async () => {
    await assert.rejects(as('alice.test').daoInit({ initial: [['alice.test', 1n]] }), (e: Error) => e instanceof LedgerCallError && /only be called by the contract account itself/.test(e.message))
    const init = await as(CONTRACT).daoInit({ initial: [['alice.test', 600n], ['bob.test', 400n], [CONTRACT, 100n]], params: { quorumBps: 5000, votingPeriodBlocks: 50, proposalBondYocto: NEAR } })
    assert.deepEqual([init.total_supply, init.params], ['1100', { quorum_bps: 5000, threshold_bps: 5000, voting_period_blocks: 50, proposal_bond: NEAR.toString() }])
    assert.deepEqual(await as('carol.test').daoParams(), init.params)

    await as('alice.test').ftTransfer('carol.test', 100n, 'welcome')
    assert.deepEqual([await as('alice.test').ftBalanceOf(), await as('alice.test').ftBalanceOf('carol.test'), await as('alice.test').ftTotalSupply()], [500n, 100n, 1100n])

    const p = await as('carol.test').daoPropose({ kind: 'train', description: 'train it together', job: JOB }, NEAR)
    assert.deepEqual([p.id, p.kind, p.status, p.votable_supply, p.action?.job], [0, 'train', 'open', '1000', 'dao-job'])
    await as('alice.test').daoVote(p.id, 'yes')
    // alice's 500 are locked while the vote is open: moving them to bob to vote again is refused
    await assert.rejects(as('alice.test').ftTransfer('bob.test', 1n), (e: Error) => e instanceof LedgerCallError && /locked by open DAO votes/.test(e.message))
    await assert.rejects(as('carol.test').daoFinalize(p.id), /can change until block/)
    const voted = await as('bob.test').daoVote(p.id, 'yes')
    assert.deepEqual([voted.yes, voted.votes], ['900', 2])
    // 900 yes of 1100 tokens: no remaining vote can change it, so it finalizes before the deadline
    const done = await as('carol.test').daoFinalize(p.id)
    assert.deepEqual([done.status, done.job], ['passed', 'dao-job'])
    const job = await as('bob.test').getJob('dao-job')
    assert.deepEqual([job?.owner, job?.validators, job?.trainer_bond, job?.unbonding_blocks], [CONTRACT, JOB.validators, NEAR.toString(), 5])
    assert.deepEqual((await as('bob.test').daoListProposals()).map(x => [x.id, x.status]), [[0, 'passed']])
    assert.equal(await as('bob.test').daoGetProposal(7), null)
    await as('alice.test').ftTransfer('bob.test', 500n)
    assert.equal(await as('bob.test').ftBalanceOf(), 900n)
  })
})
