/**
 * A peer training a job: the DiLoCo round loop (round/round-loop.ts) with this node's steps, wired here and
 * nowhere else. One round, top to bottom:
 *
 *   train     ShardTrainer       this round's shards (rendezvous hashing among the live peers) → H inner AdamW steps → pseudo-gradient
 *   encode    updateEncoder      each part of the group's partition through the job's codec, error carried across rounds
 *   reduce    AllReduceAverager  matchmaking on gossip → butterfly all-reduce over libp2p → update checks → the job's combine rule
 *   apply     outerStep          Nesterov outer step in float64 per element → bit-identical weights on every peer
 *   publish   StatePublisher     state on IPFS, local state pointer, pins, round announcement on gossip
 *   evaluate  HeldOutEvaluator   held-out accuracy and loss at checkpoints and every `eval.every` rounds
 *   attest    (from the caller)  checkpoints attested on chain in the background (round/attest-step.ts)
 *
 * and before each round, catch up: NetworkState adopts the newest state vouched for by a quorum of the held
 * round's participants when this peer is behind. JobMembership (what this peer holds, who took part in it) is
 * what matchmaking, catch-up and the shard assignment judge the job's peers by (ARCHITECTURE.md, "Round trust").
 */
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import type { PeerNode } from '../network/peer-node.ts'
import { ButterflyAllReduce, jobReadyTopic, Matchmaking } from '../allreduce/index.ts'
import { BufferPool } from '../memory/buffer-pool.ts'
import { codecFor, updateEncoder } from '../compression/index.ts'
import { AllReduceAverager } from '../round/allreduce-averager.ts'
import { outerStep } from '../round/apply-step.ts'
import { HeldOutEvaluator } from '../round/evaluate-step.ts'
import { exchangeRecorderFromEnv } from '../round/exchange-recorder.ts'
import { MatchWindow } from '../round/match-window.ts'
import { StatePublisher } from '../round/publish-step.ts'
import { runRounds } from '../round/round-loop.ts'
import { runRoundsOverlapped } from '../round/overlapped-loop.ts'
import { attestStep, type CheckpointAttesterLike } from '../round/attest-step.ts'
import type { GlobalState, RoundAttester, RoundResult } from '../round/steps.ts'
import { evaluateDeterministic } from '../training/deterministic-eval.ts'
import { ShardTrainer, type ShardTrainerOptions } from '../round/train-step.ts'
import { assertTrainable, buildModel } from '../training/models.ts'
import { sampleClaimBound, shardSampleCapacities } from '../training/sample-bound.ts'
import type { Evaluation, Samples } from '../training/local-trainer.ts'
import { weightsHash } from '../training/outer-optimizer.ts'
import { flattenWeights } from '../training/weights.ts'
import { WorkerTrainer } from '../training/worker/trainer-worker.ts'
import type { BackendName } from '../training/backend.ts'
import * as tf from '@tensorflow/tfjs'
import { MAX_TIMER_MS, withTimeout } from '../time/clock.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import { loadStatePointer, type StoredJob } from './job-store.ts'
import { NetworkState, type AnchorSource } from './network-state.ts'
import { JobMembership } from './membership.ts'
import { openJobData } from './shard-data.ts'
import { loadState } from './state-snapshot.ts'
import { UpdatePartsKeeper } from '../storage/update-parts.ts'
import { MAX_BLOCK_BYTES } from '../../protocol/shard-stream.ts'

/** How long a starting peer listens for newer announced state before its first round. */
export const JOIN_WAIT_MS = 5_000
/** Reading this peer's own last state from its blockstore. */
const LOCAL_STATE_TIMEOUT_MS = 30_000
/** Meeting the job's peers through the DHT: each attempt's deadline, and how often (peers that start later find this one). */
const RENDEZVOUS_TIMEOUT_MS = 20_000
const RENDEZVOUS_EVERY_MS = 30_000

