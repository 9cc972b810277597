import assert from 'node:assert/strict'
import { daoWorld, eventLogs, NEAR, CONTRACT } from './helpers.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'

// votable supply 1000 (the treasury's 100 cannot vote); quorum 50%, yes must exceed 50%, 30-block votes, 1 NEAR bond
const HOLDERS: Array<[string, bigint]> = [['alice.test', 400n], ['bob.test', 300n], ['carol.test', 200n], ['dave.test', 100n], [CONTRACT, 100n]]
const PARAMS = { quorum_bps: 5000, threshold_bps: 5000, voting_period_blocks: 30, proposal_bond: NEAR.toString(), reward_per_round: '0' }
const PERIOD = 30
const BOND = { deposit: NEAR }
const ONE_YOCTO = { deposit: 1n }
const JOB = { job: 'dao-mnist', spec_cid: 'bafyspec', eval_cid: 'bafyeval', validators: ['carol.test', 'dave.test'], threshold: 2, trainer_bond: NEAR.toString(), unbonding_blocks: 50 }

async function setup () {
  const w = await daoWorld(HOLDERS, PARAMS, ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'eve.test'])
  await w.call('eve.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
  const balance = async (a: string): Promise<bigint> => BigInt(await w.view('ft_balance_of', { account_id: a }))
  const propose = async (args: Record<string, unknown>, by = 'alice.test') => (await w.call(by, 'dao_propose', { description: 'a proposal', ...args }, BOND)).value
  const vote = async (id: number, who: string, v: 'yes' | 'no') => (await w.call(who, 'dao_vote', { id, vote: v })).value
  const finalize = async (id: number) => await w.call('eve.test', 'dao_finalize', { id })
  return { ...w, balance, propose, vote, finalize }
}

