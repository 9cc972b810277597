import assert from 'node:assert/strict'
import { world, NEAR, CONTRACT, eventLogs, hex32 } from './helpers.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'
import { contributionProof, contributionsRoot, type Contribution } from '../../protocol/contributions.ts'

const JOB = 'rewarded'
const VALIDATORS = ['bob.test', 'carol.test', 'dave.test']
const TRAINERS: Array<[string, string]> = [['eve.test', 'a'], ['frank.test', 'b'], ['grace.test', 'c']]
const ACCOUNTS = ['alice.test', ...VALIDATORS, ...TRAINERS.map(t => t[0]), 'harry.test']
const keys = new TrainerKeys()
const peer = (c: string): string => keys.peer(c)
const floorShare = (r: bigint, w: number, total: number): bigint => r * BigInt(w) / BigInt(total)
const sum = (cs: Contribution[]): number => cs.reduce((s, c) => s + c.samples, 0)

/** Job with validators bob/carol/dave (threshold 2), eve/frank/grace registered as peers a/b/c, the DAO set up with `params`. */
async function setup (params: Record<string, unknown>) {
  const w = await world(ACCOUNTS)
  for (const a of ACCOUNTS) await w.call(a, 'storage_deposit', {}, { deposit: NEAR / 10n })
  await w.call(CONTRACT, 'dao_init', { initial: [['alice.test', '1000']], params: { quorum_bps: 5000, voting_period_blocks: 5, ...params } })
  await w.call('alice.test', 'create_job', { job: JOB, spec_cid: 'bafyspec', eval_cid: 'bafyeval', validators: VALIDATORS, threshold: 2 })
  for (const [account, c] of TRAINERS) await w.call(account, 'register_trainer', await keys.args(c, CONTRACT, JOB, account))
  /** The round's attestation by `validators`, committing to `contributions` (total = their sum unless given). */
  const attest = async (round: number, contributions: Contribution[], validators = VALIDATORS.slice(0, 2), total = sum(contributions)) => {
    let last: any
    for (const v of validators) {
      last = (await w.call(v, 'attest', {
        job: JOB, round, checkpoint_cid: `bafyround${round}`, weights_sha256: hex32('a'),
        contributions_root: contributionsRoot(JOB, round, contributions), contributions_total: total, eval_loss: 0.5
      })).value
    }
    return last
  }
  const claimArgs = (round: number, contributions: Contribution[], c: string) => ({
    job: JOB, round, peer_id: peer(c), weight: contributions.find(x => x.peer === peer(c))!.samples, proof: contributionProof(JOB, round, contributions, peer(c))
  })
  const balance = async (a: string): Promise<bigint> => BigInt(await w.view('ft_balance_of', { account_id: a }))
  return { ...w, attest, claimArgs, balance }
}

