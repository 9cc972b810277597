/**
 * From harm verdicts to exclusion, on the embedded dev chain (the contract's wasm): validators report a
 * consistently harmful contributor (HarmReporter), the contract slashes its bond at the job's threshold, and a
 * training peer's roster (TrainerRoster, refreshed from the chain) drops it from the round's membership
 * (JobMembership): it is no participant, and its ready messages are refused as a barred peer's.
 */
import assert from 'node:assert/strict'
import { DevChain, DevChainLedger } from '../../node/chain/index.ts'
import { TrainerRoster } from '../../node/chain/trainer-roster.ts'
import { judgeReadyRound } from '../../node/allreduce/admission.ts'
import { JobMembership } from '../../node/job/membership.ts'
import { HarmRecord, type RoundScores } from '../../node/validator/contribution-scores.ts'
import { HarmReporter } from '../../node/validator/harm-reports.ts'
import { devGenesis } from '../chain/helpers.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'

const NEAR = 10n ** 24n
const keys = new TrainerKeys()
const peer = (i: number): string => keys.peer(String(i))
const VALIDATORS = ['validator-1.test', 'validator-2.test', 'validator-3.test']

/** A round where `harmful` peers raised the held-out loss and the others lowered it. */
function scored (round: number, peers: string[], harmful: Set<string>): RoundScores {
  return { round, baseLoss: 1, tolerance: 0.05, scores: peers.map(p => ({ peer: p, samples: 100, verdict: harmful.has(p) ? 'harmful' : 'helpful', delta: harmful.has(p) ? 0.5 : -0.1 })) }
}

describe('validators exclude a consistently harmful contributor: report on chain, slashed, out of the rounds', function () {
  this.timeout(60_000)
  let chain: DevChain
  const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })
  const trainers = [['bob.test', 1], ['carol.test', 2], ['dave.test', 3]] as const

  before(async () => {
    await keys.make('1', '2', '3', '7', '9')
    chain = await DevChain.open({ genesis: await devGenesis() })
    for (const a of ['alice.test', ...trainers.map(t => t[0]), ...VALIDATORS]) await as(a).storageDeposit()
    await as('alice.test').createJob({ job: 'bonded', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 2, trainerBondYocto: NEAR, unbondingBlocks: 3 })
    await as('alice.test').createJob({ job: 'open', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 2 })
    for (const [account, i] of trainers) await as(account).registerTrainer({ job: 'bonded', ...await keys.signed(String(i), as(account).contractId, 'bonded', account), bondYocto: NEAR })
    await as('carol.test').registerTrainer({ job: 'open', ...await keys.signed('2', as('carol.test').contractId, 'open', 'carol.test'), bondYocto: 0n })
  })
  after(() => { chain.close() })

  it('a bonded job: only registered trainers are members; two validators report the harmful one, and the next refresh drops it', async () => {
    const roster = new TrainerRoster(as('bob.test'), 'bonded')
    await roster.refresh()
    assert.deepEqual([peer(1), peer(2), peer(3), peer(9)].map(p => roster.allows(p)), [true, true, true, false], 'an unregistered peer is not admitted to a bonded job')

    const membership = new JobMembership('bonded', 10, (p) => roster.allows(p))
    const all = [peer(1), peer(2), peer(3), peer(9)]
    membership.hold(1, 'a'.repeat(64), [peer(1), peer(2), peer(3)])
    assert.deepEqual(membership.participants(all, peer(1)), [peer(1), peer(2), peer(3)].sort())

    // Three scored rounds: peer(3) harmful in two of them. Each validator keeps its own record and reports once.
    const records = VALIDATORS.map(() => new HarmRecord())
    for (const record of records) {
      record.record(scored(0, [peer(1), peer(2), peer(3)], new Set([peer(3)])))
      record.record(scored(1, [peer(1), peer(2), peer(3)], new Set()))
    }
    const reporters = VALIDATORS.map(v => new HarmReporter(as(v), 'bonded'))
    assert.deepEqual(await reporters[0].report(records[0], 1), [], 'one harmful round is not reported')
    for (const record of records) record.record(scored(2, [peer(1), peer(2), peer(3)], new Set([peer(3)])))

    const first = await reporters[0].report(records[0], 2)
    assert.deepEqual(first, [{ peer: peer(3), outcome: 'reported', account: 'dave.test', status: 'active' }], 'below the threshold of 2')
    assert.deepEqual(await reporters[0].report(records[0], 2), [], 'reported once a validator')
    await roster.refresh()
    assert.equal(roster.allows(peer(3)), true, 'still active after one report')

    const second = await reporters[1].report(records[1], 2)
    assert.deepEqual(second, [{ peer: peer(3), outcome: 'reported', account: 'dave.test', status: 'slashed' }])
    const onChain = await as('alice.test').getTrainerByPeer('bonded', peer(3))
    assert.equal(onChain?.status, 'slashed')
    assert.match(onChain?.reports[0].reason ?? '', /held-out loss rose in rounds 0, 2/)
    assert.equal(await as('alice.test').rewardEligible('bonded', peer(3)), false, 'no reward for it')
    assert.deepEqual(await reporters[2].report(records[2], 2), [{ peer: peer(3), outcome: 'already-out' }])

    await roster.refresh()
    assert.equal(roster.allows(peer(3)), false)
    assert.deepEqual(membership.participants(all, peer(1)), [peer(1), peer(2)].sort(), 'out of the next round although it took part in the held one')
    const view = membership.view('bonded')!
    assert.equal(view.members.has(peer(3)), false)
    assert.equal(judgeReadyRound(2, peer(3), view).verdict, 'ignore', 'its ready messages count for nothing')
    assert.equal(judgeReadyRound(2, peer(2), view).verdict, 'accept')
  })

  it('a job without a bond: anyone trains, but not the peer of a slashed registration; an unregistered harmful peer is only logged', async () => {
    const roster = new TrainerRoster(as('bob.test'), 'open')
    await roster.refresh()
    assert.ok([peer(2), peer(7)].every(p => roster.allows(p)))
    const record = new HarmRecord()
    record.record(scored(0, [peer(2), peer(7)], new Set([peer(2), peer(7)])))
    record.record(scored(1, [peer(2), peer(7)], new Set([peer(2), peer(7)])))
    const outcomes = [...await new HarmReporter(as(VALIDATORS[0]), 'open').report(record, 1), ...await new HarmReporter(as(VALIDATORS[1]), 'open').report(record, 1)]
    assert.deepEqual(outcomes.map(o => [o.peer, o.outcome]), [[peer(2), 'reported'], [peer(7), 'not-registered'], [peer(2), 'reported'], [peer(7), 'not-registered']])
    await roster.refresh()
    assert.equal(roster.allows(peer(2)), false)
    assert.equal(roster.allows(peer(7)), true)
  })

  it('a job not on chain admits anyone; a chain that cannot be read keeps the last roster', async () => {
    const none = new TrainerRoster(as('bob.test'), 'not-on-chain')
    await none.refresh()
    assert.equal(none.allows(peer(9)), true)
    let fail = false
    const ledger = as('bob.test')
    const flaky = { getJob: async (j: string) => { if (fail) throw new Error('rpc down'); return await ledger.getJob(j) }, getTrainers: async (j: string) => await ledger.getTrainers(j) }
    const roster = new TrainerRoster(flaky, 'bonded')
    await roster.refresh()
    assert.equal(roster.allows(peer(9)), false)
    fail = true
    await roster.refresh()
    assert.equal(roster.allows(peer(9)), false, 'the last roster stands')
    assert.equal(roster.allows(peer(1)), true)
  })
})
