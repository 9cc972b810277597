/**
 * A peer training a job: the DiLoCo round loop (round/round-loop.ts) with this node's parts plugged in.
 *
 *   data      ShardData: the shards rendezvous hashing assigns this peer for the round, from IPFS
 *   train     H inner AdamW steps from the global weights → pseudo-gradient, weighted by samples
 *   average   AllReduceAverager: matchmaking on gossip, butterfly all-reduce over libp2p, the job's codec
 *   apply     Nesterov outer step in float64 per element → bit-identical weights on every peer
 *   publish   state snapshot on IPFS (a TensorFlow.js checkpoint + outer momentum), local state pointer,
 *             round announcement on gossip; every K rounds a provided checkpoint and a chain attestation
 *   catch up  NetworkState: a peer that is behind adopts the newest announced state (verified by hash)
 */
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import type { PeerNode } from '../network/peer-node.ts'
import { ButterflyAllReduce, jobReadyTopic, Matchmaking, weightedMean } from '../allreduce/index.ts'
import { backoff, sleep, type BackoffPolicy } from '../time/clock.ts'
import { codecFor, updateEncoder } from '../compression/index.ts'
import { AllReduceAverager } from '../round/allreduce-averager.ts'
import { MatchWindow, type MatchWindowPolicy } from '../round/match-window.ts'
import { runRounds } from '../round/round-loop.ts'
import type { GlobalState, LocalUpdate, RoundResult } from '../round/steps.ts'
import { assertTrainable, buildModel } from '../training/models.ts'
import { evaluateWithLoss, trainLocal, type Evaluation, type Samples } from '../training/local-trainer.ts'
import { OuterOptimizer, weightsHash } from '../training/outer-optimizer.ts'
import { flattenWeights } from '../training/weights.ts'
import { assignShards } from '../training/assignment.ts'
import { pinRm } from '../storage/pins.ts'
import { ContentNotFoundError, FetchTimeoutError } from '../storage/errors.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import { loadStatePointer, saveStatePointer, type StoredJob } from './job-store.ts'
import { NetworkState } from './network-state.ts'
import { loadState, publishState } from './state-snapshot.ts'
import { ShardData } from './shard-data.ts'
import { sliceSamples } from '../training/data/mnist.ts'
import type { CheckpointAttestationInput } from '../chain/auto-attest.ts'

/** What a checkpoint attester needs (node/chain/auto-attest.ts provides one). */
export interface CheckpointAttesterLike {
  attestInBackground: (input: CheckpointAttestationInput) => void
  drain: () => Promise<unknown>
}

export interface RoundEvent extends RoundResult {
  job: string
  rounds: number
  evaluation?: Evaluation
}

export interface RunJobOptions {
  peer: PeerNode
  home: string
  job: StoredJob
  logger: Logger
  signal?: AbortSignal
  /** How long a starting peer listens for newer announced state before its first round (ms). */
  joinWaitMs?: number
  fetchTimeoutMs?: number
  window?: Partial<MatchWindowPolicy>
  attester?: CheckpointAttesterLike
  onRound?: (event: RoundEvent) => void | Promise<void>
  /** Runs after the inner steps, before the averaging (tests that run several peers on one thread use it). */
  afterTrain?: (round: number) => Promise<void>
}

export interface JobOutcome { state: GlobalState, weightsSha256: string, stateCid?: string, evaluation?: Evaluation }