describe('contract: contribution rewards (compiled wasm in the harness)', () => {
  let round1: Contribution[]
  before(async () => {
    await keys.make('a', 'b', 'c', 'd')
    // d contributed but never registered: its share stays unminted, like the rounding dust.
    round1 = [{ peer: peer('a'), samples: 3 }, { peer: peer('b'), samples: 5 }, { peer: peer('c'), samples: 7 }, { peer: peer('d'), samples: 11 }]
  })

  it('claims pay exactly floor(R × weight / total) to the bound account, once, and the totals add up', async () => {
    const R = 1000n
    const w = await setup({ reward_per_round: R.toString() })
    const anchors = await w.attest(1, round1)
    assert.equal(anchors.final.reward, R.toString())
    assert.equal(anchors.final.contributions_total, 26)
    let minted = 0n
    for (const [account, c] of TRAINERS) {
      const { value, outcome } = await w.call(account, 'claim_reward', w.claimArgs(1, round1, c))
      const weight = round1.find(x => x.peer === peer(c))!.samples
      const expected = floorShare(R, weight, 26)
      assert.equal(value.amount, expected.toString())
      assert.deepEqual([value.account_id, value.weight, value.contributions_total, value.round_reward], [account, weight, 26, R.toString()])
      assert.equal(await w.balance(account), expected)
      const ev = eventLogs(outcome, 'nearai').filter(e => e.event === 'reward_claimed')
      assert.deepEqual(ev.map(e => [e.data[0].peer_id, e.data[0].amount]), [[peer(c), expected.toString()]])
      assert.deepEqual(eventLogs(outcome, 'nep141').map(e => [e.event, e.data[0].owner_id, e.data[0].amount]), [['ft_mint', account, expected.toString()]])
      minted += expected
    }
    assert.equal(minted, 115n + 192n + 269n) // 3/26, 5/26, 7/26 of 1000, floored
    assert.equal(await w.view('rewards_minted_total', { job: JOB }), minted.toString())
    assert.equal(await w.view('rewards_minted_total', {}), minted.toString())
    assert.equal(await w.view('ft_total_supply', {}), (1000n + minted).toString())
    assert.ok(minted <= R)
    const view = await w.view('get_reward', { job: JOB, round: 1, peer_id: peer('b') })
    assert.deepEqual(view, {
      job: JOB, round: 1, peer_id: peer('b'), final: true, round_reward: '1000', contributions_total: 26, round_minted: minted.toString(),
      claimed: true, account_id: 'frank.test', weight: 5, amount: '192', claimed_at_block: view.claimed_at_block
    })
    const unclaimed = await w.view('get_reward', { job: JOB, round: 1, peer_id: peer('d') })
    assert.deepEqual([unclaimed.claimed, unclaimed.amount], [false, null])
    // A second claim of the same leaf is refused, and nothing more is minted.
    await assert.rejects(w.call('eve.test', 'claim_reward', w.claimArgs(1, round1, 'a')), /was already claimed/)
    assert.equal(await w.view('rewards_minted_total', { job: JOB }), minted.toString())
  })

  it('refuses forged proofs, claims by accounts not bound to the peer, slashed trainers and rounds that are not final', async () => {
    const w = await setup({ reward_per_round: '1000' })
    await w.attest(1, round1)
    const round2 = [{ peer: peer('a'), samples: 40 }, { peer: peer('b'), samples: 60 }]
    await w.attest(2, round2)
    const good = w.claimArgs(1, round1, 'a')
    await assert.rejects(w.call('eve.test', 'claim_reward', { ...good, weight: good.weight + 1 }), /the proof does not show/)
    // frank claims its own peer b with a's weight and proof
    await assert.rejects(w.call('frank.test', 'claim_reward', { ...good, peer_id: peer('b') }), /the proof does not show/)
    // round 1's proof and weight offered for round 2
    await assert.rejects(w.call('eve.test', 'claim_reward', { ...good, round: 2 }), /the proof does not show/)
    await assert.rejects(w.call('eve.test', 'claim_reward', { ...good, proof: [...good.proof, hex32('0')] }), /the proof does not show/)
    await assert.rejects(w.call('eve.test', 'claim_reward', { ...good, proof: ['zz'] }), /proof\[0\] must be 64 lowercase hex/)
    await assert.rejects(w.call('eve.test', 'claim_reward', { ...good, proof: Array(65).fill(hex32('0')) }), /more than 64 hashes/)
    // Someone else's peer: harry is bound to nothing, frank is bound to b; d is bound to nobody.
    await assert.rejects(w.call('harry.test', 'claim_reward', good), /is bound to eve\.test on job rewarded: only that account/)
    await assert.rejects(w.call('frank.test', 'claim_reward', good), /is bound to eve\.test/)
    await assert.rejects(w.call('harry.test', 'claim_reward', w.claimArgs(1, round1, 'd')), /is not bound to a trainer of job rewarded/)
    // Round 3 has one attestation of two: not final.
    const round3 = [{ peer: peer('a'), samples: 1 }]
    await w.attest(3, round3, ['bob.test'])
    await assert.rejects(w.call('eve.test', 'claim_reward', w.claimArgs(3, round3, 'a')), /round 3 of job rewarded is not final/)
    assert.equal((await w.view('get_reward', { job: JOB, round: 3, peer_id: peer('a') })).final, false)
    // grace (peer c) is slashed by two validators: its claim is refused.
    for (const v of ['bob.test', 'carol.test']) await w.call(v, 'report_cheat', { job: JOB, account_id: 'grace.test', round: 1, reason: 'poisoned update' })
    await assert.rejects(w.call('grace.test', 'claim_reward', w.claimArgs(1, round1, 'c')), /was slashed: it earns no rewards/)
    assert.equal(await w.view('rewards_minted_total', {}), '0')
    // The honest claims still pay, round 2 by its own proof.
    const r2 = await w.call('eve.test', 'claim_reward', w.claimArgs(2, round2, 'a'))
    assert.equal(r2.value.amount, '400')
    assert.equal(await w.view('rewards_minted_total', { job: JOB }), '400')
  })

  it('a round keeps the reward it finalized with: a later params change pays only rounds final after it', async () => {
    const w = await setup({ reward_per_round: '1000' })
    await w.attest(1, round1)
    const { value: pr } = await w.call('alice.test', 'dao_propose', { kind: 'params', description: 'raise rewards', params: { reward_per_round: '5000' } }, { deposit: NEAR })
    await w.call('alice.test', 'dao_vote', { id: pr.id, vote: 'yes' })
    const fin = await w.call('bob.test', 'dao_finalize', { id: pr.id })
    assert.equal(fin.value.status, 'passed')
    assert.equal((await w.view('dao_params', {})).reward_per_round, '5000')
    await w.attest(2, round1)
    assert.equal((await w.view('get_anchor', { job: JOB, round: 1 })).final.reward, '1000')
    assert.equal((await w.view('get_anchor', { job: JOB, round: 2 })).final.reward, '5000')
    const one = await w.call('frank.test', 'claim_reward', w.claimArgs(1, round1, 'b'))
    const two = await w.call('frank.test', 'claim_reward', w.claimArgs(2, round1, 'b'))
    assert.deepEqual([one.value.amount, two.value.amount], [floorShare(1000n, 5, 26).toString(), floorShare(5000n, 5, 26).toString()])
    assert.equal(await w.view('rewards_minted_total', { job: JOB }), (floorShare(1000n, 5, 26) + floorShare(5000n, 5, 26)).toString())
  })

  it('without reward_per_round (the default 0) a final round pays nothing; the parameter is bounded', async () => {
    const w = await setup({})
    assert.equal((await w.view('dao_params', {})).reward_per_round, '0')
    const anchors = await w.attest(1, round1)
    assert.equal(anchors.final.reward, '0')
    await assert.rejects(w.call('eve.test', 'claim_reward', w.claimArgs(1, round1, 'a')), /carries no reward/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'params', description: 'too much', params: { reward_per_round: (10n ** 33n + 1n).toString() } }, { deposit: NEAR }), /reward_per_round must be at most/)
    await assert.rejects(w.call('alice.test', 'dao_propose', { kind: 'params', description: 'bad', params: { reward_per_round: 5 } }, { deposit: NEAR }), /reward_per_round must be a decimal string/)
  })

  it('computes shares exactly for a 10^33 reward and weights near 2^53 (a product beyond 128 bits)', async () => {
    const R = 10n ** 33n - 7n
    const w = await setup({ reward_per_round: R.toString() })
    const big = [{ peer: peer('a'), samples: 2 ** 52 - 1 }, { peer: peer('b'), samples: 2 ** 52 }] // total 2^53 - 1
    await w.attest(4, big)
    const a = await w.call('eve.test', 'claim_reward', w.claimArgs(4, big, 'a'))
    const b = await w.call('frank.test', 'claim_reward', w.claimArgs(4, big, 'b'))
    const total = 2 ** 53 - 1
    assert.equal(a.value.amount, floorShare(R, 2 ** 52 - 1, total).toString())
    assert.equal(b.value.amount, floorShare(R, 2 ** 52, total).toString())
    assert.ok(BigInt(a.value.amount) + BigInt(b.value.amount) <= R)
  })

  it('never mints more than a round\'s reward, even when its validators anchored a total below the sum of its leaves', async () => {
    const w = await setup({ reward_per_round: '1000' })
    const cs = [{ peer: peer('a'), samples: 5 }, { peer: peer('b'), samples: 5 }]
    await w.attest(1, cs, VALIDATORS.slice(0, 2), 5) // a wrong total: 5 instead of 10
    assert.equal((await w.call('eve.test', 'claim_reward', w.claimArgs(1, cs, 'a'))).value.amount, '1000')
    await assert.rejects(w.call('frank.test', 'claim_reward', w.claimArgs(1, cs, 'b')), /would exceed its reward of 1000/)
    const over = [{ peer: peer('a'), samples: 9 }, { peer: peer('b'), samples: 1 }]
    await w.attest(2, over, VALIDATORS.slice(0, 2), 4)
    await assert.rejects(w.call('eve.test', 'claim_reward', w.claimArgs(2, over, 'a')), /exceeds the round's contributions_total 4/)
    assert.equal(await w.view('rewards_minted_total', {}), '1000')
  })

  it('validators agree on contributions_total: a different total is another candidate', async () => {
    const w = await setup({ reward_per_round: '1000' })
    const cs = [{ peer: peer('a'), samples: 5 }]
    await w.attest(1, cs, ['bob.test'], 5)
    const r = await w.attest(1, cs, ['carol.test'], 6)
    assert.equal(r.final, null)
    assert.deepEqual(r.candidates.map((c: any) => c.contributions_total), [5, 6])
    await assert.rejects(w.call('dave.test', 'attest', { job: JOB, round: 1, checkpoint_cid: 'bafyround1', weights_sha256: hex32('a'), contributions_root: hex32('b'), eval_loss: 0.5 }), /missing argument: contributions_total/)
    const fin = await w.attest(1, cs, ['dave.test'], 5)
    assert.equal(fin.final.contributions_total, 5)
  })
})
