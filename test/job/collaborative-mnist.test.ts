/**
 * Must-show of collaborative training: 4 peer processes (`nearai node start --job`) train the MNIST MLP over
 * the real network (shards from IPFS, butterfly all-reduce over libp2p, fp16 updates), and the result is
 * checked from outside: every peer reports the same weights hash, the final checkpoint fetched from IPFS has
 * that hash, its held-out accuracy is at least 93%, and one process training alone on the same number of
 * samples lands within 1.5 points of it.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as tf from '@tensorflow/tfjs'
import { getCheckpoint } from '../../node/storage/checkpoints.ts'
import { selectBackend, type BackendName } from '../../node/training/backend.ts'
import { loadMnist } from '../../node/training/data/mnist.ts'
import { buildModel } from '../../node/training/models.ts'
import { evaluateWithLoss, trainLocal } from '../../node/training/local-trainer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { loadState } from '../../node/job/state-snapshot.ts'
import { startTestNetwork, type TestNetwork } from './network.ts'

describe('collaborative training: 4 peer processes train the MNIST MLP (DiLoCo over libp2p)', function () {
  this.timeout(900_000)
  let net: TestNetwork
  let previousBackend: string
  before(async () => { previousBackend = tf.getBackend() })
  after(async function () {
    await net?.stop(this.test?.parent?.tests.some(t => t.state === 'failed') === true)
    await selectBackend({ force: previousBackend as BackendName })
  })

  it('ends with identical weights on every peer, ≥93% held-out accuracy, within 1.5 points of one process alone', async () => {
    net = await startTestNetwork({ peers: 4, job: { rounds: 10, checkpointEvery: 5 } })
    for (let i = 0; i < 4; i++) net.start(i)
    const done = await Promise.all(net.peers.map(async p => await p.waitFor(l => l.event === 'job-done', 800_000, 'job-done')))

    // Every peer holds the same weights.
    const hashes = done.map(d => d.hash as string)
    assert.equal(new Set(hashes).size, 1, `weights hashes differ: ${hashes.join(', ')}`)
    // The rounds really were collaborative: most rounds averaged all 4 peers' updates.
    const rounds = net.peers[0].rounds()
    assert.equal(rounds.at(-1)?.round, 9)
    const fullRounds = rounds.filter(r => r.peers === 4).length
    assert.ok(fullRounds >= 7, `only ${fullRounds} of ${rounds.length} rounds had all 4 peers`)

    // Independent check: fetch the final checkpoint from IPFS, verify it, evaluate it here.
    const finalCid = done[0].stateCid as string
    const checkpoint = await getCheckpoint(net.boot.helia, CID.parse(finalCid), { timeoutMs: 30_000, expectedWeightsSha256: hashes[0] })
    assert.equal(checkpoint.manifest.round, 9)
    await selectBackend({ force: 'wasm' })
    const model = buildModel(net.spec.model, net.spec.seed)
    const size = flattenWeights(model).length
    const state = await loadState(net.boot.helia, CID.parse(finalCid), { size, expectedWeightsSha256: hashes[0], timeoutMs: 30_000 })
    assert.equal(weightsHash(state.weights), hashes[0])
    const { train, test } = loadMnist({ train: 8000, seed: 7 })
    assert.equal(test.count, net.data.heldOutSamples)
    const collaborative = evaluateWithLoss(model, state.weights, test).accuracy
    assert.ok(collaborative >= 0.93, `held-out accuracy ${(collaborative * 100).toFixed(2)}% is below 93%`)

    // The centralized baseline shares nothing with the run it checks: a fresh model built from the job's seed
    // (the weights every peer started from), the same 8,000 training digits, the same number of samples the
    // peers trained in all, one process, the same inner optimizer.
    const totalSamples = rounds.reduce((s, r) => s + (r.contributions as Array<{ samples: number }>).reduce((a, c) => a + c.samples, 0), 0)
    const baseline = buildModel(net.spec.model, net.spec.seed)
    const initial = flattenWeights(baseline)
    assert.notEqual(weightsHash(initial), hashes[0], 'the baseline must start from the initial weights, not the trained ones')
    const steps = Math.round(totalSamples / net.spec.inner.batchSize)
    const alone = await trainLocal(baseline, initial, train, { ...net.spec.inner, steps, seed: 11 })
    const centralWeights = initial.map((w, i) => w - alone.pseudoGradient[i])
    const centralized = evaluateWithLoss(baseline, centralWeights, test).accuracy
    baseline.dispose()
    console.log(`      held-out accuracy: collaborative ${(collaborative * 100).toFixed(2)}% (4 peers, ${rounds.length} rounds), centralized ${(centralized * 100).toFixed(2)}% (${steps} steps, ${totalSamples} samples)`)
    assert.ok(Math.abs(collaborative - centralized) <= 0.015, `collaborative ${collaborative} vs centralized ${centralized}: more than 1.5 points apart`)
    model.dispose()
  })
})
