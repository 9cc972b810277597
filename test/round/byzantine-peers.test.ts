/**
 * Must-shows of the update checks and the robust combine rule, on the production round pipeline: 5 peers in
 * this process, each a real libp2p node on 127.0.0.1 (gossipsub matchmaking, the butterfly all-reduce over its
 * own protocol, fp16 updates with error feedback) running runRounds with the ShardTrainer (a small MNIST MLP on
 * its shards), the AllReduceAverager built from the job spec's aggregation and sample bound as run-job.ts builds
 * it, and the outer step. An attacker is one of these peers with a test-only wrapper around one of its steps:
 * its encode step (what it sends) or its train step (what it claims); everything else is the production code.
 */
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import * as tf from '@tensorflow/tfjs'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { Matchmaking } from '../../node/allreduce/matchmaking.ts'
import { codecFor, updateEncoder, type UpdateEncoder } from '../../node/compression/index.ts'
import { concatSamples } from '../../node/job/shard-data.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { TypedGossip } from '../../node/network/gossip.ts'
import { AllReduceAverager, type ExchangeRecord } from '../../node/round/allreduce-averager.ts'
import { outerStep } from '../../node/round/apply-step.ts'
import { MatchWindow } from '../../node/round/match-window.ts'
import { runRounds } from '../../node/round/round-loop.ts'
import type { RoundResult, RoundTrainer } from '../../node/round/steps.ts'
import { ShardTrainer } from '../../node/round/train-step.ts'
import { selectBackend, type BackendName } from '../../node/training/backend.ts'
import { loadMnist, sliceSamples } from '../../node/training/data/mnist.ts'
import { parseJobSpec, type JobSpec } from '../../node/training/job-spec.ts'
import { evaluateWithLoss, type Samples } from '../../node/training/local-trainer.ts'
import { buildModel } from '../../node/training/models.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { sampleClaimBound } from '../../node/training/sample-bound.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { jobReadyTopic } from '../../protocol/allreduce.ts'
import { startConnectedNodes, stopAll, waitFor } from '../allreduce/helpers.ts'

const PEERS = 5
const SHARDS = 10
const SHARD_SAMPLES = 400

/** What a test does to one peer: wraps its encode step (what it sends) or its train step (what it claims). */
interface Tamper { encoder?: (honest: UpdateEncoder) => UpdateEncoder, trainer?: (honest: RoundTrainer) => RoundTrainer }

interface JobRun {
  ids: string[]
  /** Each peer's round results, in order. */
  rounds: RoundResult[][]
  hashes: string[]
  accuracy: number
  ms: number
  /** The largest ratio of an accepted contribution's norm on a part to the part's median (the norm check's margin). */
  maxNormRatioSeen: number
}

function jobSpec (overrides: Record<string, unknown> = {}): JobSpec {
  return parseJobSpec({
    id: 'byzantine-mnist',
    model: { kind: 'mlp', inputs: 784, hidden: [32], activation: 'relu', classes: 10 },
    dataset: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
    rounds: 6,
    inner: { steps: 20, lr: 3e-3, weightDecay: 0, batchSize: 32 },
    outer: { lr: 0.7, momentum: 0.9, nesterov: true },
    codec: 'fp16',
    minPeers: 3,
    seed: 3,
    ...overrides
  })
}

