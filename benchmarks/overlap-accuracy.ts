/**
 * What the one-round-delayed outer update (`overlap: "delayed-outer"`) costs in accuracy: the same job run
 * with overlap `none` and `delayed-outer`, same data, same seeds, same budget (rounds × peers × inner steps),
 * and the held-out accuracy of each job's global state after every round.
 *
 * The peers are simulated in one process, so that the comparison measures the update rule and nothing else
 * (no network, no timing): 4 peers, each with its own model and a disjoint 2,000-digit shard of 8,000 MNIST
 * training digits, MLP 784-256-128-10, the job's default inner (AdamW 1e-3, batch 64) and outer (Nesterov, lr 0.7,
 * momentum 0.9) optimizers. Each peer runs the production round loops (round-loop.ts's runRounds,
 * overlapped-loop.ts's runRoundsOverlapped) with the production outer step (apply-step.ts) and inner steps
 * (local-trainer.ts's trainLocal); only the reduce step is in memory (the weighted mean of the 4 updates,
 * averagePseudoGradients, instead of the all-reduce over libp2p).
 *
 *   node --import tsx benchmarks/overlap-accuracy.ts
 *   npm run bench:record -- overlap-accuracy -- node --import tsx benchmarks/overlap-accuracy.ts
 *
 * Modes: none, delayed-outer (the overlapped loop as jobs run it: round r+1 starts from the eager outer step
 * outer(G_{r−1}, Δ_r)), delayed-outer-local (the same loop starting from G_{r−1} − Δ_r instead, for comparison).
 *
 * Environment: NEARAI_BENCH_ROUNDS (10), NEARAI_BENCH_STEPS (inner steps, 50), NEARAI_BENCH_SEEDS (1; e.g. 1,2,3),
 * NEARAI_BENCH_MODES (none,delayed-outer,delayed-outer-local).
 */
import * as tf from '@tensorflow/tfjs'
import { silentLogger } from '../node/log/logger.ts'
import { outerStep } from '../node/round/apply-step.ts'
import { localProgressStart, runRoundsOverlapped, type OverlappedStart } from '../node/round/overlapped-loop.ts'
import { runRounds } from '../node/round/round-loop.ts'
import type { GlobalState, RoundAverager, RoundTrainer } from '../node/round/steps.ts'
import { selectBackend } from '../node/training/backend.ts'
import { loadMnist, sliceSamples } from '../node/training/data/mnist.ts'
import { evaluateWithLoss, trainLocal, type Samples } from '../node/training/local-trainer.ts'
import { parseModelSpec } from '../node/training/model-spec.ts'
import { buildModel } from '../node/training/models.ts'
import { averagePseudoGradients } from '../node/training/outer-optimizer.ts'
import { flattenWeights } from '../node/training/weights.ts'

const env = (k: string, d: number): number => process.env[k] != null ? Number(process.env[k]) : d
const ROUNDS = env('NEARAI_BENCH_ROUNDS', 10)
const STEPS = env('NEARAI_BENCH_STEPS', 50)
const SEEDS = (process.env.NEARAI_BENCH_SEEDS ?? '1').split(',').map(Number)
const PEERS = 4
const INNER = { steps: STEPS, lr: 1e-3, weightDecay: 0.01, batchSize: 64 }
const OUTER = { lr: 0.7, momentum: 0.9, nesterov: true }
type Mode = 'none' | 'delayed-outer' | 'delayed-outer-local'

const backend = await selectBackend({ force: 'wasm' })
const { train, test } = loadMnist({ train: 8000, seed: 1 })
const shards = Array.from({ length: PEERS }, (_, p) => sliceSamples(train, p * 2000, (p + 1) * 2000))
const spec = parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [256, 128], classes: 10 })

/** The group's reduce in memory: resolves once every peer handed in its update for the round, with their weighted mean. */
function inMemoryGroup (peers: string[]): (peer: string) => RoundAverager {
  const rounds = new Map<number, { updates: Map<string, { g: Float32Array, samples: number }>, done: Promise<void>, release: () => void }>()
  return (peer) => ({
    average: async (round, update) => {
      let r = rounds.get(round)
      if (r == null) {
        let release!: () => void
        const done = new Promise<void>(resolve => { release = resolve })
        r = { updates: new Map(), done, release }
        rounds.set(round, r)
      }
      r.updates.set(peer, { g: update.pseudoGradient, samples: update.samples })
      if (r.updates.size === peers.length) r.release()
      await r.done
      const contributions = [...r.updates].map(([peerId, u]) => ({ peerId, pseudoGradient: u.g, samples: u.samples }))
      return { average: averagePseudoGradients(contributions), contributions: contributions.map(c => ({ peer: c.peerId, samples: c.samples })), dropped: [], standIns: [], bytesSent: 0, bytesReceived: 0 }
    }
  })
}

