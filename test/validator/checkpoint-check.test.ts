import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../node/network/host.ts'
import { publishState } from '../../node/job/state-snapshot.ts'
import { buildModel } from '../../node/training/models.ts'
import { parseJobSpec, type JobSpec } from '../../node/training/job-spec.ts'
import { seededRandom, type Samples } from '../../node/training/local-trainer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { evaluateDeterministic } from '../../node/training/deterministic-eval.ts'
import { checkCheckpoint, CheckpointRejectedError } from '../../node/validator/checkpoint-check.ts'
import { checkpointRounds } from '../../node/validator/job-validator.ts'
import { JobNotValidatableError, onChainJob, requireValidatable } from '../../node/validator/job-requirements.ts'
import { contributionsRoot } from '../../protocol/contributions.ts'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const peer = (i: number): string => '12D3KooW' + B58[i % 58] + 'z'.repeat(43)
const EVAL_CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

function spec (over: Record<string, unknown> = {}): JobSpec {
  return parseJobSpec({ id: 'check-job', model: { kind: 'mlp', inputs: 8, hidden: [6], classes: 3 }, dataset: EVAL_CID, evalDataset: EVAL_CID, seed: 2, ...over })
}

function evalSet (count: number): Samples {
  const rand = seededRandom(5)
  return { x: Float32Array.from({ length: count * 8 }, () => rand() * 2 - 1), y: Int32Array.from({ length: count }, () => Math.floor(rand() * 3)), count, featureShape: [8], numClasses: 3 }
}

describe('validator: checking a checkpoint before attesting it', function () {
  this.timeout(60_000)
  let host: Host
  const job = spec()
  const data = evalSet(50)
  const contributions = [{ peer: peer(4), samples: 300 }, { peer: peer(2), samples: 200 }]

  before(async () => {
    await tf.setBackend('cpu')
    host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 10 })
  })
  after(async () => { await host?.stop() })

  async function publish (round: number, over: { model?: tf.LayersModel, job?: string, contributions?: typeof contributions | null } = {}): Promise<{ cid: any, weightsSha256: string, weights: Float32Array }> {
    const model = over.model ?? buildModel(job.model, job.seed)
    const weights = flattenWeights(model).map((w, i) => w + Math.sin(i + round) * 0.01)
    const published = await publishState(host.helia, model, { round, weights, momentum: new Float32Array(0) }, {
      job: over.job ?? job.id, provide: false, ...(over.contributions !== null ? { contributions: over.contributions ?? contributions } : {})
    })
    return { ...published, weights }
  }

  it('returns the claim computed from the checkpoint alone: its CID, weights hash, contributions and deterministic loss', async () => {
    const p = await publish(3)
    const claim = await checkCheckpoint(host.helia, p.cid, { spec: job, evalSet: data, round: 3, expectedWeightsSha256: p.weightsSha256, timeoutMs: 10_000 })
    assert.equal(claim.checkpointCid, p.cid.toString())
    assert.equal(claim.weightsSha256, p.weightsSha256)
    assert.deepEqual(claim.contributions, [...contributions].sort((a, b) => a.peer < b.peer ? -1 : 1))
    assert.equal(contributionsRoot(job.id, 3, claim.contributions), contributionsRoot(job.id, 3, contributions))
    // The same evaluation a training peer runs on the weights it holds (not read back from the checkpoint).
    assert.equal(claim.evaluation.loss, evaluateDeterministic(job.model, p.weights, data).loss)
    assert.equal(claim.evaluation.samples, 50)
  })

  it('refuses another round, another job, another model, no contributions and a weights hash other than announced', async () => {
    const rejected = async (cid: any, round: number, re: RegExp, opts: { expected?: string, spec?: JobSpec } = {}): Promise<void> => {
      await assert.rejects(checkCheckpoint(host.helia, cid, { spec: opts.spec ?? job, evalSet: data, round, expectedWeightsSha256: opts.expected, timeoutMs: 10_000 }), (err: Error) => {
        assert.ok(err instanceof CheckpointRejectedError, `${err.name}: ${err.message}`)
        assert.equal(err.retry, false, 'content that is wrong is not fetched again')
        assert.match(err.message, re)
        return true
      })
    }
    const p = await publish(5)
    await rejected(p.cid, 4, /is job check-job round 5, not job check-job round 4/)
    await rejected((await publish(5, { job: 'other-job' })).cid, 5, /is job other-job round 5, not job check-job round 5/)
    await rejected((await publish(5, { model: buildModel({ kind: 'mlp', inputs: 8, hidden: [7], activation: 'relu', dropout: 0, classes: 3 }, 2) })).cid, 5, /model\.json describes weights \[8,7\] \[7\] \[7,3\] \[3\], the job's mlp has \[8,6\] \[6\] \[6,3\] \[3\]/)
    await rejected((await publish(5, { contributions: null })).cid, 5, /lists no contributions/)
    await rejected(p.cid, 5, /weights of checkpoint \S+ have SHA-256 [0-9a-f]{64}, expected f{64}/, { expected: 'f'.repeat(64) })
  })

  it('knows the checkpoint rounds, and what a job on chain must name', () => {
    assert.deepEqual(checkpointRounds(10, 5), [4, 9])
    assert.deepEqual(checkpointRounds(4, 3), [2, 3])
    assert.deepEqual(checkpointRounds(2, 5), [1])
    assert.equal(requireValidatable(job), EVAL_CID)
    assert.deepEqual(onChainJob(job, 'bafyspec', ['v1.test'], 1), { job: 'check-job', specCid: 'bafyspec', evalCid: EVAL_CID, validators: ['v1.test'], threshold: 1 })
    assert.throws(() => requireValidatable(spec({ evalDataset: undefined })), (e: Error) => e instanceof JobNotValidatableError && /names no evaluation set: a job on chain needs "evalDataset"/.test(e.message))
    assert.throws(() => requireValidatable(spec({ evalDataset: 'not-a-cid' })), /evalDataset "not-a-cid" is not a CID/)
    assert.throws(() => requireValidatable(spec({ model: { kind: 'cnn', inputShape: [4, 4, 1], conv: [{ filters: 2, kernel: 3 }], classes: 3 } })), /cnn is not supported/)
  })
})