/** A fresh network of PEERS peers (nothing shared with any other run) trains `spec`; returns what every peer ended with. */
async function runJob (spec: JobSpec, shards: Samples[], heldOut: Samples, tamper: Map<number, Tamper> = new Map()): Promise<JobRun> {
  // The same identities in every run (fresh nodes, nothing else shared): the same shard assignment and batch
  // orders, so runs differ only by what the attackers do.
  const keys = await Promise.all(Array.from({ length: PEERS }, async (_v, i) => await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))))
  const started = Date.now()
  const nodes: Array<Libp2p<any>> = await startConnectedNodes(PEERS, true, keys)
  const ids = nodes.map(n => n.peerId.toString())
  const livePeers = (): string[] => [...ids].sort()
  const models = nodes.map(() => buildModel(spec.model, spec.seed))
  const averagers: AllReduceAverager[] = []
  let maxNormRatioSeen = 0
  const onExchange = (x: ExchangeRecord): void => {
    for (const p of x.parts) {
      const median = p.meta?.normMedian
      if (typeof median !== 'number' || median === 0 || typeof p.meta?.rejected === 'string') continue
      let s = 0
      for (let j = p.offset; j < p.offset + p.elements; j++) s += x.sent[j] * x.sent[j]
      maxNormRatioSeen = Math.max(maxNormRatioSeen, Math.sqrt(s) / median)
    }
  }
  try {
    const data = { shardCount: shards.length, shards: async (indexes: number[]) => indexes.length === 0 ? undefined : concatSamples(indexes.map(k => shards[k])) }
    const capacities = shards.map(s => s.count)
    const steps = nodes.map((node, i) => {
      const honestEncoder = updateEncoder(codecFor(spec.codec))
      const encoder = tamper.get(i)?.encoder?.(honestEncoder) ?? honestEncoder
      // As run-job.ts wires the reduce step: the job's aggregation, the sample bound from its data.
      const reduce = new AllReduceAverager({
        matchmaking: new Matchmaking({ gossip: new TypedGossip(node.services.pubsub, silentLogger()), peerId: ids[i] }),
        encoder,
        allReduce: new ButterflyAllReduce({ host: node }),
        logger: silentLogger()
      }, { job: spec.id, aggregation: spec.aggregation, sampleBound: sampleClaimBound({ job: spec.id, inner: spec.inner, capacities }), minGroupSize: spec.minPeers, window: new MatchWindow({ capMs: 20_000 }), livePeers, onExchange: tamper.has(i) ? undefined : onExchange })
      averagers.push(reduce)
      const honestTrainer = new ShardTrainer({ job: spec.id, self: ids[i], data, model: models[i], inner: spec.inner, seed: spec.seed, livePeers, logger: silentLogger() })
      const train = tamper.get(i)?.trainer?.(honestTrainer) ?? honestTrainer
      return { train, reduce, apply: outerStep(spec.outer), publish: { publish: async () => undefined } }
    })
    await Promise.all(averagers.map(async a => { await a.start() }))
    await waitFor('ready-topic subscriptions', () => nodes.every(n => n.services.pubsub.getSubscribers(jobReadyTopic(spec.id)).length === PEERS - 1), 20_000)
    const initial = flattenWeights(models[0])
    const rounds: RoundResult[][] = nodes.map(() => [])
    const finals = await Promise.all(steps.map(async (s, i) => await runRounds({ round: -1, weights: initial, momentum: new Float32Array(initial.length) }, {
      rounds: spec.rounds, checkpointEvery: spec.rounds, steps: s, logger: silentLogger(), onRound: (r) => { rounds[i].push(r) }
    })))
    const accuracy = evaluateWithLoss(models[0], finals[0].weights, heldOut).accuracy
    return { ids, rounds, hashes: finals.map(f => weightsHash(f.weights)), accuracy, ms: Date.now() - started, maxNormRatioSeen }
  } finally {
    await Promise.all(averagers.map(async a => { try { await a.stop() } catch {} }))
    await stopAll(nodes)
    for (const m of models) m.dispose()
  }
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`

/** The attacker's encode step: sends −10 × its update (through the honest codec and error feedback). */
const signFlipTimesTen: Tamper = { encoder: (honest) => ({ codec: honest.codec, encode: (update, parts) => honest.encode(update.map(x => -10 * x), parts) }) }

describe('Byzantine peers on the production round pipeline (5 libp2p peers on 127.0.0.1, MNIST MLP)', function () {
  this.timeout(180_000)
  let previousBackend: string
  let shards: Samples[]
  let heldOut: Samples
  before(async () => {
    previousBackend = tf.getBackend()
    await selectBackend({ force: 'wasm' })
    // Training digits cut into shards; the held-out digits are ones no peer trains on.
    const { train, test } = loadMnist({ train: SHARDS * SHARD_SAMPLES, seed: 5 })
    shards = Array.from({ length: SHARDS }, (_v, k) => sliceSamples(train, k * SHARD_SAMPLES, (k + 1) * SHARD_SAMPLES))
    heldOut = sliceSamples(test, 0, 2000)
  })
  after(async () => { await selectBackend({ force: previousBackend as BackendName }) })

  it('1 of 5 sends sign-flipped updates ×10: held-out accuracy within 1 point of an all-honest run, the attacker\'s weight 0 every round', async () => {
    const spec = jobSpec({ aggregation: { rule: 'trimmed-mean', trim: 1 } })
    const honest = await runJob(spec, shards, heldOut)
    const attacked = await runJob(spec, shards, heldOut, new Map([[2, signFlipTimesTen]]))
    // The control: the same attack on a job without defences (plain mean, no norm check) wrecks it.
    const undefended = await runJob(jobSpec({ aggregation: { rule: 'mean', maxNormRatio: null } }), shards, heldOut, new Map([[2, signFlipTimesTen]]))
    console.log(`      held-out accuracy: all honest ${pct(honest.accuracy)} (${honest.ms} ms), 1 attacker ${pct(attacked.accuracy)} (${attacked.ms} ms), ` +
      `1 attacker without defences ${pct(undefended.accuracy)} (${undefended.ms} ms); honest part norms reached ${honest.maxNormRatioSeen.toFixed(2)}× their median`)
    assert.ok(undefended.accuracy < honest.accuracy - 0.3, `without defences the attack should hurt (${undefended.accuracy})`)
    assert.ok(honest.maxNormRatioSeen > 0 && honest.maxNormRatioSeen < spec.aggregation.maxNormRatio!, `honest norms ${honest.maxNormRatioSeen}× the median`)

    for (const run of [honest, attacked]) {
      assert.equal(new Set(run.hashes).size, 1, 'every peer holds the same weights')
      for (const rounds of run.rounds) assert.deepEqual(rounds.map(r => r.round), [0, 1, 2, 3, 4, 5])
    }
    const attacker = attacked.ids[2]
    for (const rounds of attacked.rounds) {
      for (const r of rounds) {
        assert.equal(r.contributions.length, PEERS, `round ${r.round}: all 5 in the table`)
        for (const c of r.contributions) {
          if (c.peer === attacker) assert.equal(c.samples, 0, `round ${r.round}: the attacker's weight`)
          else assert.equal(c.samples, spec.inner.steps * spec.inner.batchSize, `round ${r.round}: ${c.peer}'s weight`)
        }
      }
    }
    for (const r of honest.rounds[0]) assert.ok(r.contributions.every(c => c.samples === spec.inner.steps * spec.inner.batchSize), 'nobody rejected in the honest run')
    assert.ok(honest.accuracy > 0.8, `the honest run learned (${honest.accuracy})`)
    assert.ok(Math.abs(attacked.accuracy - honest.accuracy) <= 0.01, `attacked ${attacked.accuracy} vs honest ${honest.accuracy}`)
  })

  it('a peer claiming more samples than its shards hold gets weight 0, a peer sending NaN is excluded, and every round completes', async () => {
    const spec = jobSpec({ rounds: 2 })
    const honestSamples = spec.inner.steps * spec.inner.batchSize
    const overClaim: Tamper = { trainer: (honest) => ({ train: async (state, round, signal) => ({ ...await honest.train(state, round, signal), samples: honestSamples * 4 }) }) }
    // NaN in every 500th value: the parts holding one reject it.
    const nan: Tamper = { encoder: (honest) => ({ codec: honest.codec, encode: (update, parts) => honest.encode(update.map((x, j) => j % 500 === 0 ? NaN : x), parts) }) }
    const run = await runJob(spec, shards, heldOut, new Map([[1, overClaim], [3, nan]]))
    console.log(`      2 rounds with an over-claiming and a NaN peer: ${run.ms} ms, held-out accuracy ${pct(run.accuracy)}`)
    assert.equal(new Set(run.hashes).size, 1, 'every peer holds the same weights')
    const finite = run.rounds.every(rs => rs.length === 2)
    assert.ok(finite, 'every peer completed both rounds')
    for (const rounds of run.rounds) {
      for (const r of rounds) {
        const table = Object.fromEntries(r.contributions.map(c => [c.peer, c.samples]))
        assert.deepEqual(table, Object.fromEntries(run.ids.map((id, i) => [id, i === 1 || i === 3 ? 0 : honestSamples])), `round ${r.round}`)
      }
    }
    assert.ok(Number.isFinite(run.accuracy) && run.accuracy > 0.5, `the job still learned (${run.accuracy})`)
  })
})