export interface RunJobOptions {
  peer: PeerNode
  home: string
  job: StoredJob
  logger: Logger
  signal?: AbortSignal
  /** How long a starting peer listens for newer announced state before its first round (ms; JOIN_WAIT_MS). */
  joinWaitMs?: number
  /** The chain attester (round/attest-step.ts's openChainAttester), when this node attests checkpoints on chain. */
  attester?: CheckpointAttesterLike
  /** Who may train the job, as the chain says (node/chain/trainer-roster.ts); without it, anyone the round's rules admit. */
  roster?: { allows: (peer: string) => boolean }
  /** The job's finalised chain anchors (trainer-gate.ts openTrainerChainView): catch-up adopts them without a quorum. */
  anchors?: AnchorSource
  /** Called with each completed round's result, after its `event: 'round'` log line (tests, dashboards). */
  onRound?: (result: RoundResult) => void
}

export interface JobOutcome { state: GlobalState, weightsSha256: string, stateCid?: string, evaluation?: Evaluation }

export async function runJob (opts: RunJobOptions): Promise<JobOutcome> {
  const { peer, job: { spec }, logger } = opts
  const signal = opts.signal ?? new AbortController().signal
  const self = peer.peerId
  assertTrainable(spec.model)
  // Two instances of the model: one the inner steps train, one that publishes and evaluates states.
  const trainModel = buildModel(spec.model, spec.seed)
  const stateModel = buildModel(spec.model, spec.seed)
  const initial = flattenWeights(trainModel)
  const size = initial.length

  const { data, evalSet } = await openJobData(peer.helia, spec, { signal, logger })
  logger.info({ job: spec.id, dataset: spec.dataset, shards: data.shardCount, samples: data.manifest.totalSamples, parameters: size, evalSamples: evalSet?.count }, 'job data found')
  const resumed = await resumeLocalState(opts, size)
  const state = resumed?.state ?? { round: -1, weights: initial, momentum: new Float32Array(size) }
  // What this peer holds and who took part in it: the initial state (open to anyone), or the resumed round's contributors.
  const roster = opts.roster
  const membership = new JobMembership(spec.id, spec.rounds, roster != null ? (p) => roster.allows(p) : undefined)
  if (resumed != null) membership.hold(resumed.state.round, resumed.weightsSha256, resumed.contributors)

  // The job's peers this node is connected to (the ready topic's subscribers) that are members of the round it
  // holds, itself included: a peer outside the membership neither gets shards nor is waited for.
  const subscribers = (): string[] => [...new Set([self, ...peer.libp2p.services.pubsub.getSubscribers(jobReadyTopic(spec.id)).map(String)])].sort()
  const livePeers = (): string[] => membership.participants(subscribers(), self)
  const pace = new MatchWindow()
  // Catching up: the job's round announcements; a state adopted from them becomes this peer's newest (publish.adopt).
  const network = new NetworkState({
    job: spec.id,
    gossip: peer.gossip,
    helia: peer.helia,
    peerId: self,
    modelSize: size,
    logger,
    membership,
    rounds: spec.rounds,
    minPeers: spec.minPeers,
    anchors: opts.anchors,
    onAdopt: async (adopted, cid, weightsSha256) => {
      logger.info({ round: adopted.round, cid, hash: weightsSha256.slice(0, 12) }, 'adopted the network state')
      await publish.adopt(adopted, cid, weightsSha256)
    }
  })

  // The round's steps, in the order its data flows through them.
  // Overlapped rounds train in a worker thread, so that the previous round's all-reduce runs meanwhile.
  // Started at the first round (inside the try below, whose finally ends it).
  let worker: WorkerTrainer | undefined
  const local: ShardTrainerOptions['local'] = spec.overlap === 'delayed-outer' && trainerThread() === 'worker'
    ? async (global, samples, params, o) => {
      if (worker == null) {
        worker = new WorkerTrainer(spec.model, spec.seed, workerBackend())
        logger.info({ overlap: spec.overlap, backend: await worker.backend }, 'inner steps run in a worker thread')
      }
      return await worker.train(global, samples, params, o)
    }
    : undefined
  const train = new ShardTrainer({ job: spec.id, self, data, model: trainModel, local, inner: spec.inner, seed: spec.seed, livePeers, pace, logger })
  // One pool for the round's big arrays: the encode step's and the payloads this peer reduces, reused every round.
  const buffers = new BufferPool()
  const encoder = updateEncoder(codecFor(spec.codec), { pool: buffers })
  // This peer's contribution to each round, as raw blocks by their digests: validators fetch them over bitswap.
  const updateParts = new UpdatePartsKeeper(peer.helia)
  let warnedOversize = false
  const keepOwnPayloads = (round: number, payloads: readonly Uint8Array[]): void => {
    const largest = Math.max(...payloads.map(p => p.byteLength))
    if (largest > MAX_BLOCK_BYTES && !warnedOversize) {
      warnedOversize = true
      logger.warn({ round, bytes: largest, limit: MAX_BLOCK_BYTES }, 'update parts larger than one bitswap block: stored, but no peer can fetch them over bitswap')
    }
    updateParts.store(round, payloads, { signal }).catch((err: Error) => { logger.warn({ round, err: err.message }, 'could not store this round\'s update parts') })
  }
  const reduce = new AllReduceAverager({
    matchmaking: new Matchmaking({ gossip: peer.gossip, peerId: self, policy: membership }),
    encoder,
    allReduce: new ButterflyAllReduce({ host: peer.libp2p, logger: logger.child({ component: 'allreduce' }) }, { bufferPool: buffers }),
    logger: logger.child({ component: 'averager' })
  }, { job: spec.id, aggregation: spec.aggregation, sampleBound: sampleClaimBound({ job: spec.id, inner: spec.inner, capacities: shardSampleCapacities(data.manifest) }), minGroupSize: () => Math.max(spec.minPeers, Math.floor(membership.heldRound().members.size / 2) + 1), window: pace, livePeers: subscribers, onExchange: exchangeRecorderFromEnv(self), completedElsewhere: async (round, until) => await network.waitForNewer(round - 1, MAX_TIMER_MS, until), barNewcomer: (p, round) => { membership.bar(spec.id, p, round) }, self, onOwnPayloads: keepOwnPayloads })
  const apply = outerStep(spec.outer)
  const publish = new StatePublisher({ helia: peer.helia, model: stateModel, home: opts.home, job: spec.id, announcer: network, resumedCid: resumed?.cid, signal })
  const evaluate = new HeldOutEvaluator(stateModel, evalSet, spec.eval.every)
  const attest = attestingStep(opts, evalSet, logger)

  network.start()
  await reduce.start()
  peer.joinJob(spec.id)
  const meeting = await meetJobPeers(peer, spec.id, signal, logger)
  try {
    if (await network.waitForNewer(state.round, opts.joinWaitMs ?? JOIN_WAIT_MS, signal)) logger.info({ newest: network.newest()?.round }, 'the network is ahead; catching up')
    const final = await (spec.overlap === 'delayed-outer' ? runRoundsOverlapped : runRounds)(state, {
      rounds: spec.rounds,
      checkpointEvery: spec.checkpointEvery,
      steps: { train, reduce, apply, publish, evaluate, attest },
      sync: network,
      logger,
      signal,
      diagnose: async () => ({ ...await peer.health.snapshot(), jobPeers: livePeers().length - 1, presenceDials: peer.presenceDials, repairs: peer.health.repairs }),
      onRound: (result) => { logRound(logger, spec.rounds, result); opts.onRound?.(result) }
    })
    const weightsSha256 = weightsHash(final.weights)
    // The last evaluation may be of another state (this peer adopted the final one from the network).
    return { state: final, weightsSha256, stateCid: publish.lastCid, evaluation: evaluate.final(final.weights, weightsSha256) }
  } finally {
    meeting.stop()
    peer.leaveJob(spec.id)
    await reduce.stop()
    network.stop()
    await attest?.drain()
    await worker?.close()
    trainModel.dispose()
    stateModel.dispose()
  }
}

