/**
 * `nearai demo`: a whole NearAI network on 127.0.0.1 in one process. A bootstrap node and 4 peers start;
 * peer 0 adds 8,000 MNIST digits as a sharded dataset on IPFS; every round each peer fetches the shards
 * rendezvous hashing assigns it (found through the DHT, verified by SHA-256), takes H inner AdamW steps,
 * and the peers average their pseudo-gradients with the butterfly all-reduce over libp2p (fp16 + error
 * feedback), then apply the same Nesterov outer step. At the end every peer's weights hash is compared,
 * the model is evaluated on 2,000 digits no peer trained on, and the final checkpoint is published.
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Logger } from 'pino'
import * as tf from '@tensorflow/tfjs'
import { PeerNode } from '../network/peer-node.ts'
import { addDataset, getDatasetManifest, getShardBytes } from '../storage/datasets.ts'
import { publishCheckpoint } from '../storage/checkpoints.ts'
import { modelArtifacts } from '../storage/checkpoint-model.ts'
import { selectBackend } from '../training/backend.ts'
import { loadMnist } from '../training/data/mnist.ts'
import { decodeCsvShard } from '../training/data/decode-csv.ts'
import { buildModel } from '../training/models.ts'
import { trainLocal, evaluate, type Samples } from '../training/local-trainer.ts'
import { OuterOptimizer, weightsHash } from '../training/outer-optimizer.ts'
import { flattenWeights, setFlatWeights } from '../training/weights.ts'
import { assignShards } from '../training/assignment.ts'
import { codecFor } from '../compression/index.ts'
import { jobReadyTopic } from '../allreduce/index.ts'
import { AllReduceAverager } from '../round/allreduce-averager.ts'
import { runRounds } from '../round/round-loop.ts'
import type { GlobalState } from '../round/steps.ts'
import type { CID } from 'multiformats/cid'

export interface DemoOptions {
  peers: number
  rounds: number
  innerSteps: number
  trainDigits: number
  logger: Logger
}

const JOB = 'demo-mnist-mlp'

/**
 * The demo's peers share one thread, so their inner steps run one after another instead of side by side as on
 * separate machines; without this barrier the last peer would reach the round's matchmaking a whole training
 * time after the first. It releases every peer once all of them finished training the round.
 */
class RoundBarrier {
  private readonly waiting = new Map<number, Array<() => void>>()
  constructor (private readonly parties: number) {}
  async arrive (round: number): Promise<void> {
    const list = this.waiting.get(round) ?? []
    this.waiting.set(round, list)
    const done = new Promise<void>(resolve => list.push(resolve))
    if (list.length === this.parties) { list.forEach(r => { r() }); this.waiting.delete(round) }
    await done
  }
}
const SHARDS = 8

function concatSamples (parts: Samples[]): Samples {
  const per = parts[0].featureShape.reduce((a, b) => a * b, 1)
  const count = parts.reduce((n, p) => n + p.count, 0)
  const x = new Float32Array(count * per)
  const y = new Int32Array(count)
  let at = 0
  for (const p of parts) { x.set(p.x, at * per); y.set(p.y, at); at += p.count }
  return { ...parts[0], x, y, count }
}

