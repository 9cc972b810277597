import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import type { Host } from '../../node/network/host.ts'
import { StatePublisher } from '../../node/round/publish-step.ts'
import { HeldOutEvaluator } from '../../node/round/evaluate-step.ts'
import { attestStep } from '../../node/round/attest-step.ts'
import type { GlobalState, RoundResult } from '../../node/round/steps.ts'
import { loadStatePointer } from '../../node/job/job-store.ts'
import { loadState } from '../../node/job/state-snapshot.ts'
import type { AttestOutcome, CheckpointAttestationInput } from '../../node/chain/index.ts'
import { evaluateWithLoss, type Samples } from '../../node/training/local-trainer.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { startHost, stopAll } from '../storage/helpers.ts'

const SPEC = parseModelSpec({ kind: 'mlp', inputs: 4, hidden: [3], classes: 2 })

/** A contributor: checkpoints carry their round's contributions, which must name real peer ids. */
const PEER = '12D3KooWSP9YVXdhQhThpVD44PMqPToV8kmhWbVvfPWPwrcqfctS'

function result (round: number, weights: Float32Array, checkpoint: boolean): Omit<RoundResult, 'stateCid' | 'evaluation'> {
  return { round, weightsSha256: weightsHash(weights), loss: 0.5, samples: 10, contributions: [{ peer: PEER, samples: 10 }], dropped: [], standIns: [], bytesSent: 0, bytesReceived: 0, checkpoint, millis: 1 }
}

describe('the publish, evaluate and attest steps', function () {
  this.timeout(60_000)
  let boot: Host
  let host: Host
  let home: string
  let model: tf.LayersModel
  before(async () => {
    await tf.setBackend('cpu')
    boot = await startHost()
    host = await startHost({ bootstrap: boot }) // a checkpoint is provided on the DHT: it needs a peer there
    home = await mkdtemp(join(tmpdir(), 'nearai-publish-step-'))
    model = buildModel(SPEC, 3)
  })
  after(async () => {
    model?.dispose()
    await stopAll([host, boot])
    await removeDir(home)
  })

  it('publish: the state on IPFS, the local pointer, then the announcement; in-between snapshots are unpinned, checkpoints kept', async () => {
    const announced: Array<{ round: number, hash: string, cid?: string }> = []
    const publisher = new StatePublisher({ helia: host.helia, model, home, job: 'job', announcer: { announce: async (round, hash, cid) => { announced.push({ round, hash, cid }) } } })
    const size = flattenWeights(model).length
    const states: GlobalState[] = [0, 1, 2].map(r => ({ round: r, weights: Float32Array.from({ length: size }, (_v, i) => Math.sin(i + r)), momentum: new Float32Array(size).fill(r) }))
    const cids: string[] = []
    for (const [r, checkpoint] of [[0, false], [1, true], [2, false]] as const) {
      cids.push(await publisher.publish(states[r], result(r, states[r].weights, checkpoint)))
      assert.deepEqual(await loadStatePointer(home, 'job'), { round: r, cid: cids[r], weightsSha256: weightsHash(states[r].weights) })
      assert.deepEqual(announced[r], { round: r, hash: weightsHash(states[r].weights), cid: cids[r] })
    }
    const loaded = await loadState(host.helia, CID.parse(cids[2]), { size, expectedWeightsSha256: weightsHash(states[2].weights), offline: true })
    assert.deepEqual([...loaded.momentum], [...states[2].momentum])
    const pinned = async (cid: string): Promise<boolean> => await host.helia.pins.isPinned(CID.parse(cid))
    assert.deepEqual([await pinned(cids[0]), await pinned(cids[1]), await pinned(cids[2])], [false, true, true], 'round 0 unpinned (round 1 exists), the checkpoint and the newest kept')
    // A state adopted from the network becomes the newest: the pointer names it.
    await publisher.adopt({ ...states[2], round: 7 }, cids[2], weightsHash(states[2].weights))
    assert.equal(publisher.lastCid, cids[2])
    assert.equal((await loadStatePointer(home, 'job'))?.round, 7)
  })

  it('evaluate: at checkpoints and every N rounds; the final state is evaluated again only when it is other weights', () => {
    const samples: Samples = { x: Float32Array.from({ length: 40 }, (_v, i) => Math.cos(i)), y: Int32Array.from({ length: 10 }, (_v, i) => i % 2), count: 10, featureShape: [4], numClasses: 2 }
    const w = flattenWeights(model)
    const evaluator = new HeldOutEvaluator(model, samples, 3)
    const due = [0, 1, 2, 3, 4].map(r => evaluator.evaluate({ round: r, weights: w, momentum: w }, { ...result(r, w, r === 4) }) != null)
    assert.deepEqual(due, [false, false, true, false, true], 'round 3 (every 3) and round 5 (a checkpoint)')
    const other = w.map(x => x + 0.1)
    assert.deepEqual(evaluator.final(other, weightsHash(other)), evaluateWithLoss(model, other, samples))
    assert.deepEqual(evaluator.final(w, weightsHash(w)), evaluateWithLoss(model, w, samples))
    assert.equal(new HeldOutEvaluator(model, undefined, 1).evaluate({ round: 0, weights: w, momentum: w }, { ...result(0, w, true) }), undefined)
  })

  it('attest: hands each checkpoint over with the deterministic evaluation loss of its weights, skips one it cannot evaluate, and logs the outcome', async () => {
    const inputs: CheckpointAttestationInput[] = []
    const lines: Array<Record<string, unknown>> = []
    const logger = { info: (o: Record<string, unknown>) => { lines.push(o) }, warn: (o: Record<string, unknown>) => { lines.push(o) } } as unknown as Logger
    let drained = false
    const evaluated: Float32Array[] = []
    const step = attestStep({
      attestInBackground: async (input) => { inputs.push(input); return { outcome: 'not-validator', round: input.round } satisfies AttestOutcome },
      drain: async () => { drained = true }
    }, logger, (weights) => {
      evaluated.push(weights)
      if (weights[0] === 42) throw new Error('cannot evaluate these weights')
      return weights[0] + 0.25
    })
    const w = flattenWeights(model)
    const bad = w.map((x, i) => i === 0 ? 42 : x)
    step.attest({ round: 4, weights: w, momentum: w }, { ...result(4, w, true), stateCid: 'bafy-four' })
    step.attest({ round: 7, weights: bad, momentum: bad }, { ...result(7, bad, true), stateCid: 'bafy-seven' })
    step.attest({ round: 9, weights: w, momentum: w }, { ...result(9, w, true), stateCid: 'bafy-nine' })
    await step.drain()
    assert.equal(drained, true)
    assert.deepEqual(evaluated, [w, bad, w], 'the loss is computed from the weights of the state handed over')
    assert.deepEqual(inputs.map(i => [i.round, i.checkpointCid, i.weightsSha256, i.evalLoss]), [[4, 'bafy-four', weightsHash(w), w[0] + 0.25], [9, 'bafy-nine', weightsHash(w), w[0] + 0.25]])
    assert.deepEqual(lines.map(l => [l.event, l.outcome, l.round, l.checkpointCid]), [['attestation', 'skipped', 7, 'bafy-seven'], ['attestation', 'not-validator', 4, 'bafy-four'], ['attestation', 'not-validator', 9, 'bafy-nine']])
  })

})
