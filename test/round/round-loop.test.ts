import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { runRounds } from '../../node/round/round-loop.ts'
import type { GlobalState, OuterStep, RoundAttester, RoundAverager, RoundEvaluator, RoundPublisher, RoundResult, RoundTrainer, StateSync } from '../../node/round/steps.ts'
import { silentLogger } from '../../node/log/logger.ts'

const outer: OuterStep = {
  apply: (state, average, round) => ({ round, weights: state.weights.map((w, i) => w - average[i]), momentum: state.momentum }),
  hash: (w) => createHash('sha256').update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength)).digest('hex')
}

function trainer (delta: number): RoundTrainer {
  return { train: async () => ({ pseudoGradient: new Float32Array([delta, delta]), samples: 10, loss: 1 }) }
}

const echoAverager: RoundAverager = {
  average: async (_round, update) => ({ average: update.pseudoGradient, contributions: [{ peer: 'me', samples: update.samples }], dropped: [], standIns: [], bytesSent: 0, bytesReceived: 0 })
}

function recordingPublisher (published: Array<{ round: number, checkpoint: boolean }>): RoundPublisher {
  return { publish: async (state, result) => { published.push({ round: state.round, checkpoint: result.checkpoint }); return undefined } }
}

const start: GlobalState = { round: -1, weights: new Float32Array([0, 0]), momentum: new Float32Array(2) }

describe('round loop', () => {
  it('runs every round once, applies the averaged update, and checkpoints every K rounds and at the last round', async () => {
    const published: Array<{ round: number, checkpoint: boolean }> = []
    const results: RoundResult[] = []
    const end = await runRounds(start, {
      rounds: 5, checkpointEvery: 2, steps: { train: trainer(1), reduce: echoAverager, apply: outer, publish: recordingPublisher(published) }, logger: silentLogger(),
      onRound: (r) => { results.push(r) }
    })
    assert.equal(end.round, 4)
    assert.deepEqual([...end.weights], [-5, -5])
    assert.deepEqual(published.map(p => p.round), [0, 1, 2, 3, 4])
    // Rounds 2 and 4 (K = 2), and round 5 as the job's last.
    assert.deepEqual(published.filter(p => p.checkpoint).map(p => p.round), [1, 3, 4])
    assert.equal(results[4].weightsSha256, outer.hash(end.weights))
  })

  it('after a failed round, catches up with the state its peers announced instead of diverging', async () => {
    let calls = 0
    const flaky: RoundAverager = {
      average: async (round, update, signal) => {
        calls++
        if (round === 1 && calls === 2) throw new Error('group did not form')
        return await echoAverager.average(round, update, signal)
      }
    }
    // The network moved on to round 2 with weights [-10, -10] while this peer failed round 1.
    const network: GlobalState = { round: 2, weights: new Float32Array([-10, -10]), momentum: new Float32Array(2) }
    let failedOnce = false
    const sync: StateSync = {
      catchUp: async (current) => {
        if (calls >= 2 && !failedOnce) { failedOnce = true; return network }
        return current
      }
    }
    const rounds: number[] = []
    const end = await runRounds(start, {
      rounds: 5, checkpointEvery: 0, steps: { train: trainer(1), reduce: flaky, apply: outer, publish: recordingPublisher([]) }, logger: silentLogger(), sync,
      onRound: (r) => { rounds.push(r.round) }
    })
    assert.deepEqual(rounds, [0, 3, 4], 'rounds 1 and 2 came from the network, not from a diverged local run')
    assert.deepEqual([...end.weights], [-12, -12])
  })

  it('after failed rounds, backs off (doubling) or until the network announces a newer state, instead of spinning', async () => {
    let attempts = 0
    const failing: RoundAverager = {
      average: async (round, update, signal) => {
        if (round === 1 && ++attempts <= 3) throw new Error('group did not form')
        return await echoAverager.average(round, update, signal)
      }
    }
    const waits: Array<{ round: number, ms: number }> = []
    const sync: StateSync = {
      catchUp: async (current) => current,
      waitForNewer: async (round, ms) => { waits.push({ round, ms }); return false }
    }
    const end = await runRounds(start, {
      rounds: 3, checkpointEvery: 0, steps: { train: trainer(1), reduce: failing, apply: outer, publish: recordingPublisher([]) }, logger: silentLogger(), sync, retryBackoffMs: 5
    })
    assert.equal(end.round, 2)
    assert.deepEqual(waits, [{ round: 0, ms: 5 }, { round: 0, ms: 10 }, { round: 0, ms: 20 }])
  })

  it('stops when aborted', async () => {
    const ctrl = new AbortController()
    const end = await runRounds(start, {
      rounds: 100, checkpointEvery: 0, steps: { train: trainer(1), reduce: echoAverager, apply: outer, publish: recordingPublisher([]) }, logger: silentLogger(), signal: ctrl.signal,
      onRound: (r) => { if (r.round === 2) ctrl.abort() }
    })
    assert.equal(end.round, 2)
  })

  it('after publishing, evaluates the rounds that are due and hands each checkpoint (with its evaluation loss) to the attester', async () => {
    const order: string[] = []
    const publisher: RoundPublisher = { publish: async (state) => { order.push(`publish ${state.round}`); return `cid-${state.round}` } }
    const evaluator: RoundEvaluator = {
      evaluate: (state, result) => {
        order.push(`evaluate ${state.round}`)
        assert.equal(result.stateCid, `cid-${state.round}`, 'the evaluation sees the published result')
        return state.round % 2 === 1 ? { accuracy: 0.5, loss: 10 + state.round, samples: 3 } : undefined
      }
    }
    const attested: Array<{ round: number, cid: string, stateRound: number }> = []
    const attester: RoundAttester = {
      attest: (state, result) => { order.push(`attest ${result.round}`); attested.push({ round: result.round, cid: result.stateCid, stateRound: state.round }) },
      drain: async () => {}
    }
    const results: RoundResult[] = []
    await runRounds(start, {
      rounds: 4, checkpointEvery: 2, steps: { train: trainer(1), reduce: echoAverager, apply: outer, publish: publisher, evaluate: evaluator, attest: attester }, logger: silentLogger(),
      onRound: (r) => { results.push(r) }
    })
    assert.deepEqual(order, ['publish 0', 'evaluate 0', 'publish 1', 'evaluate 1', 'attest 1', 'publish 2', 'evaluate 2', 'publish 3', 'evaluate 3', 'attest 3'])
    assert.deepEqual(attested, [{ round: 1, cid: 'cid-1', stateRound: 1 }, { round: 3, cid: 'cid-3', stateRound: 3 }], 'each checkpoint is handed over with the state it published')
    assert.deepEqual(results.map(r => r.evaluation?.loss), [undefined, 11, undefined, 13])
  })

  it('an abort during the back-off after a failed round ends the loop at once', async () => {
    const ctrl = new AbortController()
    const failing: RoundAverager = { average: async () => { setTimeout(() => { ctrl.abort() }, 20); throw new Error('group did not form') } }
    const started = Date.now()
    // Without a state sync the loop would skip the round; with one that cannot wait, it sleeps through the back-off.
    const end = await runRounds(start, {
      rounds: 3, checkpointEvery: 0, steps: { train: trainer(1), reduce: failing, apply: outer, publish: recordingPublisher([]) }, logger: silentLogger(), signal: ctrl.signal,
      sync: { catchUp: async (current) => current }, retryBackoffMs: 60_000
    })
    assert.equal(end.round, -1)
    assert.ok(Date.now() - started < 10_000, `the loop ended ${Date.now() - started} ms later`)
  })
})
