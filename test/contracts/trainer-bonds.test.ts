import assert from 'node:assert/strict'
import { world, NEAR, CONTRACT } from './helpers.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'

const EVAL = 'bafyevalset'
const BOND = NEAR // 1 NEAR per trainer
const UNBONDING = 5
const VALIDATORS = ['bob.test', 'carol.test', 'dave.test']
const keys = new TrainerKeys()
const peer = (c: string): string => keys.peer(c)
/** Signed register_trainer arguments: peer `c`'s key binds it to `account` on `job`. */
const signed = async (account: string, job: string, c: string): Promise<{ job: string, peer_id: string, peer_signature: string }> => await keys.args(c, CONTRACT, job, account)
const eventsOf = (outcome: { receipts: Array<{ logs: string[] }> }, event: string): any[] =>
  outcome.receipts.flatMap(r => r.logs).filter(l => l.startsWith('EVENT_JSON:')).map(l => JSON.parse(l.slice('EVENT_JSON:'.length))).filter(e => e.event === event)
const BYTE_COST = 10n ** 19n

async function setup (threshold = 2, bond = BOND) {
  const w = await world(['alice.test', 'bob.test', 'carol.test', 'dave.test', 'eve.test', 'frank.test', 'grace.test'])
  for (const a of ['alice.test', ...VALIDATORS, 'eve.test', 'frank.test', 'grace.test']) await w.call(a, 'storage_deposit', {}, { deposit: NEAR / 10n })
  await w.call('alice.test', 'create_job', { job: 'bonded', spec_cid: 'bafyspec', eval_cid: EVAL, validators: VALIDATORS, threshold, trainer_bond: bond.toString(), unbonding_blocks: UNBONDING })
  /** Bytes each account's storage balance pays for: (total - available) / byte cost. */
  const used = async (a: string): Promise<bigint> => {
    const b = await w.view('storage_balance_of', { account_id: a })
    return (BigInt(b.total) - BigInt(b.available)) / BYTE_COST
  }
  const usedSum = async (): Promise<bigint> => {
    let s = 0n
    for (const a of ['alice.test', ...VALIDATORS, 'eve.test', 'frank.test', 'grace.test']) s += await used(a)
    return s
  }
  const contractUsage = (): bigint => w.rt.account(CONTRACT)!.storageUsage
  return { ...w, used, usedSum, contractUsage }
}

