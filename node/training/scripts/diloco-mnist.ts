/**
 * Opt-in: full-size DiLoCo simulation (4 peers, MLP 784-256-128-10, disjoint 2,000-digit shards) against a
 * centralized baseline on the same number of samples. Run: node --import tsx node/training/scripts/diloco-mnist.ts
 * Env: ROUNDS, H, INNER_LR, OUTER_LR, MOMENTUM.
 */
import { selectBackend } from '../backend.ts'
import { buildModel } from '../models.ts'
import { parseModelSpec } from '../model-spec.ts'
import { flattenWeights } from '../weights.ts'
import { evaluate, trainLocal } from '../local-trainer.ts'
import { OuterOptimizer, averagePseudoGradients } from '../outer-optimizer.ts'
import { loadMnist, sliceSamples } from '../data/mnist.ts'

const env = (k: string, d: number): number => process.env[k] !== undefined ? Number(process.env[k]) : d
const ROUNDS = env('ROUNDS', 10); const H = env('H', 50); const INNER_LR = env('INNER_LR', 1e-3)
const OUTER_LR = env('OUTER_LR', 0.7); const MOMENTUM = env('MOMENTUM', 0.9); const BATCH = 64

const backend = await selectBackend()
console.log(`backend ${backend.name}: ${backend.reason}`)
const { train, test } = loadMnist({ train: 8000, seed: 1 })
const spec = parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [256, 128], classes: 10 })
const model = buildModel(spec, 42)
const init = flattenWeights(model)

let t0 = Date.now()
let global = init
const outer = new OuterOptimizer({ lr: OUTER_LR, momentum: MOMENTUM, nesterov: true })
const shards = [0, 1, 2, 3].map(i => sliceSamples(train, i * 2000, (i + 1) * 2000))
let total = 0
for (let round = 0; round < ROUNDS; round++) {
  const contribs = []
  for (let p = 0; p < 4; p++) {
    const r = await trainLocal(model, global, shards[p], { steps: H, lr: INNER_LR, weightDecay: 0.01, batchSize: BATCH, seed: round * 100 + p })
    contribs.push({ peerId: `p${p}`, pseudoGradient: r.pseudoGradient, samples: r.samples }); total += r.samples
  }
  global = outer.step(global, averagePseudoGradients(contribs))
  console.log(`round ${round + 1}: held-out ${(evaluate(model, global, test) * 100).toFixed(2)}%`)
}
const dilocoAcc = evaluate(model, global, test); const dilocoS = (Date.now() - t0) / 1000

t0 = Date.now()
const central = await trainLocal(model, init, train, { steps: total / BATCH, lr: INNER_LR, weightDecay: 0.01, batchSize: BATCH, seed: 7 })
const centralW = init.map((v, i) => v - central.pseudoGradient[i])
const centralAcc = evaluate(model, centralW, test); const centralS = (Date.now() - t0) / 1000
console.log(JSON.stringify({ rounds: ROUNDS, H, innerLr: INNER_LR, outerLr: OUTER_LR, momentum: MOMENTUM, samples: total, diloco: { acc: dilocoAcc, seconds: dilocoS }, centralized: { acc: centralAcc, seconds: centralS } }))
