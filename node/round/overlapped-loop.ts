/**
 * The overlapped round loop (job spec `overlap: "delayed-outer"`): round t's all-reduce, outer step and
 * publication run while round t+1's inner steps train, so that a peer's compute is not idle while the network
 * averages. The outer update is one round late, as in the overlapped/streaming variants of DiLoCo:
 *
 *   round r trains from S_r to L_r          its pseudo-gradient Δ_r = S_r − L_r
 *   reduce r (in the background)            G_r = outer(G_{r−1}, mean Δ_r)     (the global state, as today)
 *   round r+1 trains from S_{r+1} = outer(G_{r−1}, Δ_r)
 *
 * G_{r−1} is the newest global state when round r's training ends (round r−1's reduce ran meanwhile). Round
 * r+1 starts where the outer step would take G_{r−1} if the group's average were this peer's own update
 * (an "eager" local estimate of G_r, the outer momentum included): it keeps this peer's progress of round r and
 * pulls every peer back to the shared state each round, so the peers' starting points never drift further
 * apart than one round of local progress. Round r+1's pseudo-gradient is taken against S_{r+1} and applied to
 * G_r: the global state is still the outer optimizer's result of the group's averages alone (completeRound,
 * unchanged), so every peer's global state, and the round's weights hash, stay bit-identical.
 *
 * The simpler start G_{r−1} − Δ_r (the last global state plus the local progress, `localProgressStart`) was
 * measured too: with the outer optimizer's lr 0.7 and Nesterov momentum 0.9 it starts far behind G_r and lost
 * more accuracy (benchmarks/overlap-accuracy.ts, benchmarks/README.md).
 *
 * While a round trains, the trainer fetches the next round's data (RoundTrainer.prefetch), so the next round
 * starts the moment this one ends. At most one reduce is in flight: round r+1's reduce starts after round r's is applied. A failed round, or a
 * newer state announced by the network, drains the pipeline (the training in flight is dropped) and restarts it
 * from the global state, as a plain round would.
 */
import { systemClock } from '../time/clock.ts'
import { afterFailedRound, catchUpWithNetwork, completeRound, logRoundComplete, type RoundLoopOptions } from './round-loop.ts'
import type { GlobalState, LocalUpdate, OuterStep } from './steps.ts'

/** Where round r+1 starts: the outer step from the newest global state with this peer's own update as the average. */
export function eagerStart (apply: OuterStep): OverlappedStart {
  return (global, update) => apply.apply(global, update.pseudoGradient, global.round).weights
}

/** The alternative start, for comparison: the newest global state plus this peer's progress, global − Δ (per element, float32). */
export function localProgressStart (global: GlobalState, update: LocalUpdate): Float32Array {
  const g = global.weights
  const d = update.pseudoGradient
  if (g.length !== d.length) throw new RangeError(`the pseudo-gradient has ${d.length} values, the model ${g.length}`)
  const start = new Float32Array(g.length)
  for (let i = 0; i < g.length; i++) start[i] = g[i] - d[i]
  return start
}

/** Where round r+1 starts from the newest global state G_{r−1} and this peer's round-r update. */
export type OverlappedStart = (global: GlobalState, update: LocalUpdate) => Float32Array

interface Training {
  round: number
  done: Promise<{ update: LocalUpdate, started: number }>
  /** Stops the training (between two steps) and waits for it to end. */
  cancel: () => Promise<void>
}

/** Runs rounds like round-loop.ts's runRounds, each round's reduce overlapping the next round's training; `start`: eagerStart unless given. */
export async function runRoundsOverlapped (initial: GlobalState, opts: RoundLoopOptions & { start?: OverlappedStart }): Promise<GlobalState> {
  const nextStart: OverlappedStart = opts.start ?? eagerStart(opts.steps.apply)
  const signal = opts.signal ?? new AbortController().signal
  const clock = opts.clock ?? systemClock
  const startTraining = (from: GlobalState, weights: Float32Array, round: number): Training => {
    const controller = new AbortController()
    const stop = (): void => { controller.abort(signal.reason) }
    signal.addEventListener('abort', stop, { once: true })
    const started = clock.now()
    const done = opts.steps.train.train({ ...from, weights }, round, controller.signal)
      .then(update => ({ update, started }))
      .finally(() => { signal.removeEventListener('abort', stop) })
    done.catch(() => {}) // awaited (or cancelled) by the loop; never an unhandled rejection
    // The round after this one starts as soon as this one ends: its data should be here by then.
    if (round + 1 < opts.rounds) opts.steps.train.prefetch?.(round + 1, signal)
    return {
      round,
      done,
      cancel: async () => {
        controller.abort(new Error(`round ${round}: training dropped (the pipeline restarts)`))
        await done.catch(() => {})
      }
    }
  }

  let state = initial
  let failures = 0
  while (state.round + 1 < opts.rounds && !signal.aborted) {
    state = await catchUpWithNetwork(state, opts, signal)
    if (state.round + 1 >= opts.rounds) break
    let round = state.round + 1
    let next: Training | undefined
    try {
      // The pipeline's first round trains from the global state, as a plain round does.
      let trained = await startTraining(state, state.weights, round).done
      while (true) {
        const reducing = completeRound(state, round, trained.update, trained.started, { ...opts, signal })
        if (round + 1 < opts.rounds) next = startTraining(state, nextStart(state, trained.update), round + 1)
        const out = await reducing
        state = out.state
        logRoundComplete(opts.logger, out.result, { overlap: 'delayed-outer' })
        failures = 0
        await opts.onRound?.(out.result, state)
        if (next == null) break
        if (opts.sync != null) {
          // This peer fell behind (left out of a group the others completed, or forked): restart from the network's state.
          const synced = await opts.sync.catchUp(state, signal)
          if (synced !== state) {
            opts.logger.info({ from: state.round, to: synced.round, dropped: next.round }, 'caught up with the network state; the overlapped pipeline restarts')
            await next.cancel()
            next = undefined
            state = synced
            break
          }
        }
        round = next.round
        trained = await next.done
        next = undefined
      }
    } catch (err) {
      await next?.cancel()
      if (signal.aborted) break
      failures++
      state = await afterFailedRound(state, round, failures, err as Error, opts, signal)
    }
  }
  return state
}

