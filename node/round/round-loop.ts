/**
 * The DiLoCo round driver: no coordinator, every peer runs this loop; the all-reduce's group formation is the
 * only synchronisation. A round is its steps in order (steps.ts):
 *
 *   train → reduce (group, encode, all-reduce, combine) → apply → publish → evaluate → attest
 *
 * A round that fails for this peer (no group formed, averaging timed out) leaves the state unchanged; the
 * peer catches up with its peers and tries again.
 */
import type { Logger } from 'pino'
import { backoff, sleep, systemClock, type Clock } from '../time/clock.ts'
import type { GlobalState, LocalUpdate, RoundResult, RoundSteps, StateSync } from './steps.ts'

export interface RoundLoopOptions {
  /** Rounds to run in total (the job's length); the loop stops after round `rounds - 1`. */
  rounds: number
  checkpointEvery: number
  steps: RoundSteps
  sync?: StateSync
  logger: Logger
  signal?: AbortSignal
  onRound?: (result: RoundResult, state: GlobalState) => void | Promise<void>
  clock?: Clock
  /** First wait after a failed round (ms), doubling with each further failure up to 16 s; default 1000. */
  retryBackoffMs?: number
  /** What the node can tell about its network when a round fails (connections, routing table...), logged with it. */
  diagnose?: () => Promise<Record<string, unknown>>
}

/** The longest wait between retries of a failing round. */
export const MAX_RETRY_BACKOFF_MS = 16_000

export class RoundFailedError extends Error {
  override name = 'RoundFailedError'
}

/** One round from `state`: train, then everything after it (completeRound). */
export async function runRound (state: GlobalState, round: number, opts: RoundLoopOptions): Promise<{ state: GlobalState, result: RoundResult }> {
  const started = (opts.clock ?? systemClock).now()
  const update = await opts.steps.train.train(state, round, opts.signal ?? new AbortController().signal)
  // Update checks (shape, finite values, a norm bound) belong here: between what this peer trained and what it sends.
  return await completeRound(state, round, update, started, opts)
}

/**
 * A round after its training: reduce the update with the group's, apply the outer step, publish the new
 * state, evaluate it when due, and hand a checkpoint to the attester. Apart from `train`, so that an
 * overlapped loop can run it for round t while round t+1 trains.
 */
export async function completeRound (state: GlobalState, round: number, update: LocalUpdate, started: number, opts: RoundLoopOptions): Promise<{ state: GlobalState, result: RoundResult }> {
  const { steps } = opts
  const clock = opts.clock ?? systemClock
  const signal = opts.signal ?? new AbortController().signal
  const averaged = await steps.reduce.average(round, update, signal)
  if (averaged.average.length !== state.weights.length) {
    throw new RoundFailedError(`round ${round}: averaged vector has ${averaged.average.length} values, the model ${state.weights.length}`)
  }
  const next = steps.apply.apply(state, averaged.average, round)
  // Every K rounds, and the job's last round, so that a finished job always ends in a published checkpoint.
  const checkpoint = (opts.checkpointEvery > 0 && (round + 1) % opts.checkpointEvery === 0) || round === opts.rounds - 1
  const partial: Omit<RoundResult, 'stateCid' | 'evaluation'> = {
    round,
    weightsSha256: steps.apply.hash(next.weights),
    loss: update.loss,
    samples: update.samples,
    contributions: averaged.contributions,
    ...(averaged.updates != null ? { updates: averaged.updates } : {}),
    dropped: averaged.dropped,
    standIns: averaged.standIns,
    bytesSent: averaged.bytesSent,
    bytesReceived: averaged.bytesReceived,
    checkpoint,
    millis: clock.now() - started
  }
  const stateCid = await steps.publish.publish(next, partial)
  const published: RoundResult = { ...partial, stateCid }
  const evaluation = steps.evaluate?.evaluate(next, published)
  if (checkpoint && stateCid != null) steps.attest?.attest(next, { ...published, stateCid })
  return { state: next, result: evaluation != null ? { ...published, evaluation } : published }
}

/**
 * Runs rounds from `state.round + 1` until the job's last round or until `signal` aborts. Before each round
 * the peer catches up with any newer state its peers announced (it joined late, restarted, or failed a round
 * the others completed), so it never averages against stale weights.
 */
export async function runRounds (initial: GlobalState, opts: RoundLoopOptions): Promise<GlobalState> {
  const signal = opts.signal ?? new AbortController().signal
  let state = initial
  let failures = 0
  while (state.round + 1 < opts.rounds && !signal.aborted) {
    state = await catchUpWithNetwork(state, opts, signal)
    if (state.round + 1 >= opts.rounds) break
    const round = state.round + 1
    try {
      const out = await runRound(state, round, { ...opts, signal })
      state = out.state
      logRoundComplete(opts.logger, out.result)
      failures = 0
      await opts.onRound?.(out.result, state)
    } catch (err) {
      if (signal.aborted) break
      failures++
      state = await afterFailedRound(state, round, failures, err as Error, opts, signal)
    }
  }
  return state
}

/** The line every completed round logs (`extra`: what the loop adds, e.g. its overlap mode). */
export function logRoundComplete (logger: Logger, result: RoundResult, extra: Record<string, unknown> = {}): void {
  logger.info({ round: result.round, loss: result.loss, samples: result.samples, peers: result.contributions.length, dropped: result.dropped, hash: result.weightsSha256.slice(0, 12), ms: result.millis, ...extra }, 'round complete')
}

/** The newest state the job's peers announced, when it is ahead of `state` (logged), else `state`. */
export async function catchUpWithNetwork (state: GlobalState, opts: RoundLoopOptions, signal: AbortSignal): Promise<GlobalState> {
  if (opts.sync == null) return state
  const synced = await opts.sync.catchUp(state, signal)
  if (synced.round > state.round) opts.logger.info({ from: state.round, to: synced.round }, 'caught up with the network state')
  return synced
}

/**
 * After round `round` failed (the `failures`-th failure in a row): logs it with the network's diagnosis and
 * waits before the next try. Returns the state to continue from (the same state, or, without a way to catch
 * up, the failed round skipped).
 */
export async function afterFailedRound (state: GlobalState, round: number, failures: number, err: Error, opts: RoundLoopOptions, signal: AbortSignal): Promise<GlobalState> {
  // Back off before trying again (1, 2, 4... up to 16 s), or less if the others announce a newer state:
  // retrying at once would spin on the CPU the network needs to hear from the others.
  const backoffMs = backoff(failures, { initialMs: opts.retryBackoffMs ?? 1000, maxMs: MAX_RETRY_BACKOFF_MS })
  const network = await opts.diagnose?.().catch(() => undefined)
  opts.logger.warn({ round, err: err.message, retryInMs: backoffMs, network }, 'round failed; state unchanged, catching up before the next round')
  if (opts.sync == null) return { ...state, round } // without a way to catch up, skip the round
  if (opts.sync.waitForNewer != null) await opts.sync.waitForNewer(state.round, backoffMs, signal)
  else await sleep(backoffMs, { signal, clock: opts.clock }).catch(() => {}) // an abort ends the loop at its next check
  return state
}