describe('contract: trainer bonds (compiled wasm in the harness)', () => {
  before(async () => { await keys.make('a', 'b', 'c', 'g', 'z') })

  it('registration needs the peer key\'s signature of (contract, job, account): no one binds a peer id it does not hold', async () => {
    const w = await setup()
    const good = await signed('eve.test', 'bonded', 'a')
    // Signed by another key, signed for another account (a replay), malformed, or a peer id whose key cannot be checked.
    await assert.rejects(w.call('eve.test', 'register_trainer', { ...good, peer_signature: (await signed('eve.test', 'bonded', 'b')).peer_signature }, { deposit: BOND }), /peer_signature is not .*signature of the registration/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { ...good, peer_signature: (await signed('frank.test', 'bonded', 'a')).peer_signature }, { deposit: BOND }), /peer_signature is not/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { ...good, peer_signature: 'zz' }, { deposit: BOND }), /peer_signature must be 128 lowercase hex characters/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { job: 'bonded', peer_id: good.peer_id }, { deposit: BOND }), /peer_signature/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { ...good, peer_id: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' }, { deposit: BOND }), /is not an Ed25519 peer id/)
    assert.equal(await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' }), null)
    const { value } = await w.call('eve.test', 'register_trainer', good, { deposit: BOND })
    assert.equal(value.peer_id, peer('a'))
  })

  it('create_job takes a bounded trainer bond and unbonding delay; open jobs default to bond 0', async () => {
    const w = await setup()
    const job = await w.view('get_job', { job: 'bonded' })
    assert.deepEqual([job.trainer_bond, job.unbonding_blocks], [BOND.toString(), UNBONDING])
    await w.call('alice.test', 'create_job', { job: 'open', spec_cid: 'bafyspec', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 })
    const open = await w.view('get_job', { job: 'open' })
    assert.deepEqual([open.trainer_bond, open.unbonding_blocks], ['0', 86400])
    const base = { spec_cid: 'bafyspec', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 }
    await assert.rejects(w.call('alice.test', 'create_job', { ...base, job: 'x1', trainer_bond: 5 }), /trainer_bond must be a decimal string/)
    await assert.rejects(w.call('alice.test', 'create_job', { ...base, job: 'x2', trainer_bond: '-1' }), /trainer_bond must be a decimal string/)
    await assert.rejects(w.call('alice.test', 'create_job', { ...base, job: 'x3', trainer_bond: (10n ** 30n + 1n).toString() }), /trainer_bond must be at most/)
    await assert.rejects(w.call('alice.test', 'create_job', { ...base, job: 'x4', unbonding_blocks: 0 }), /unbonding_blocks must be between/)
    await assert.rejects(w.call('alice.test', 'create_job', { ...base, job: 'x5', unbonding_blocks: 31536001 }), /unbonding_blocks must be between/)
    assert.equal(await w.view('get_job', { job: 'x3' }), null)
  })

  it('registration needs at least the bond, a valid peer id, and binds one peer id per account and one account per peer id', async () => {
    const w = await setup()
    await assert.rejects(w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND - 1n }), /requires a trainer bond of 1000000000000000000000000 yoctoNEAR/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { job: 'bonded', peer_id: 'not-a-peer-id' }, { deposit: BOND }), /peer_id must be a libp2p peer id/)
    await assert.rejects(w.call('eve.test', 'register_trainer', { job: 'bonded', peer_id: `12D3KooW${'0'.repeat(44)}` }, { deposit: BOND }), /peer_id must be a libp2p peer id/)
    await assert.rejects(w.call('eve.test', 'register_trainer', await signed('eve.test', 'nope', 'a'), { deposit: BOND }), /unknown job/)
    assert.equal(await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' }), null)

    const before = w.rt.account('eve.test')!.balance
    const { value, outcome } = await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND })
    assert.equal(w.rt.account('eve.test')!.balance, before - BOND)
    assert.deepEqual([value.account_id, value.peer_id, value.bond, value.status, value.reports], ['eve.test', peer('a'), BOND.toString(), 'active', []])
    assert.equal(eventsOf(outcome, 'trainer_registered').length, 1)
    assert.deepEqual(await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' }), value)
    assert.deepEqual(await w.view('get_trainer_by_peer', { job: 'bonded', peer_id: peer('a') }), value)
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('a') }), true)
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('b') }), false)

    await assert.rejects(w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'b'), { deposit: BOND }), /already registered as a trainer/)
    await assert.rejects(w.call('frank.test', 'register_trainer', await signed('frank.test', 'bonded', 'a'), { deposit: BOND }), /already registered on job bonded by eve\.test/)
    await w.call('frank.test', 'register_trainer', await signed('frank.test', 'bonded', 'b'), { deposit: BOND * 2n })
    const list = await w.view('get_trainers', { job: 'bonded' })
    assert.equal(list.total, 2)
    assert.deepEqual(list.trainers.map((t: any) => [t.account_id, t.bond]), [['eve.test', BOND.toString()], ['frank.test', (BOND * 2n).toString()]])
    assert.deepEqual((await w.view('get_trainers', { job: 'bonded', from_index: 1, limit: 1 })).trainers.map((t: any) => t.account_id), ['frank.test'])
  })

  it('a registration without a storage deposit is refused, keeps nothing and refunds the bond', async () => {
    const w = await setup()
    w.rt.createAccount('new.test', 100n * NEAR)
    await assert.rejects(w.call('new.test', 'register_trainer', await signed('new.test', 'bonded', 'c'), { deposit: BOND }), /new\.test has no storage deposit; call storage_deposit first/)
    assert.equal(await w.view('get_trainer', { job: 'bonded', account_id: 'new.test' }), null)
    assert.equal(await w.view('get_trainer_by_peer', { job: 'bonded', peer_id: peer('c') }), null)
    assert.equal(w.rt.account('new.test')!.balance, 100n * NEAR)
  })

  it('only the job\'s validators report; below the threshold nothing is slashed; at the threshold the bond is burnt with an event', async () => {
    const w = await setup(2)
    await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND })
    const report = { job: 'bonded', account_id: 'eve.test', round: 3, reason: 'gradient does not match its shard' }
    await assert.rejects(w.call('frank.test', 'report_cheat', report), /frank\.test is not a validator of job bonded/)
    await assert.rejects(w.call('alice.test', 'report_cheat', report), /is not a validator/) // the owner neither
    await assert.rejects(w.call('bob.test', 'report_cheat', { ...report, account_id: 'grace.test' }), /grace\.test is not a trainer/)
    await assert.rejects(w.call('bob.test', 'report_cheat', { ...report, reason: '' }), /reason must be 1\.\.256/)

    const first = await w.call('bob.test', 'report_cheat', report)
    assert.equal(first.value.status, 'active')
    assert.deepEqual(first.value.reports.map((r: any) => [r.validator, r.round, r.reason]), [['bob.test', 3, report.reason]])
    assert.equal(eventsOf(first.outcome, 'cheat_reported').length, 1)
    assert.equal(eventsOf(first.outcome, 'trainer_slashed').length, 0)
    await assert.rejects(w.call('bob.test', 'report_cheat', { ...report, round: 4 }), /bob\.test already reported eve\.test/)
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('a') }), true, 'one report is not a slash')
    assert.equal(await w.view('slashed_total', {}), '0')

    const contractBalance = w.rt.account(CONTRACT)!.balance
    const second = await w.call('carol.test', 'report_cheat', { ...report, round: 7, reason: 'duplicate of another peer\'s update' }) // any round counts
    assert.equal(second.value.status, 'slashed')
    assert.equal(typeof second.value.slashed_at_block, 'number')
    const slashed = eventsOf(second.outcome, 'trainer_slashed')
    assert.equal(slashed.length, 1)
    assert.deepEqual(slashed[0].data[0], { job: 'bonded', account_id: 'eve.test', peer_id: peer('a'), bond: BOND.toString(), reporters: ['bob.test', 'carol.test'], block: second.value.slashed_at_block })
    assert.equal(await w.view('slashed_total', {}), BOND.toString())
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('a') }), false)
    // Burnt: no transfer left the contract, and no validator nor the owner received anything.
    assert.equal(second.outcome.receipts.length, 1)
    assert.equal(w.rt.account(CONTRACT)!.balance, contractBalance)
    await assert.rejects(w.call('dave.test', 'report_cheat', report), /already slashed/)
    // The peer id stays bound to the slashed account: a new identity needs a new peer id and a new bond.
    await assert.rejects(w.call('frank.test', 'register_trainer', await signed('frank.test', 'bonded', 'a'), { deposit: BOND }), /already registered/)
    await assert.rejects(w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'z'), { deposit: BOND }), /already registered as a trainer of job bonded \(slashed/)
  })

  it('a slashed trainer cannot withdraw, even one that was unbonding when it was caught', async () => {
    const w = await setup(2)
    await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND })
    await w.call('eve.test', 'deregister_trainer', { job: 'bonded' })
    await w.call('bob.test', 'report_cheat', { job: 'bonded', account_id: 'eve.test', round: 1, reason: 'late audit: wrong gradient' })
    await w.call('dave.test', 'report_cheat', { job: 'bonded', account_id: 'eve.test', round: 1, reason: 'late audit: wrong gradient' })
    w.skipBlocks(UNBONDING + 1)
    const before = w.rt.account('eve.test')!.balance
    await assert.rejects(w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n }), /was slashed on job bonded: its bond is burnt/)
    await assert.rejects(w.call('eve.test', 'deregister_trainer', { job: 'bonded' }), /was slashed/)
    assert.equal(w.rt.account('eve.test')!.balance, before)
    assert.equal((await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' })).status, 'slashed')
  })

  it('an honest trainer withdraws exactly its bond after deregistering and waiting the delay; storage is accounted for', async () => {
    const w = await setup(2)
    const u0 = w.contractUsage()
    const s0 = await w.usedSum()
    const eveUsed0 = await w.used('eve.test')
    const eveBalance0 = w.rt.account('eve.test')!.balance
    await w.call('grace.test', 'register_trainer', await signed('grace.test', 'bonded', 'g'), { deposit: BOND })
    await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND + 7n })
    await w.call('frank.test', 'register_trainer', await signed('frank.test', 'bonded', 'b'), { deposit: BOND })
    assert.ok(await w.used('eve.test') > eveUsed0, 'registration is charged to the trainer\'s storage balance')
    // one report below the threshold (paid by the validator) stays on record
    await w.call('bob.test', 'report_cheat', { job: 'bonded', account_id: 'eve.test', round: 2, reason: 'suspicious' })
    assert.equal(w.contractUsage() - u0, await w.usedSum() - s0, 'every byte added is charged to someone')

    await assert.rejects(w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n }), /must call deregister_trainer first/)
    await assert.rejects(w.call('eve.test', 'withdraw_bond', { job: 'bonded' }), /exactly 1 yoctoNEAR/)
    const dereg = await w.call('eve.test', 'deregister_trainer', { job: 'bonded' })
    assert.equal(dereg.value.status, 'unbonding')
    assert.equal(dereg.value.withdrawable_at_block, dereg.value.unbonding_at_block + UNBONDING)
    await assert.rejects(w.call('eve.test', 'deregister_trainer', { job: 'bonded' }), /already unbonding/)
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('a') }), true, 'unbonding trainers keep their rewards for rounds trained')
    await assert.rejects(w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n }), new RegExp(`unlocks at block ${dereg.value.withdrawable_at_block as number}`))
    while (w.nextHeight() < BigInt(dereg.value.withdrawable_at_block)) w.skipBlocks(1)

    const { value, outcome } = await w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n })
    assert.equal(value.bond, (BOND + 7n).toString())
    assert.equal(outcome.receipts.length, 2, 'the call and its transfer')
    assert.equal(eventsOf(outcome, 'bond_withdrawn').length, 1)
    // Exactly the bond comes back (the 1 yocto confirmation stays, as with storage_withdraw).
    assert.equal(w.rt.account('eve.test')!.balance, eveBalance0 - 1n)
    assert.equal(await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' }), null)
    assert.equal(await w.view('reward_eligible', { job: 'bonded', peer_id: peer('a') }), false)
    const list = await w.view('get_trainers', { job: 'bonded' })
    assert.deepEqual(list.trainers.map((t: any) => [t.account_id, t.status]).sort(), [['frank.test', 'active'], ['grace.test', 'active']])
    assert.equal(list.total, 2)
    // The trainer's storage comes back exactly; the validator's report stays on record, paid by the validator.
    assert.equal(await w.used('eve.test'), eveUsed0)
    assert.equal(w.contractUsage() - u0, await w.usedSum() - s0)
    await assert.rejects(w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n }), /not a trainer/)

    // Re-registering starts a fresh record: old reports do not count against it, the peer id is free again.
    const again = await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'), { deposit: BOND })
    assert.deepEqual(again.value.reports, [])
    await w.call('bob.test', 'report_cheat', { job: 'bonded', account_id: 'eve.test', round: 9, reason: 'again' })
    assert.equal((await w.view('get_trainer', { job: 'bonded', account_id: 'eve.test' })).status, 'active')
    assert.equal(w.contractUsage() - u0, await w.usedSum() - s0)
  })

  it('an open job (bond 0) registers without a deposit, and a withdrawal returns nothing but frees the storage', async () => {
    const w = await setup(1, 0n)
    const used0 = await w.used('eve.test')
    await w.call('eve.test', 'register_trainer', await signed('eve.test', 'bonded', 'a'))
    assert.ok(await w.used('eve.test') > used0)
    await w.call('eve.test', 'deregister_trainer', { job: 'bonded' })
    w.skipBlocks(UNBONDING)
    const { outcome } = await w.call('eve.test', 'withdraw_bond', { job: 'bonded' }, { deposit: 1n })
    assert.equal(outcome.receipts.length, 1, 'no transfer for a zero bond')
    assert.equal(await w.used('eve.test'), used0)
  })
})
