/**
 * Contribution rewards through the node's Ledger on the embedded dev chain: validators attest a round's
 * contributions (root and total) through CheckpointAttester, the DAO pays a reward per final round, and a trainer
 * builds its proof from the checkpoint's contributions and claims (node/chain/rewards.ts).
 */
import assert from 'node:assert/strict'
import { pino } from 'pino'
import {
  CheckpointAttester, ContributionsMismatchError, DevChain, DevChainLedger, LedgerCallError, RewardClaimantError, claimRewards, rewardsOf,
  type ContributionsOf
} from '../../node/chain/index.ts'
import type { Contribution } from '../../protocol/contributions.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'
import { devGenesis } from './helpers.ts'

const CONTRACT = 'nearai.test'
const JOB = 'reward-job'
const CID = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const R = 10n ** 21n
const keys = new TrainerKeys()

describe('contribution rewards through the Ledger on the dev chain', function () {
  this.timeout(60_000)
  let chain: DevChain
  let contributions: Contribution[]
  const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })
  const logger = pino({ level: 'silent' })
  /** The checkpoint's contributions by CID, as a node reads them from its checkpoint.json. */
  const checkpoints = new Map<string, Contribution[]>()
  const contributionsOf: ContributionsOf = async (cid) => {
    const c = checkpoints.get(cid)
    if (c == null) throw new Error(`no checkpoint ${cid}`)
    return c
  }

  before(async () => {
    await keys.make('e', 'd', 'x')
    contributions = [{ peer: keys.peer('e'), samples: 300 }, { peer: keys.peer('d'), samples: 500 }, { peer: keys.peer('x'), samples: 200 }]
    chain = await DevChain.open({ genesis: await devGenesis() })
    for (const a of ['alice.test', 'dave.test', 'eve.test']) await as(a).storageDeposit()
    await as(CONTRACT).daoInit({ initial: [['alice.test', 1000n]], params: { rewardPerRound: R } })
    await as('alice.test').createJob({ job: JOB, specCid: CID, evalCid: CID, validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
    for (const [account, k] of [['eve.test', 'e'], ['dave.test', 'd']]) {
      const l = as(account)
      await l.registerTrainer({ job: JOB, ...await keys.signed(k, CONTRACT, JOB, account), bondYocto: 0n })
    }
    for (const v of ['validator-1.test', 'validator-2.test']) {
      const out = await new CheckpointAttester({ ledger: as(v), job: JOB, logger }).attest({ round: 2, checkpointCid: CID, weightsSha256: 'a'.repeat(64), contributions, evalLoss: 0.5 })
      assert.equal(out.outcome, 'attested')
    }
    checkpoints.set(CID, contributions)
  })
  after(() => { chain.close() })

  it('shows what the peer earned per final round, claims it once with a proof from the checkpoint, and the Ledger reads it back', async () => {
    const eve = as('eve.test')
    assert.equal((await eve.daoParams()).reward_per_round, R.toString())
    const before = await rewardsOf({ ledger: eve, job: JOB, peerId: keys.peer('e'), contributionsOf })
    assert.deepEqual(before.map(r => [r.round, r.status, r.weight, r.earned, r.contributionsTotal]), [[2, 'pending', 300, R * 300n / 1000n, 1000]])

    const { claims } = await claimRewards({ ledger: eve, job: JOB, peerId: keys.peer('e'), contributionsOf })
    assert.deepEqual(claims.map(c => [c.round, c.account_id, c.amount]), [[2, 'eve.test', (R * 300n / 1000n).toString()]])
    assert.equal(await eve.ftBalanceOf(), R * 300n / 1000n)
    const reward = await eve.getReward(JOB, 2, keys.peer('e'))
    assert.deepEqual([reward?.claimed, reward?.amount, reward?.account_id], [true, (R * 300n / 1000n).toString(), 'eve.test'])
    assert.equal(await eve.rewardsMintedTotal(JOB), R * 300n / 1000n)

    const after = await rewardsOf({ ledger: eve, job: JOB, peerId: keys.peer('e'), contributionsOf })
    assert.deepEqual(after.map(r => [r.status, r.claimed]), [['claimed', R * 300n / 1000n]])
    // Nothing pending: a second run claims nothing; a direct second claim is refused by the contract.
    assert.deepEqual((await claimRewards({ ledger: eve, job: JOB, peerId: keys.peer('e'), contributionsOf })).claims, [])
    await assert.rejects(eve.claimReward({ job: JOB, round: 2, peerId: keys.peer('e'), weight: 300, proof: before[0].proof! }), (e: Error) => e instanceof LedgerCallError && /already claimed/.test(e.message))
  })

  it('refuses to claim for a peer bound to another account, and contributions that do not match the anchor', async () => {
    await assert.rejects(claimRewards({ ledger: as('eve.test'), job: JOB, peerId: keys.peer('d'), contributionsOf }), (e: Error) => e instanceof RewardClaimantError && /bound to dave\.test/.test(e.message))
    await assert.rejects(claimRewards({ ledger: as('alice.test'), job: JOB, peerId: keys.peer('x'), contributionsOf }), RewardClaimantError)
    const forged: ContributionsOf = async () => contributions.map(c => c.peer === keys.peer('d') ? { ...c, samples: 900 } : c)
    await assert.rejects(claimRewards({ ledger: as('dave.test'), job: JOB, peerId: keys.peer('d'), contributionsOf: forged }), ContributionsMismatchError)
    assert.equal(await as('dave.test').ftBalanceOf(), 0n)
  })
})