/**
 * Where an overlapped job's inner steps run: `worker` (default), or `main` with NEARAI_TRAINER_THREAD=main (the
 * main thread, yielding to the network between steps; the compute-share benchmark compares the two).
 */
function trainerThread (): 'main' | 'worker' {
  return process.env.NEARAI_TRAINER_THREAD === 'main' ? 'main' : 'worker'
}

/** The worker uses the main thread's backend (a native one: whichever it can load first). */
function workerBackend (): BackendName | undefined {
  const name = tf.getBackend()
  return name === 'wasm' || name === 'cpu' ? name : undefined
}

/**
 * The attest step, when this node attests: the job's evaluation set is what validators evaluate every checkpoint
 * on, so a job without one is not attested by its trainers either (an anchor needs agreeing validators).
 */
function attestingStep ({ attester, job: { spec } }: RunJobOptions, evalSet: Samples | undefined, logger: Logger): RoundAttester | undefined {
  if (attester == null) return undefined
  if (evalSet == null) {
    logger.warn({ job: spec.id }, 'not attesting checkpoints: the job names no evaluation dataset (evalDataset), which validators evaluate them on')
    return undefined
  }
  return attestStep(attester, logger, (weights) => evaluateDeterministic(spec.model, weights, evalSet).loss)
}

