import assert from 'node:assert/strict'
import { runRounds } from '../../node/round/round-loop.ts'
import { eagerStart, localProgressStart, runRoundsOverlapped } from '../../node/round/overlapped-loop.ts'
import { outerStep } from '../../node/round/apply-step.ts'
import type { GlobalState, RoundAverager, RoundPublisher, RoundResult, RoundTrainer, StateSync } from '../../node/round/steps.ts'
import { averagePseudoGradients } from '../../node/training/outer-optimizer.ts'
import { silentLogger } from '../../node/log/logger.ts'

type Event = { peer: string, what: 'train-start' | 'train-end' | 'reduce-start' | 'reduce-end', round: number }
const tick = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 2)) }

/** Peers averaging in memory: a round's reduce resolves once every peer of the group handed in its update. */
class Group {
  readonly events: Event[] = []
  private readonly rounds = new Map<number, { updates: Map<string, Float32Array>, done: Promise<void>, release: () => void }>()
  constructor (readonly peers: string[]) {}

  averager (peer: string, fail?: (round: number) => boolean): RoundAverager {
    return {
      average: async (round, update) => {
        this.events.push({ peer, what: 'reduce-start', round })
        if (fail?.(round) === true) { await tick(); throw new Error('group did not form') }
        let r = this.rounds.get(round)
        if (r == null) {
          let release!: () => void
          const done = new Promise<void>(resolve => { release = resolve })
          r = { updates: new Map(), done, release }
          this.rounds.set(round, r)
        }
        r.updates.set(peer, update.pseudoGradient)
        if (r.updates.size === this.peers.length) r.release()
        await r.done
        await tick()
        const average = averagePseudoGradients([...r.updates].map(([peerId, pseudoGradient]) => ({ peerId, pseudoGradient, samples: 10 })))
        this.events.push({ peer, what: 'reduce-end', round })
        return { average, contributions: this.peers.map(p => ({ peer: p, samples: 10 })), dropped: [], standIns: [], bytesSent: 0, bytesReceived: 0 }
      }
    }
  }

  /** A trainer whose "inner steps" move each weight by a peer- and round-specific amount; records where each round started. */
  trainer (peer: string, starts: Map<number, Float32Array>, rounds?: number[], prefetched?: Array<{ round: number, training: number[] }>): RoundTrainer {
    const k = this.peers.indexOf(peer) + 1
    const training = new Set<number>()
    return {
      prefetch: (round) => { prefetched?.push({ round, training: [...training] }) },
      train: async (state, round, signal) => {
        this.events.push({ peer, what: 'train-start', round })
        training.add(round)
        starts.set(round, state.weights.slice())
        rounds?.push(round)
        for (let i = 0; i < 3; i++) { signal.throwIfAborted(); await tick() }
        this.events.push({ peer, what: 'train-end', round })
        training.delete(round)
        return { pseudoGradient: state.weights.map((_w, i) => 0.01 * k * (round + 1) + 0.001 * i), samples: 10, loss: 1 }
      }
    }
  }
}

const noPublish: RoundPublisher = { publish: async () => undefined }
const apply = outerStep({ lr: 0.7, momentum: 0.9, nesterov: true })
const initial = (): GlobalState => ({ round: -1, weights: new Float32Array([0.5, -0.25, 1, 2]), momentum: new Float32Array(4) })

