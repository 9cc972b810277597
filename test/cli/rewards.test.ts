/**
 * `nearai rewards show` and `rewards claim` as a user runs them: a home holding a final checkpoint in its own
 * blockstore, anchored on its own dev chain (root and total of the checkpoint's contributions) while the DAO pays a
 * reward per round; the home's peer registers as a trainer, sees its pending share, claims it, and sees it claimed.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig } from '../../node/config/load.ts'
import { loadIdentity } from '../../node/config/home.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { withHomeNode } from '../../node/peer/with-node.ts'
import { publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { CheckpointAttester, DevChainLedger, openLedger } from '../../node/chain/index.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'

const R = 1000n

describe('nearai rewards show and claim', function () {
  this.timeout(180_000)
  let dir: string
  let home: string
  let peerId: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    await tf.setBackend('cpu')
    dir = await mkdtemp(join(tmpdir(), 'nearai-rewards-cli-'))
    home = join(dir, 'home')
    assert.equal((await runCli(['--home', home, 'init'])).code, 0)
    peerId = peerIdFromPrivateKey(await loadIdentity(home)).toString()
    const other = (await new TrainerKeys().make('o')).peer('o')
    const contributions = [{ peer: peerId, samples: 30 }, { peer: other, samples: 70 }]
    const ctx = { home, config: await loadConfig({ home }), logger: silentLogger() }
    await withHomeNode(ctx, 'test setup', async (node) => {
      const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] })
      const published = await publishCheckpoint(node.helia, { artifacts: await modelArtifacts(model), job: 'rw-job', round: 3, provide: false, contributions })
      const owner = await openLedger({ network: 'dev', home, accountId: 'alice.test' })
      const chain = (owner as DevChainLedger).chain
      try {
        await owner.storageDeposit()
        await new DevChainLedger({ chain, accountId: 'eve.test' }).storageDeposit()
        await new DevChainLedger({ chain, accountId: 'nearai.test' }).daoInit({ initial: [['alice.test', 10n]], params: { rewardPerRound: R } })
        await owner.createJob({ job: 'rw-job', specCid: published.cid.toString(), evalCid: published.cid.toString(), validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
        for (const v of ['validator-1.test', 'validator-2.test']) {
          const out = await new CheckpointAttester({ ledger: new DevChainLedger({ chain, accountId: v }), job: 'rw-job', logger: silentLogger() })
            .attest({ round: 3, checkpointCid: published.cid.toString(), weightsSha256: published.manifest.weights.sha256, contributions, evalLoss: 0.75 })
          assert.equal(out.outcome, 'attested')
        }
      } finally {
        await owner.close()
      }
    })
  })

  after(async () => { await removeDir(dir) })

  it('shows the pending share, claims it as the registered account, then shows it claimed', async () => {
    const reg = await runCli(['--home', home, ...quiet, 'job', 'register-trainer', '--job', 'rw-job', '--account', 'eve.test'])
    assert.equal(reg.code, 0, reg.stderr)

    const show = await runCli(['--home', home, ...quiet, 'rewards', 'show', '--job', 'rw-job', '--json'])
    assert.equal(show.code, 0, show.stderr)
    const before = JSON.parse(show.stdout)
    assert.deepEqual([before.peerId, before.earned, before.pending, before.claimed], [peerId, '300', '300', '0'])
    assert.deepEqual(before.rounds.map((r: any) => [r.round, r.status, r.weight, r.contributionsTotal, r.roundReward]), [[3, 'pending', 30, 100, '1000']])

    const wrong = await runCli(['--home', home, ...quiet, 'rewards', 'claim', '--job', 'rw-job', '--account', 'dave.test'])
    assert.notEqual(wrong.code, 0)
    assert.match(wrong.stderr, /is bound to eve\.test on job rw-job, not to dave\.test/)

    const claim = await runCli(['--home', home, ...quiet, 'rewards', 'claim', '--job', 'rw-job', '--account', 'eve.test', '--json'])
    assert.equal(claim.code, 0, claim.stderr)
    const paid = JSON.parse(claim.stdout)
    assert.deepEqual([paid.account, paid.paid, paid.claims.map((c: any) => [c.round, c.amount])], ['eve.test', '300', [[3, '300']]])

    const after = await runCli(['--home', home, ...quiet, 'rewards', 'show', '--job', 'rw-job'])
    assert.equal(after.code, 0, after.stderr)
    assert.match(after.stdout, /earned 300, claimed 300, pending 0 \(token units\) over 1 final round\(s\)/)
    assert.match(after.stdout, /round 3\tclaimed\t30\/100 samples\tearned 300 of 1000\tclaimed 300/)
    const again = await runCli(['--home', home, ...quiet, 'rewards', 'claim', '--job', 'rw-job', '--account', 'eve.test'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /nothing to claim/)
  })
})