export async function runJob (opts: RunJobOptions): Promise<JobOutcome> {
  const { peer, job: { spec }, logger } = opts
  const signal = opts.signal ?? new AbortController().signal
  assertTrainable(spec.model)
  const model = buildModel(spec.model, spec.seed)
  const initial = flattenWeights(model)
  const size = initial.length
  const self = peer.peerId

  const decode = spec.model.kind === 'char-transformer' ? { context: spec.model.context } : {}
  const inputShape = spec.model.kind === 'mlp' ? [spec.model.inputs] : spec.model.kind === 'cnn' ? [...spec.model.inputShape] : undefined
  // The data may not be reachable yet (its providers still starting, a slow link): retry with backoff.
  const data = await retrying(logger, 'dataset', signal, async () => {
    const opened = await ShardData.open(peer.helia, spec.dataset, { timeoutMs: opts.fetchTimeoutMs, signal, decode, inputShape })
    await opened.shard(0, signal) // the samples fit the model (fails now, with both shapes, rather than every round)
    return opened
  })
  let evalSet: Samples | undefined
  const evalDataset = spec.evalDataset
  if (evalDataset != null) {
    evalSet = await retrying(logger, 'evaluation dataset', signal, async () => {
      const all = await (await ShardData.open(peer.helia, evalDataset, { timeoutMs: opts.fetchTimeoutMs, signal, decode, inputShape })).all(signal)
      return sliceSamples(all, 0, Math.min(all.count, spec.eval.maxSamples))
    })
  }
  logger.info({ job: spec.id, dataset: spec.dataset, shards: data.shardCount, samples: data.manifest.totalSamples, parameters: size, evalSamples: evalSet?.count }, 'job data found')

  // Where this peer resumes: its own last state (a restart), verified against the recorded hash.
  let state: GlobalState = { round: -1, weights: initial, momentum: new Float32Array(size) }
  let lastCid: string | undefined
  const pointer = await loadStatePointer(opts.home, spec.id)
  if (pointer != null) {
    try {
      const local = await loadState(peer.helia, CID.parse(pointer.cid), { expectedWeightsSha256: pointer.weightsSha256, size, offline: true, timeoutMs: 30_000 })
      state = { round: local.round, weights: local.weights, momentum: local.momentum.length > 0 ? local.momentum : new Float32Array(size) }
      lastCid = pointer.cid
      logger.info({ round: state.round, cid: pointer.cid }, 'resumed from the local state')
    } catch (err) {
      logger.warn({ cid: pointer.cid, err: (err as Error).message }, 'local state unreadable; starting from the network or the initial weights')
    }
  }

  const network = new NetworkState({
    job: spec.id,
    gossip: peer.gossip,
    helia: peer.helia,
    peerId: self,
    modelSize: size,
    logger,
    fetchTimeoutMs: opts.fetchTimeoutMs,
    onAdopt: async (adopted, cid, weightsSha256) => {
      logger.info({ round: adopted.round, cid, hash: weightsSha256.slice(0, 12) }, 'adopted the network state')
      lastCid = cid
      await saveStatePointer(opts.home, spec.id, { round: adopted.round, cid, weightsSha256 })
    }
  })
  // The job's peers this node is connected to (the ready topic's subscribers), itself included.
  const livePeers = (): string[] => {
    const subscribers = peer.libp2p.services.pubsub.getSubscribers(jobReadyTopic(spec.id)).map(String)
    return [...new Set([self, ...subscribers])].sort()
  }
  const window = new MatchWindow(opts.window)
  const averager = new AllReduceAverager({
    matchmaking: new Matchmaking({ gossip: peer.gossip, peerId: self }),
    encoder: updateEncoder(codecFor(spec.codec)),
    allReduce: new ButterflyAllReduce({ host: peer.libp2p, logger: logger.child({ component: 'allreduce' }) }),
    logger: logger.child({ component: 'averager' })
  }, { job: spec.id, combine: weightedMean, minGroupSize: spec.minPeers, window, livePeers })
  network.start()
  await averager.start()
  peer.joinJob(spec.id)

  // Meet the job's other peers through the DHT, now and every 30 s (peers that start later find this one).
  const meet = async (): Promise<void> => {
    try {
      await peer.rendezvous(jobRoundsTopic(spec.id), { signal: AbortSignal.any([signal, AbortSignal.timeout(20_000)]) })
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'rendezvous incomplete')
    }
  }
  await meet()
  const meetTimer = setInterval(() => { void meet() }, 30_000)
  meetTimer.unref()

  let lastEvaluation: Evaluation | undefined
  let evaluatedHash: string | undefined
  let lastUpdate: { round: number, from: string, update: LocalUpdate } | undefined
  let lastWasCheckpoint = true // the state resumed from is kept pinned
  try {
    const joinWaitMs = opts.joinWaitMs ?? 5_000
    if (await network.waitForNewer(state.round, joinWaitMs, signal)) logger.info({ newest: network.newest()?.round }, 'the network is ahead; catching up')
    const final = await runRounds(state, {
      rounds: spec.rounds,
      checkpointEvery: spec.checkpointEvery,
      logger,
      signal,
      sync: network,
      averager,
      diagnose: async () => ({ ...await peer.health.snapshot(), jobPeers: livePeers().length - 1, presenceDials: peer.presenceDials, repairs: peer.health.repairs }),
      trainer: {
        train: async (current, round, roundSignal) => {
          // A retry of the same round from the same state (its group failed to form) reuses the update.
          const from = weightsHash(current.weights)
          if (lastUpdate?.round === round && lastUpdate.from === from) return lastUpdate.update
          const peers = livePeers()
          const mine = assignShards({ jobId: spec.id, round, peerIds: peers, shardCount: data.shardCount }).get(self) ?? []
          const samples = await data.shards(mine, roundSignal)
          const started = Date.now()
          const update = samples == null
            ? { pseudoGradient: new Float32Array(size), samples: 0, loss: 0 }
            : await trainLocal(model, current.weights, samples, {
              ...spec.inner,
              seed: (spec.seed * 1_000_003 + round * 7919 + peers.indexOf(self)) >>> 0
            })
          window.observeTrainingTime(Date.now() - started)
          logger.info({ event: 'trained', round, shards: mine, peers: peers.length, samples: update.samples, loss: update.loss, ms: Date.now() - started }, 'inner steps done')
          await opts.afterTrain?.(round)
          lastUpdate = { round, from, update }
          return update
        }
      },
      outer: {
        apply: (current, average, round) => {
          const optimizer = new OuterOptimizer(spec.outer, current.momentum)
          const weights = optimizer.step(current.weights, average)
          return { round, weights, momentum: optimizer.getMomentum() }
        },
        hash: weightsHash
      },
      publisher: {
        publish: async (next, result) => {
          const totalSamples = result.contributions.reduce((s, c) => s + c.samples, 0)
          const published = await publishState(peer.helia, model, next, { job: spec.id, parent: lastCid, provide: result.checkpoint, metrics: { samples: totalSamples }, signal })
          const cid = published.cid.toString()
          await saveStatePointer(opts.home, spec.id, { round: next.round, cid, weightsSha256: published.weightsSha256 })
          // Keep the newest state and every checkpoint; earlier in-between snapshots are unpinned.
          if (lastCid != null && lastCid !== cid && !lastWasCheckpoint) await pinRm(peer.helia, CID.parse(lastCid)).catch(() => {})
          lastCid = cid
          lastWasCheckpoint = result.checkpoint
          await network.announce(next.round, published.weightsSha256, cid, result.contributions)
          const evaluate = evalSet != null && (result.checkpoint || (next.round + 1) % spec.eval.every === 0)
          lastEvaluation = evaluate ? evaluateWithLoss(model, next.weights, evalSet!) : undefined
          evaluatedHash = evaluate ? published.weightsSha256 : undefined
          if (result.checkpoint && opts.attester != null) {
            opts.attester.attestInBackground({ round: next.round, checkpointCid: cid, weightsSha256: published.weightsSha256, contributions: result.contributions, evalLoss: lastEvaluation?.loss ?? result.loss })
          }
          return cid
        }
      },
      onRound: async (result) => {
        const event: RoundEvent = { ...result, job: spec.id, rounds: spec.rounds, ...(lastEvaluation != null ? { evaluation: lastEvaluation } : {}) }
        logger.info({
          event: 'round',
          round: result.round,
          rounds: spec.rounds,
          loss: result.loss,
          samples: result.samples,
          peers: result.contributions.length,
          contributions: result.contributions,
          dropped: result.dropped,
          bytesSent: result.bytesSent,
          bytesReceived: result.bytesReceived,
          hash: result.weightsSha256,
          stateCid: result.stateCid,
          checkpoint: result.checkpoint,
          ms: result.millis,
          ...(lastEvaluation != null ? { evalAccuracy: lastEvaluation.accuracy, evalLoss: lastEvaluation.loss } : {})
        }, 'round')
        await opts.onRound?.(event)
      }
    })
    const weightsSha256 = weightsHash(final.weights)
    // The last evaluation may be of another state (this peer adopted the final one from the network).
    if (evalSet != null && (lastEvaluation == null || evaluatedHash !== weightsSha256)) lastEvaluation = evaluateWithLoss(model, final.weights, evalSet)
    return { state: final, weightsSha256, stateCid: lastCid, evaluation: lastEvaluation }
  } finally {
    clearInterval(meetTimer)
    peer.leaveJob(spec.id)
    await averager.stop()
    network.stop()
    await opts.attester?.drain()
    model.dispose()
  }
}

/** Waits between tries to fetch the job's data: 2, 4, 8... seconds, at most a minute. */
const DATA_RETRY: BackoffPolicy = { initialMs: 2_000, maxMs: 60_000 }

/** Runs `fn` until it succeeds, waiting DATA_RETRY between tries; only an abort stops it. */
async function retrying<T> (logger: Logger, what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      // Only fetches are retried: content that is there but wrong (bad manifest, samples that do not fit the
      // model, an invalid spec) will not get better.
      if (signal.aborted || !(err instanceof ContentNotFoundError || err instanceof FetchTimeoutError)) throw err
      const delay = backoff(attempt, DATA_RETRY)
      logger.warn({ attempt, retryInMs: delay, err: (err as Error).message }, `could not fetch the ${what}; retrying`)
      await sleep(delay, { signal })
    }
  }
}
