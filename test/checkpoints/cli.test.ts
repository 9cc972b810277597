/**
 * `nearai checkpoint get` and `checkpoint verify` as a user runs them, on a home that holds the checkpoint in its
 * own blockstore and the anchor on its own dev chain: a folder written by `get` verifies, and a hand-tampered
 * model.json in it fails with a message naming model.json.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { loadConfig } from '../../node/config/load.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { withHomeNode } from '../../node/peer/with-node.ts'
import { publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { addDataset } from '../../node/storage/datasets.ts'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { DevChainLedger, openLedger } from '../../node/chain/index.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('nearai checkpoint get and verify', function () {
  this.timeout(180_000)
  let dir: string
  let home: string
  let cid: string
  let datasetCid: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    await tf.setBackend('cpu')
    dir = await mkdtemp(join(tmpdir(), 'nearai-ckpt-cli-'))
    home = join(dir, 'home')
    assert.equal((await runCli(['--home', home, 'init'])).code, 0)
    const ctx = { home, config: await loadConfig({ home }), logger: silentLogger() }
    await writeFile(join(dir, 'tiny.csv'), 'label,a,b\n1,2,3\n0,1,1\n')
    await withHomeNode(ctx, 'test setup', async (node) => {
      const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'relu' })] })
      const published = await publishCheckpoint(node.helia, { artifacts: await modelArtifacts(model), job: 'cli-job', round: 4, provide: false, contributions: [] })
      cid = published.cid.toString()
      datasetCid = (await addDataset(node.helia, join(dir, 'tiny.csv'), { name: 'tiny', license: 'MIT', shards: 1, provide: false })).cid.toString()
      // Anchored on the home's own dev chain by two validators.
      const owner = await openLedger({ network: 'dev', home, accountId: 'alice.test' })
      const chain = (owner as DevChainLedger).chain
      try {
        await owner.storageDeposit()
        await owner.createJob({ job: 'cli-job', specCid: datasetCid, evalCid: datasetCid, validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
        for (const v of ['validator-1.test', 'validator-2.test']) {
          const l = new DevChainLedger({ chain, accountId: v })
          await l.storageDeposit()
          await l.attest({ job: 'cli-job', round: 4, checkpointCid: cid, weightsSha256: published.manifest.weights.sha256, contributionsRoot: '0'.repeat(64), contributionsTotal: 64, evalLoss: 1.25 })
        }
      } finally {
        await owner.close()
      }
    })
  })

  after(async () => { await removeDir(dir) })

  it('writes the checkpoint folder, verifies it, and names model.json once it was tampered with', async () => {
    const out = join(dir, 'model')
    const get = await runCli(['--home', home, ...quiet, 'checkpoint', 'get', cid, '--out', out])
    assert.equal(get.code, 0, get.stderr)
    assert.match(get.stdout, /job cli-job round 4, weights sha256 [0-9a-f]{64} \(verified\), written to/)

    const ok = await runCli(['--home', home, ...quiet, 'checkpoint', 'verify', out])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, new RegExp(`^OK: folder ${out} matches the final anchor of job cli-job round 4: checkpoint ${cid}, weights sha256 [0-9a-f]{64} \\(attested by validator-1.test, validator-2.test\\)`))

    const modelJson = join(out, 'model.json')
    await writeFile(modelJson, (await readFile(modelJson, 'utf8')).replace('"relu"', '"tanh"'))
    const bad = await runCli(['--home', home, ...quiet, 'checkpoint', 'verify', out])
    assert.equal(bad.code, 2, bad.stdout + bad.stderr)
    assert.match(bad.stdout, new RegExp(`^FAILED \\(content-mismatch\\): folder ${out} \\(CID \\S+\\) is not the checkpoint anchored for job cli-job round 4 \\(${cid}\\): model\\.json differs: sha256 [0-9a-f]{64} here, [0-9a-f]{64} in the anchored checkpoint$`, 'm'))

    const byCid = await runCli(['--home', home, ...quiet, 'checkpoint', 'verify', cid])
    assert.equal(byCid.code, 0, byCid.stdout + byCid.stderr)
    assert.match(byCid.stdout, new RegExp(`^OK: checkpoint ${cid} matches the final anchor`))
  })

  it('says that a dataset CID is not a checkpoint', async () => {
    const r = await runCli(['--home', home, ...quiet, 'checkpoint', 'get', datasetCid, '--out', join(dir, 'x')])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, new RegExp(`${datasetCid} is not a checkpoint: it is a dag-cbor block`))
    assert.doesNotMatch(r.stderr, /Object did not have key/)
  })
})
