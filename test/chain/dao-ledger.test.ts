/**
 * The DAO through the node's Ledger on the embedded dev chain: the contract account initialises the token,
 * holders transfer and vote, a passed train proposal puts an active job on chain; and the same through `nearai dao`.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DevChain, DevChainLedger, LedgerCallError } from '../../node/chain/index.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'
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
    assert.deepEqual([init.total_supply, init.params], ['1100', { quorum_bps: 5000, threshold_bps: 5000, voting_period_blocks: 50, proposal_bond: NEAR.toString(), reward_per_round: '0' }])
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

describe('nearai dao init / balance / transfer / propose / vote / finalize / proposals', function () {
  this.timeout(180_000)
  let dir: string
  let home: string
  const cli = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => await runCli(['--home', home, '--log-level', 'warn', ...args])
  const ok = async (...args: string[]): Promise<string> => {
    const r = await cli(...args)
    assert.equal(r.code, 0, r.stderr)
    return r.stdout
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-dao-cli-'))
    home = join(dir, 'home')
    assert.equal((await runCli(['--home', home, 'init'])).code, 0)
  })
  after(async () => { await removeDir(dir) })

  it('the contract account mints, holders propose a job, vote it through, and the job is on chain', async () => {
    // holders need a storage deposit before they can hold tokens
    const early = await cli('dao', 'init', '--account', CONTRACT, '--holder', 'alice.test=700')
    assert.equal(early.code, 1)
    assert.match(early.stderr, /receiver alice\.test is not registered/)
    assert.match(await ok('dao', 'register', '--account', 'alice.test'), /^alice\.test: storage balance 0\.1 NEAR/m)
    await ok('dao', 'register', '--account', 'alice.test', '--for', 'bob.test')
    await ok('dao', 'init', '--account', CONTRACT, '--holder', 'alice.test=700', '--holder', 'bob.test=300', '--proposal-bond', '0.5', '--quorum-bps', '5000')
    assert.match(await ok('dao', 'balance', '--of', 'alice.test'), /^alice\.test: 700 of 1000 tokens$/m)
    await ok('dao', 'propose', '--kind', 'text', '--description', 'hello', '--account', 'alice.test')
    await ok('dao', 'propose', '--kind', 'text', '--description', 'hello again', '--account', 'bob.test')
    const bad = await cli('dao', 'transfer', '--to', 'bob.test', '--amount', '0', '--account', 'alice.test')
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /expected a positive whole number of tokens/)
    assert.match(await ok('dao', 'transfer', '--to', 'bob.test', '--amount', '100', '--account', 'alice.test'), /sent 100 tokens to bob\.test; 600 left/)

    const missing = await cli('dao', 'propose', '--kind', 'train', '--description', 'x', '--account', 'bob.test')
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /a train proposal needs --validators/)
    const proposed = JSON.parse(await ok('dao', 'propose', '--kind', 'train', '--description', 'train it', '--job', 'cli-dao-job', '--spec-cid', 'bafyspec',
      '--eval-cid', 'bafyeval', '--validators', 'validator-1.test,validator-2.test', '--account', 'bob.test', '--json'))
    assert.deepEqual([proposed.id, proposed.kind, proposed.bond, proposed.action.threshold], [2, 'train', (NEAR / 2n).toString(), 2])
    assert.match(await ok('dao', 'vote', '--id', '2', '--vote', 'yes', '--account', 'alice.test'), /voted yes on #2: yes 600, no 0 of 1000 votable tokens/)
    const locked = await cli('dao', 'transfer', '--to', 'bob.test', '--amount', '1', '--account', 'alice.test')
    assert.equal(locked.code, 1)
    assert.match(locked.stderr, /locked by open DAO votes/)
    assert.match(await ok('dao', 'finalize', '--id', '2', '--account', 'bob.test'), /^#2\ttrain\tyes 600\tno 0\tpassed at block \d+, job cli-dao-job created\ttrain it$/m)
    const job = JSON.parse(await ok('job', 'trainers', '--job', 'cli-dao-job', '--json'))
    assert.deepEqual([job.job, job.trainers], ['cli-dao-job', []])
    const list = await ok('dao', 'proposals')
    assert.equal(list.trim().split('\n').length, 3)
    assert.match(list, /^#0\ttext\tyes 0\tno 0\topen until block \d+\thello$/m)
  })
})