function trainer (model: tf.LayersModel, data: Samples, seed: number, place: number): RoundTrainer {
  return { train: async (state, round, signal) => await trainLocal(model, state.weights, data, { ...INNER, seed: (seed * 1_000_003 + round * 7919 + place) >>> 0 }, { signal }) }
}

async function runJob (mode: Mode, seed: number): Promise<{ accuracy: number[], loss: number[], hashesAgree: boolean }> {
  const peers = Array.from({ length: PEERS }, (_, p) => `peer-${p}`)
  const models = peers.map(() => buildModel(spec, seed))
  const evalModel = buildModel(spec, seed)
  const weights = flattenWeights(models[0])
  const initial: GlobalState = { round: -1, weights, momentum: new Float32Array(weights.length) }
  const group = inMemoryGroup(peers)
  const accuracy: number[] = []
  const loss: number[] = []
  const apply = outerStep(OUTER)
  // delayed-outer: the production loop as it is (eagerStart); delayed-outer-local: the same loop, the simpler start.
  const start: OverlappedStart | undefined = mode === 'delayed-outer-local' ? localProgressStart : undefined
  const loop = mode === 'none' ? runRounds : runRoundsOverlapped
  const finals = await Promise.all(peers.map(async (peer, p) => await loop(initial, {
    start,
    rounds: ROUNDS,
    checkpointEvery: ROUNDS,
    steps: { train: trainer(models[p], shards[p], seed, p), reduce: group(peer), apply: outerStep(OUTER), publish: { publish: async () => undefined } },
    logger: silentLogger(),
    onRound: (_result, state) => {
      if (p !== 0) return
      const e = evaluateWithLoss(evalModel, state.weights, test)
      accuracy.push(e.accuracy); loss.push(e.loss)
      process.stderr.write(`  ${mode} seed ${seed}: round ${state.round} held-out ${(e.accuracy * 100).toFixed(2)}%\n`)
    }
  })))
  const hashes = new Set(finals.map(f => outerStep(OUTER).hash(f.weights)))
  for (const m of [...models, evalModel]) m.dispose()
  return { accuracy, loss, hashesAgree: hashes.size === 1 }
}

const MODES = (process.env.NEARAI_BENCH_MODES ?? 'none,delayed-outer,delayed-outer-local').split(',') as Mode[]
console.log(`accuracy cost of the delayed outer update: ${PEERS} simulated peers, MNIST MLP 784-256-128-10 (backend ${backend.name}), 4 × 2,000 training digits, 2,000 held out; ${ROUNDS} rounds of ${STEPS} inner steps (batch 64, AdamW 1e-3), outer Nesterov lr 0.7 momentum 0.9; seeds ${SEEDS.join(', ')}`)
const finals = new Map<Mode, number[]>(MODES.map(m => [m, []]))
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
for (const seed of SEEDS) {
  const runs = new Map<Mode, Awaited<ReturnType<typeof runJob>>>()
  for (const mode of MODES) runs.set(mode, await runJob(mode, seed))
  const agree = [...runs.values()].every(r => r.hashesAgree)
  console.log(`\nseed ${seed}: held-out accuracy of the global state after each round (%)${agree ? '; every peer holds the same global state' : ' — PEERS DISAGREE ON THE GLOBAL STATE'}`)
  const width = (text: string): number => Math.max(15, text.length + 2)
  console.log(' round' + MODES.map(m => m.padStart(width(m))).join('') + MODES.slice(1).map(m => `${m} − ${MODES[0]}`).map(h => h.padStart(width(h))).join(''))
  const first = runs.get(MODES[0])!
  for (let r = 0; r < ROUNDS; r++) {
    console.log(String(r).padStart(6) + MODES.map(m => (runs.get(m)!.accuracy[r] * 100).toFixed(2).padStart(width(m))).join('') + MODES.slice(1).map(m => ((runs.get(m)!.accuracy[r] - first.accuracy[r]) * 100).toFixed(2).padStart(width(`${m} − ${MODES[0]}`))).join(''))
  }
  console.log('final held-out loss: ' + MODES.map(m => `${m} ${runs.get(m)!.loss[ROUNDS - 1].toFixed(4)}`).join(', '))
  for (const m of MODES) finals.get(m)!.push(runs.get(m)!.accuracy[ROUNDS - 1])
  if (!agree) process.exitCode = 1
}
console.log(`\nfinal held-out accuracy, mean over ${SEEDS.length} seed(s): ` + MODES.map(m => `${m} ${(mean(finals.get(m)!) * 100).toFixed(2)}%`).join(', '))
for (const m of MODES.slice(1)) {
  const diffs = finals.get(m)!.map((a, i) => a - finals.get(MODES[0])![i])
  console.log(`${m} − ${MODES[0]}: ${(mean(diffs) * 100).toFixed(2)} points (per seed: ${diffs.map(d => (d * 100).toFixed(2)).join(', ')})`)
}