export async function runDemo (opts: DemoOptions): Promise<{ accuracy: number, hashes: string[], checkpoint: string }> {
  const log = opts.logger
  const backend = await selectBackend()
  log.info({ backend: backend.name, reason: backend.reason }, 'TensorFlow.js backend')
  const dir = await mkdtemp(join(tmpdir(), 'nearai-demo-'))
  const nodes: PeerNode[] = []
  try {
    const quiet = log.child({ component: 'node' }, { level: 'warn' })
    const common = { listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 200, inboundConnectionsPerSecond: 1000, ipColocationThreshold: 100, logger: quiet }
    const boot = await PeerNode.start({ ...common, privateKey: await generateKeyPair('Ed25519'), role: 'bootstrap', relayServer: { maxReservations: 16 } })
    nodes.push(boot)
    const peers: PeerNode[] = []
    for (let i = 0; i < opts.peers; i++) {
      const p = await PeerNode.start({ ...common, privateKey: await generateKeyPair('Ed25519'), role: 'peer', bootstrap: [boot.multiaddrs[0]] })
      peers.push(p); nodes.push(p)
    }
    log.info({ bootstrap: boot.peerId, peers: peers.map(p => p.peerId) }, `network up: 1 bootstrap node, ${opts.peers} peers on 127.0.0.1`)

    // The data: 8,000 training digits as a CSV dataset on IPFS; 2,000 others held out for evaluation.
    const { train, test } = loadMnist({ train: opts.trainDigits, seed: 7 })
    const header = ['label', ...Array.from({ length: 784 }, (_, i) => `p${i}`)].join(',')
    const rows: string[] = [header]
    for (let i = 0; i < train.count; i++) rows.push([train.y[i], ...Array.from(train.x.subarray(i * 784, (i + 1) * 784), v => Math.round(v * 255))].join(','))
    const csvPath = join(dir, 'mnist-train.csv')
    await writeFile(csvPath, rows.join('\n') + '\n')
    const added = await addDataset(peers[0].helia, csvPath, { name: 'mnist-train', license: 'CC-BY-SA-3.0', shards: SHARDS, csv: { label: 'label', numClasses: 10, featureScale: 1 / 255, shape: [784] } })
    log.info({ dataset: added.cid.toString(), shards: SHARDS, samples: added.manifest.totalSamples }, 'peer 0 added the dataset to IPFS and announced it on the DHT')

    const peerIds = peers.map(p => p.peerId).sort()
    const spec = { kind: 'mlp', inputs: 784, hidden: [256, 128], activation: 'relu', classes: 10 }
    const codec = codecFor('fp16')
    await Promise.all(peers.map(async p => { await p.rendezvous(jobReadyTopic(JOB), { signal: AbortSignal.timeout(30_000) }) }))

    const evalModel = buildModel(spec as never, 1)
    const initial = flattenWeights(evalModel)
    let bytes = 0
    const barrier = new RoundBarrier(peers.length)
    const results = await Promise.all(peers.map(async (peer, index) => {
      const model = buildModel(spec as never, 1)
      const shardCache = new Map<number, Samples>()
      const manifest = await getDatasetManifest(peer.helia, added.cid as CID, { timeoutMs: 60_000 })
      const averager = new AllReduceAverager({ job: JOB, host: peer.libp2p, pubsub: peer.libp2p.services.pubsub, peerId: peer.peerId, codec, logger: quiet, errorFeedback: true, window: { floorMs: 3000, fraction: 0.25 } })
      await averager.start()
      const start: GlobalState = { round: -1, weights: initial, momentum: new Float32Array(initial.length) }
      try {
        return await runRounds(start, {
          rounds: opts.rounds,
          checkpointEvery: 0,
          logger: quiet,
          trainer: {
            train: async (state, round) => {
              const mine = assignShards({ jobId: JOB, round, peerIds, shardCount: SHARDS }).get(peer.peerId) ?? []
              const parts: Samples[] = []
              for (const s of mine) {
                if (!shardCache.has(s)) {
                  const raw = await getShardBytes(peer.helia, added.cid as CID, manifest, s, { timeoutMs: 60_000 })
                  if (manifest.format.kind !== 'csv') throw new Error('demo expects a csv dataset')
                  shardCache.set(s, decodeCsvShard(raw, manifest.format))
                }
                parts.push(shardCache.get(s)!)
              }
              const t0 = Date.now()
              const r = parts.length === 0
                ? { pseudoGradient: new Float32Array(state.weights.length), samples: 0, loss: 0 }
                : await trainLocal(model, state.weights, concatSamples(parts), { steps: opts.innerSteps, lr: 1e-3, weightDecay: 0.01, batchSize: 64, seed: round * 100 + index })
              averager.observeTrainingTime(Date.now() - t0)
              await barrier.arrive(round)
              return r
            }
          },
          averager,
          outer: {
            apply: (state, average, round) => {
              const opt = new OuterOptimizer({ lr: 0.7, momentum: 0.9, nesterov: true }, state.momentum)
              const weights = opt.step(state.weights, average)
              return { round, weights, momentum: opt.getMomentum() }
            },
            hash: weightsHash
          },
          publisher: { publish: async () => undefined },
          onRound: (result, state) => {
            bytes += result.bytesSent
            if (index === 0) {
              const acc = evaluate(evalModel, state.weights, test)
              log.info({ round: result.round, loss: Number(result.loss.toFixed(4)), heldOutAccuracy: Number((acc * 100).toFixed(2)), peers: result.contributions.length, mbSentByAll: Number((bytes / 1e6).toFixed(1)), hash: result.weightsSha256.slice(0, 16) }, `round ${result.round + 1}/${opts.rounds}`)
            }
          }
        })
      } finally {
        await averager.stop()
      }
    }))
    const hashes = results.map(s => weightsHash(s.weights))
    const accuracy = evaluate(evalModel, results[0].weights, test)
    const trained = buildModel(spec as never, 1)
    setFlatWeights(trained, results[0].weights)
    const ckpt = await publishCheckpoint(peers[0].helia, { artifacts: await modelArtifacts(trained), job: JOB, round: opts.rounds - 1, metrics: { heldOutAccuracy: accuracy } })
    tf.disposeVariables()
    return { accuracy, hashes, checkpoint: ckpt.cid.toString() }
  } finally {
    await Promise.all(nodes.map(async n => { await n.stop().catch(() => {}) }))
    await rm(dir, { recursive: true, force: true })
  }
}
