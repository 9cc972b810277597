import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import type { Host } from '../../node/network/host.ts'
import { getCheckpoint } from '../../node/storage/checkpoints.ts'
import { HashMismatchError, InvalidContentError } from '../../node/storage/errors.ts'
import { buildModel } from '../../node/training/models.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import type { GlobalState } from '../../node/round/steps.ts'
import { loadState, MOMENTUM_FILE, MOMENTUM_ROLE, publishState } from '../../node/job/state-snapshot.ts'
import { startHost, stopAll } from '../storage/helpers.ts'

const SPEC = parseModelSpec({ kind: 'mlp', inputs: 8, hidden: [4], classes: 3 })
const SIZE = 8 * 4 + 4 + 4 * 3 + 3

/** The bytes of a float32 array: equality on these is bit-identity (-0, subnormals, exact mantissas). */
const bits = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

/** Values whose bits a lossy path would change: -0, the smallest subnormal, the largest float32, awkward fractions. */
function awkward (n: number, salt: number): Float32Array {
  const v = new Float32Array(n)
  for (let i = 0; i < n; i++) v[i] = Math.sin(i * 12.9898 + salt) * 43758.5453 % 1
  v[0] = -0
  v[1] = 1.401298464324817e-45
  v[2] = 3.4028234663852886e38
  v[3] = -1 / 3
  return v
}

describe('job: state snapshots on IPFS', function () {
  this.timeout(60_000)
  let a: Host
  let b: Host
  let model: tf.LayersModel

  before(async () => {
    await tf.setBackend('cpu')
    a = await startHost()
    b = await startHost({ bootstrap: a }) // connected to a, so bitswap can ask it
    model = buildModel(SPEC, 1)
  })

  after(async () => {
    model?.dispose()
    await stopAll([b, a])
  })

  it('round-trips weights and momentum bit for bit, with the round, job and the weights hash of the round', async () => {
    assert.equal(flattenWeights(model).length, SIZE, 'the tiny MLP has the size the test assumes')
    const state: GlobalState = { round: 4, weights: awkward(SIZE, 1), momentum: awkward(SIZE, 2) }
    const published = await publishState(a.helia, model, state, { job: 'tiny', parent: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', provide: false, metrics: { samples: 120 } })
    assert.equal(published.weightsSha256, weightsHash(state.weights))

    const checkpoint = await getCheckpoint(a.helia, published.cid, { offline: true, timeoutMs: 10_000 })
    assert.equal(checkpoint.manifest.weights.sha256, weightsHash(state.weights), 'the checkpoint commits to the round\'s weights hash')
    assert.equal(checkpoint.manifest.round, 4)
    assert.equal(checkpoint.manifest.job, 'tiny')
    assert.equal(checkpoint.manifest.parent, 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')
    const momentumFile = checkpoint.manifest.extraFiles.find(f => f.path === MOMENTUM_FILE)
    assert.equal(momentumFile?.role, MOMENTUM_ROLE)

    const loaded = await loadState(a.helia, published.cid, { size: SIZE, expectedWeightsSha256: published.weightsSha256, offline: true })
    assert.equal(loaded.round, 4)
    assert.equal(loaded.job, 'tiny')
    assert.deepEqual(bits(loaded.weights), bits(state.weights))
    assert.deepEqual(bits(loaded.momentum), bits(state.momentum))
    assert.ok(Object.is(loaded.weights[0], -0), 'negative zero survives')
  })

  it('stores no momentum file for a state without momentum, and loads it back empty', async () => {
    const state: GlobalState = { round: 0, weights: awkward(SIZE, 3), momentum: new Float32Array(0) }
    const published = await publishState(a.helia, model, state, { job: 'tiny', provide: false })
    const checkpoint = await getCheckpoint(a.helia, published.cid, { offline: true, timeoutMs: 10_000 })
    assert.equal(checkpoint.manifest.extraFiles.length, 0)
    const loaded = await loadState(a.helia, published.cid, { size: SIZE, offline: true })
    assert.equal(loaded.momentum.length, 0)
    assert.deepEqual(bits(loaded.weights), bits(state.weights))
  })

  it('refuses a state whose weights hash is not the expected one, or of another model size', async () => {
    const state: GlobalState = { round: 2, weights: awkward(SIZE, 4), momentum: awkward(SIZE, 5) }
    const published = await publishState(a.helia, model, state, { job: 'tiny', provide: false })
    const other = weightsHash(awkward(SIZE, 6))
    await assert.rejects(loadState(a.helia, published.cid, { size: SIZE, expectedWeightsSha256: other, offline: true }), (err: Error) => {
      assert.ok(err instanceof HashMismatchError, `${err.name}: ${err.message}`)
      assert.equal(err.expected, other)
      assert.equal(err.actual, published.weightsSha256)
      return true
    })

    const bigger = buildModel(parseModelSpec({ kind: 'mlp', inputs: 8, hidden: [5], classes: 3 }), 1)
    const biggerSize = flattenWeights(bigger).length
    bigger.dispose()
    assert.notEqual(biggerSize, SIZE)
    await assert.rejects(loadState(a.helia, published.cid, { size: biggerSize, offline: true }), (err: Error) => {
      assert.ok(err instanceof InvalidContentError, `${err.name}: ${err.message}`)
      assert.match(err.message, new RegExp(`${SIZE} weights, the job's model ${biggerSize}`))
      return true
    })
  })

  it('a fetch refused for a wrong hash can be retried with the right one (blocks already local, no DHT provider)', async () => {
    const state: GlobalState = { round: 8, weights: awkward(SIZE, 17), momentum: awkward(SIZE, 18) }
    const published = await publishState(a.helia, model, state, { job: 'tiny', provide: false })
    await assert.rejects(loadState(b.helia, published.cid, { size: SIZE, expectedWeightsSha256: '0'.repeat(64), timeoutMs: 20_000 }), HashMismatchError)
    const fetched = await loadState(b.helia, published.cid, { size: SIZE, expectedWeightsSha256: published.weightsSha256, timeoutMs: 20_000 })
    assert.deepEqual(bits(fetched.weights), bits(state.weights))
  })

  it('lets a connected node fetch the state over bitswap', async () => {
    const state: GlobalState = { round: 7, weights: awkward(SIZE, 7), momentum: awkward(SIZE, 8) }
    const published = await publishState(a.helia, model, state, { job: 'tiny', provide: false })
    assert.equal(await b.helia.blockstore.has(published.cid), false, 'b does not hold the state before fetching it')
    await assert.rejects(loadState(b.helia, published.cid, { size: SIZE, offline: true, timeoutMs: 5_000 }), 'an offline load on b fails: the blocks can only come from a')

    const fetched = await loadState(b.helia, published.cid, { size: SIZE, expectedWeightsSha256: published.weightsSha256, timeoutMs: 20_000 })
    assert.equal(fetched.round, 7)
    assert.deepEqual(bits(fetched.weights), bits(state.weights))
    assert.deepEqual(bits(fetched.momentum), bits(state.momentum))
    assert.equal(await b.helia.blockstore.has(published.cid), true)
  })
})