describe('round loop: overlapped rounds (delayed outer update)', () => {
  it('every peer ends with the same global state, each round reduced while the next one trains', async () => {
    const group = new Group(['a', 'b', 'c'])
    const starts = new Map(group.peers.map(p => [p, new Map<number, Float32Array>()]))
    const results = new Map(group.peers.map(p => [p, [] as RoundResult[]]))
    const globals = new Map(group.peers.map(p => [p, [] as GlobalState[]]))
    const finals = await Promise.all(group.peers.map(async peer => await runRoundsOverlapped(initial(), {
      rounds: 5,
      checkpointEvery: 5,
      steps: { train: group.trainer(peer, starts.get(peer)!), reduce: group.averager(peer), apply, publish: noPublish },
      logger: silentLogger(),
      onRound: (result, state) => { results.get(peer)!.push(result); globals.get(peer)!.push(state) }
    })))

    // The global state (and each round's hash) is the same at every peer.
    assert.deepEqual(finals.map(f => f.round), [4, 4, 4])
    const hashes = group.peers.map(p => results.get(p)!.map(r => r.weightsSha256))
    assert.equal(hashes[0].length, 5)
    assert.deepEqual(hashes[1], hashes[0])
    assert.deepEqual(hashes[2], hashes[0])
    assert.equal(apply.hash(finals[0].weights), hashes[0][4])

    // Where each round trained from: round 0 from the initial weights; round r+1 from outer(G_{r-1}, Δ_r), the
    // outer step from the last applied global state with this peer's own update (G_{-1}: the initial state).
    for (const peer of group.peers) {
      const s = starts.get(peer)!
      const g = [initial(), ...globals.get(peer)!]
      assert.deepEqual([...s.get(0)!], [...initial().weights])
      const k = group.peers.indexOf(peer) + 1
      const delta = (r: number, from: Float32Array): Float32Array => from.map((_w, i) => 0.01 * k * (r + 1) + 0.001 * i)
      for (let r = 0; r < 4; r++) {
        const own = { pseudoGradient: delta(r, s.get(r)!), samples: 10, loss: 1 }
        const expected = apply.apply(g[r], own.pseudoGradient, g[r].round).weights
        assert.deepEqual([...s.get(r + 1)!], [...eagerStart(apply)(g[r], own)], `${peer}: round ${r + 1}'s start`)
        assert.deepEqual([...s.get(r + 1)!], [...expected])
        // Peer b's update is the group's mean, so its estimate is the global state itself; a's and c's are not.
        if (peer !== 'b') assert.notDeepEqual([...s.get(r + 1)!], [...g[r + 1].weights], `${peer}: round ${r + 1} started from the global state`)
      }
    }

    // Overlap, from the recorded order of events: at each peer, round r+1's training started before round r's reduce ended.
    for (const peer of group.peers) {
      const at = (what: Event['what'], round: number): number => group.events.findIndex(e => e.peer === peer && e.what === what && e.round === round)
      for (let r = 0; r < 4; r++) {
        assert.ok(at('reduce-start', r) >= 0 && at('train-start', r + 1) >= 0)
        assert.ok(at('train-start', r + 1) < at('reduce-end', r), `${peer}: round ${r + 1} trained only after round ${r}'s reduce`)
        assert.ok(at('reduce-start', r + 1) > at('reduce-end', r), `${peer}: two reduces in flight`)
      }
    }
  })

  it("fetches the next round's data while a round trains", async () => {
    const group = new Group(['a'])
    const prefetched: Array<{ round: number, training: number[] }> = []
    await runRoundsOverlapped(initial(), { rounds: 4, checkpointEvery: 5, steps: { train: group.trainer('a', new Map(), undefined, prefetched), reduce: group.averager('a'), apply, publish: noPublish }, logger: silentLogger() })
    assert.deepEqual(prefetched, [{ round: 1, training: [0] }, { round: 2, training: [1] }, { round: 3, training: [2] }])
  })

  it('the plain loop never trains during a reduce (the baseline the overlap is measured against)', async () => {
    const group = new Group(['a', 'b'])
    await Promise.all(group.peers.map(async peer => await runRounds(initial(), {
      rounds: 3, checkpointEvery: 5, steps: { train: group.trainer(peer, new Map()), reduce: group.averager(peer), apply, publish: noPublish }, logger: silentLogger()
    })))
    for (const peer of group.peers) {
      const at = (what: Event['what'], round: number): number => group.events.findIndex(e => e.peer === peer && e.what === what && e.round === round)
      for (let r = 0; r < 2; r++) assert.ok(at('train-start', r + 1) > at('reduce-end', r))
    }
  })

  it('takes another start rule when given (localProgressStart: G_{r-1} − Δ_r)', async () => {
    const group = new Group(['a'])
    const starts = new Map<number, Float32Array>()
    const globals: GlobalState[] = [initial()]
    await runRoundsOverlapped(initial(), {
      rounds: 3, checkpointEvery: 5, start: localProgressStart, steps: { train: group.trainer('a', starts), reduce: group.averager('a'), apply, publish: noPublish }, logger: silentLogger(), onRound: (_r, state) => { globals.push(state) }
    })
    for (let r = 0; r < 2; r++) {
      const delta = starts.get(r)!.map((_w, i) => 0.01 * (r + 1) + 0.001 * i)
      assert.deepEqual([...starts.get(r + 1)!], [...globals[r].weights.map((w, i) => Math.fround(w - delta[i]))])
    }
  })

  it('a failed reduce drops the training in flight and restarts the pipeline from the global state', async () => {
    const group = new Group(['a'])
    const starts = new Map<number, Float32Array>()
    const trainedRounds: number[] = []
    let failed = false
    const sync: StateSync = { catchUp: async (current) => current, waitForNewer: async () => false }
    const final = await runRoundsOverlapped(initial(), {
      rounds: 4,
      checkpointEvery: 5,
      sync,
      steps: { train: group.trainer('a', starts, trainedRounds), reduce: group.averager('a', (round) => { if (round === 1 && !failed) { failed = true; return true } return false }), apply, publish: noPublish },
      logger: silentLogger()
    })
    assert.equal(final.round, 3)
    // Round 1 failed while round 2 trained: round 2's training was dropped, round 1 trained again from G_0.
    assert.deepEqual(trainedRounds, [0, 1, 2, 1, 2, 3])
    assert.ok(group.events.some(e => e.what === 'train-start' && e.round === 2) && group.events.filter(e => e.what === 'train-end' && e.round === 2).length === 1, 'the dropped training of round 2 did not finish')
  })
})