/** Where this peer resumes after a restart: its own last state, read from its blockstore and checked against the recorded hash. */
async function resumeLocalState ({ peer, home, job: { spec }, logger }: RunJobOptions, size: number): Promise<{ state: GlobalState, cid: string, weightsSha256: string, contributors: string[] } | undefined> {
  const pointer = await loadStatePointer(home, spec.id)
  if (pointer == null) return undefined
  try {
    const local = await loadState(peer.helia, CID.parse(pointer.cid), { expectedWeightsSha256: pointer.weightsSha256, size, offline: true, timeoutMs: LOCAL_STATE_TIMEOUT_MS })
    logger.info({ round: local.round, cid: pointer.cid }, 'resumed from the local state')
    return { state: { round: local.round, weights: local.weights, momentum: local.momentum.length > 0 ? local.momentum : new Float32Array(size) }, cid: pointer.cid, weightsSha256: pointer.weightsSha256, contributors: local.contributors }
  } catch (err) {
    logger.warn({ cid: pointer.cid, err: (err as Error).message }, 'local state unreadable; starting from the network or the initial weights')
    return undefined
  }
}

/** Meets the job's other peers through the DHT, now and then every RENDEZVOUS_EVERY_MS (peers that start later find this one). */
async function meetJobPeers (peer: PeerNode, job: string, signal: AbortSignal, logger: Logger): Promise<{ stop: () => void }> {
  const meet = async (): Promise<void> => {
    try {
      await peer.rendezvous(jobRoundsTopic(job), { signal: withTimeout(signal, RENDEZVOUS_TIMEOUT_MS) })
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'rendezvous incomplete')
    }
  }
  await meet()
  const timer = setInterval(() => { void meet() }, RENDEZVOUS_EVERY_MS)
  timer.unref()
  return { stop: () => { clearInterval(timer) } }
}

/** The `event: 'round'` line the demo and the tests read. */
function logRound (logger: Logger, rounds: number, result: RoundResult): void {
  const { evaluation } = result
  logger.info({
    event: 'round',
    round: result.round,
    rounds,
    loss: result.loss,
    samples: result.samples,
    peers: result.contributions.length,
    // Peer and samples only: the update digests (a group's members × parts of them) are in the checkpoint.
    contributions: result.contributions.map(({ peer, samples }) => ({ peer, samples })),
    ...(result.updates != null ? { updateParts: result.updates.parts.length } : {}),
    dropped: result.dropped,
    standIns: result.standIns,
    bytesSent: result.bytesSent,
    bytesReceived: result.bytesReceived,
    hash: result.weightsSha256,
    stateCid: result.stateCid,
    checkpoint: result.checkpoint,
    ms: result.millis,
    ...(evaluation != null ? { evalAccuracy: evaluation.accuracy, evalLoss: evaluation.loss } : {})
  }, 'round')
}