describe('contract: DAO proposals and token-weighted votes', () => {
  it('a proposal needs the bond and a valid action; it is listed in bounded pages and announced by an event', async () => {
    const w = await setup()
    assert.deepEqual(await w.view('dao_params', {}), PARAMS)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'text', description: 'x' }, { deposit: NEAR - 1n }), /a proposal needs a bond of 1000000000000000000000000 yoctoNEAR/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'vote-me-rich', description: 'x' }, BOND), /kind must be one of train, params, transfer, text/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'train', description: 'x', job: { ...JOB, threshold: 3 } }, BOND), /threshold must be between 1 and the number of validators/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'params', description: 'x', params: { quorum_bps: 0 } }, BOND), /quorum_bps must be 1\.\.10000/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'params', description: 'x', params: { owner: 'me' } }, BOND), /unknown DAO parameter owner/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'transfer', description: 'x', receiver_id: 'bob.test', amount: '0' }, BOND), /amount must be positive/)
    const before = w.rt.account('alice.test')!.balance
    const { value, outcome } = await w.call('alice.test', 'dao_propose', { kind: 'text', description: 'hello DAO' }, BOND)
    assert.equal(w.rt.account('alice.test')!.balance, before - NEAR)
    assert.deepEqual([value.id, value.kind, value.status, value.bond, value.votable_supply, value.voting_ends_at_block - value.created_at_block], [0, 'text', 'open', NEAR.toString(), '1000', PERIOD])
    assert.deepEqual(eventLogs(outcome, 'nearai').map(e => [e.event, e.data[0].id]), [['dao_proposal_created', 0]])
    await w.propose({ kind: 'text' })
    await w.propose({ kind: 'text' })
    const page = await w.view('dao_list_proposals', { from_index: 1, limit: 1 })
    assert.deepEqual([page.total, page.proposals.map((p: any) => p.id)], [3, [1]])
    assert.equal((await w.view('dao_list_proposals', { limit: 1000 })).proposals.length, 3)
    assert.deepEqual(await w.view('dao_get_proposal', { id: 0 }), value)
    assert.equal(await w.view('dao_get_proposal', { id: 9 }), null)
  })

  it('passes only with quorum and threshold before its deadline; the bond comes back unless it expired', async () => {
    const w = await setup()
    // A: only alice (400 < quorum 500) votes: expired at the deadline, bond kept
    const a = await w.propose({ kind: 'text' }, 'bob.test')
    await w.vote(a.id, 'alice.test', 'yes')
    await assert.rejects(w.finalize(a.id), /can change until block/)
    // B: 400 yes + 100 no: quorum 500, yes 80% of votes: passed
    const b = await w.propose({ kind: 'text' }, 'bob.test')
    await w.vote(b.id, 'alice.test', 'yes')
    await w.vote(b.id, 'dave.test', 'no')
    // C: 300 yes + 400 no: quorum, no threshold: rejected
    const c = await w.propose({ kind: 'text' }, 'bob.test')
    await w.vote(c.id, 'bob.test', 'yes')
    await w.vote(c.id, 'alice.test', 'no')
    w.skipBlocks(PERIOD)
    const bobBefore = w.rt.account('bob.test')!.balance
    const fa = await w.finalize(a.id)
    assert.equal(fa.value.status, 'expired')
    assert.equal(w.rt.account('bob.test')!.balance, bobBefore) // bond kept
    const fb = await w.finalize(b.id)
    assert.deepEqual([fb.value.status, fb.value.yes, fb.value.no], ['passed', '400', '100'])
    assert.equal(w.rt.account('bob.test')!.balance, bobBefore + NEAR)
    const fc = await w.finalize(c.id)
    assert.equal(fc.value.status, 'rejected')
    assert.equal(w.rt.account('bob.test')!.balance, bobBefore + 2n * NEAR)
    assert.deepEqual(eventLogs(fc.outcome, 'nearai').map(e => [e.event, e.data[0].status]), [['dao_proposal_finalized', 'rejected']])
    await assert.rejects(w.finalize(b.id), /already passed/)
  })

  it('a tie is not a majority, and a decided outcome can be finalized before the deadline', async () => {
    const w = await setup()
    const tie = await w.propose({ kind: 'text' })
    await w.vote(tie.id, 'bob.test', 'yes')
    await w.vote(tie.id, 'carol.test', 'no')
    await w.vote(tie.id, 'dave.test', 'no')
    const early = await w.propose({ kind: 'text' })
    await w.vote(early.id, 'alice.test', 'yes')
    await w.vote(early.id, 'dave.test', 'no')
    await assert.rejects(w.finalize(early.id), /can change until block/) // 400 yes, 100 no: 600 of the 1100 tokens could still vote no
    await w.vote(early.id, 'carol.test', 'yes')
    const f = await w.finalize(early.id) // 600 yes > half of all 1100 tokens: nothing can change it
    assert.equal(f.value.status, 'passed')
    assert.ok(f.value.finalized_at_block < f.value.voting_ends_at_block)
    await assert.rejects(w.vote(early.id, 'bob.test', 'yes'), /proposal 1 is passed/)
    w.skipBlocks(PERIOD)
    assert.equal((await w.finalize(tie.id)).value.status, 'rejected')
  })

  it('refuses double votes, votes after the deadline, and voting the same tokens twice through a transfer', async () => {
    const w = await setup()
    const p = await w.propose({ kind: 'text' })
    const { outcome } = await w.call('alice.test', 'dao_vote', { id: p.id, vote: 'yes' })
    assert.deepEqual(eventLogs(outcome, 'nearai').map(e => [e.event, e.data[0]]), [['dao_vote', { id: 0, account_id: 'alice.test', vote: 'yes', weight: '400' }]])
    assert.deepEqual(await w.view('dao_get_vote', { id: p.id, account_id: 'alice.test' }), { vote: 'yes', weight: '400', block: p.created_at_block + 1 })
    await assert.rejects(w.vote(p.id, 'alice.test', 'no'), /alice\.test already voted on proposal 0/)
    await assert.rejects(w.vote(p.id, 'eve.test', 'yes'), /eve\.test holds no DAO tokens to vote with/)
    await assert.rejects(w.call('alice.test', 'dao_vote', { id: p.id, vote: 'maybe' }), /vote must be \W+yes\W+ or \W+no/)
    // alice's 400 are locked: she cannot hand them to eve to be counted again
    assert.equal(await w.view('dao_locked_balance_of', { account_id: 'alice.test' }), '400')
    await assert.rejects(w.call('alice.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '1' }, ONE_YOCTO), /400 of alice\.test's tokens are locked by open DAO votes; it can move at most 0/)
    await assert.rejects(w.call('alice.test', 'ft_transfer_call', { receiver_id: 'eve.test', amount: '400', msg: '' }, ONE_YOCTO), /locked by open DAO votes/)
    // tokens she receives after voting were never counted: those (and only those) can move and vote
    await w.call('carol.test', 'ft_transfer', { receiver_id: 'alice.test', amount: '50' }, ONE_YOCTO)
    await assert.rejects(w.call('alice.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '51' }, ONE_YOCTO), /can move at most 50/)
    await w.call('alice.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '50' }, ONE_YOCTO)
    const afterEve = await w.vote(p.id, 'eve.test', 'yes')
    assert.deepEqual([afterEve.yes, afterEve.votes], ['450', 2])
    // the same tokens may vote on another proposal: the lock is the largest open vote, not a sum
    const q = await w.propose({ kind: 'text' }, 'bob.test')
    assert.equal((await w.vote(q.id, 'alice.test', 'no')).no, '400')
    // after the deadline votes are refused and the tokens move again
    w.skipBlocks(PERIOD)
    await assert.rejects(w.vote(p.id, 'bob.test', 'yes'), /voting on proposal 0 ended at block/)
    assert.equal(await w.view('dao_locked_balance_of', { account_id: 'alice.test' }), '0')
    await w.call('alice.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '400' }, ONE_YOCTO)
    assert.deepEqual([await w.balance('alice.test'), await w.balance('eve.test')], [0n, 450n])
  })

  it('a receiver that votes with tokens from ft_transfer_call keeps them: the refund never moves locked tokens', async () => {
    const w = await setup()
    await w.call('alice.test', 'storage_deposit', { account_id: 'echo.test' }, { deposit: NEAR / 10n })
    const p = await w.propose({ kind: 'text' })
    // echo.test votes with the 100 it received, then returns something that is not an amount (a full refund claim)
    const { value } = await w.call('alice.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '100', msg: `vote:${p.id as number}` }, { ...ONE_YOCTO, gas: 200n * 10n ** 12n })
    assert.equal(value, '100')
    assert.deepEqual([await w.balance('alice.test'), await w.balance('echo.test')], [300n, 100n])
    assert.equal(await w.view('dao_locked_balance_of', { account_id: 'echo.test' }), '100')
    assert.equal((await w.view('dao_get_proposal', { id: p.id })).yes, '100')
    // alice's remaining 300 vote; the 100 echo.test voted with are not counted again
    assert.equal((await w.vote(p.id, 'alice.test', 'yes')).yes, '400')
  })

  it('finalizing early releases the votes\' locks', async () => {
    const w = await setup()
    const p = await w.propose({ kind: 'text' })
    for (const a of ['alice.test', 'bob.test', 'carol.test']) await w.vote(p.id, a, 'yes')
    await assert.rejects(w.call('bob.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '1' }, ONE_YOCTO), /locked/)
    await w.finalize(p.id)
    await w.call('bob.test', 'ft_transfer', { receiver_id: 'eve.test', amount: '300' }, ONE_YOCTO)
    assert.equal(await w.balance('eve.test'), 300n)
  })

  it('a passed train proposal creates the job, owned by the DAO, as create_job would; a rejected one creates nothing', async () => {
    const w = await setup()
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'train', description: 'x' }, BOND), /missing argument: job/)
    const yes = await w.propose({ kind: 'train', description: 'train MNIST together', job: JOB })
    assert.equal(yes.action.job, 'dao-mnist')
    const no = await w.propose({ kind: 'train', job: { ...JOB, job: 'dao-rejected' } })
    await w.vote(yes.id, 'alice.test', 'yes')
    await w.vote(yes.id, 'bob.test', 'yes')
    await w.vote(no.id, 'alice.test', 'no')
    await w.vote(no.id, 'bob.test', 'yes')
    assert.equal(await w.view('get_job', { job: 'dao-mnist' }), null)
    w.skipBlocks(PERIOD)
    const usedBefore = await w.view('storage_balance_of', { account_id: 'alice.test' })
    const { value, outcome } = await w.finalize(yes.id)
    assert.deepEqual([value.status, value.job], ['passed', 'dao-mnist'])
    const job = await w.view('get_job', { job: 'dao-mnist' })
    assert.deepEqual([job.owner, job.spec_cid, job.eval_cid, job.validators, job.threshold, job.trainer_bond, job.unbonding_blocks, job.latest_final_round],
      [CONTRACT, 'bafyspec', 'bafyeval', ['carol.test', 'dave.test'], 2, NEAR.toString(), 50, null])
    assert.deepEqual(eventLogs(outcome, 'nearai').map(e => e.event), ['job_created', 'dao_proposal_finalized'])
    // the proposer's storage balance paid for the job record
    const usedAfter = await w.view('storage_balance_of', { account_id: 'alice.test' })
    assert.ok(BigInt(usedAfter.available) < BigInt(usedBefore.available))
    // the job is live: a trainer registers with its bond and validators attest
    const keys = await new TrainerKeys().make('e')
    await w.call('eve.test', 'register_trainer', await keys.args('e', CONTRACT, 'dao-mnist', 'eve.test'), { deposit: NEAR })
    assert.equal((await w.view('get_trainer', { job: 'dao-mnist', account_id: 'eve.test' })).status, 'active')
    assert.equal((await w.finalize(no.id)).value.status, 'rejected')
    assert.equal(await w.view('get_job', { job: 'dao-rejected' }), null)
  })

  it('a train proposal whose job id was taken meanwhile fails without panicking and returns the bond', async () => {
    const w = await setup()
    const p = await w.propose({ kind: 'train', job: JOB })
    await w.call('alice.test', 'create_job', { ...JOB, job: 'taken' })
    await assert.rejects(w.propose({ kind: 'train', job: { ...JOB, job: 'taken' } }), /job taken already exists/)
    await w.call('alice.test', 'create_job', JOB)
    await w.vote(p.id, 'alice.test', 'yes')
    await w.vote(p.id, 'bob.test', 'yes')
    w.skipBlocks(PERIOD)
    const before = w.rt.account('alice.test')!.balance
    const { value } = await w.finalize(p.id)
    assert.deepEqual([value.status, value.reason], ['failed', 'job dao-mnist already exists'])
    assert.equal((await w.view('get_job', { job: 'dao-mnist' })).owner, 'alice.test')
    assert.equal(w.rt.account('alice.test')!.balance, before + NEAR)
  })

  it('a passed transfer pays from the treasury, a passed params proposal applies, an unpayable transfer fails', async () => {
    const w = await setup()
    const pay = await w.propose({ kind: 'transfer', receiver_id: 'eve.test', amount: '60', memo: 'grant' })
    const tooMuch = await w.propose({ kind: 'transfer', receiver_id: 'eve.test', amount: '101' })
    const params = await w.propose({ kind: 'params', params: { quorum_bps: 1000, voting_period_blocks: 20 } })
    for (const p of [pay, tooMuch, params]) { await w.vote(p.id, 'alice.test', 'yes'); await w.vote(p.id, 'bob.test', 'yes') }
    w.skipBlocks(PERIOD)
    const paid = await w.finalize(pay.id)
    assert.equal(paid.value.status, 'passed')
    assert.deepEqual([await w.balance('eve.test'), await w.balance(CONTRACT)], [60n, 40n])
    assert.deepEqual(eventLogs(paid.outcome, 'nep141').map(e => e.data[0]), [{ old_owner_id: CONTRACT, new_owner_id: 'eve.test', amount: '60', memo: 'grant' }])
    const failed = await w.finalize(tooMuch.id)
    assert.deepEqual([failed.value.status, failed.value.reason], ['failed', 'the treasury holds 40, less than 101'])
    assert.equal(await w.balance(CONTRACT), 40n)
    await w.finalize(params.id)
    assert.deepEqual(await w.view('dao_params', {}), { ...PARAMS, quorum_bps: 1000, voting_period_blocks: 20 })
    const next = await w.propose({ kind: 'text' })
    assert.deepEqual([next.quorum_bps, next.voting_ends_at_block - next.created_at_block], [1000, 20])
    assert.equal(BigInt(await w.view('ft_total_supply', {})), 1100n)
  })
})
