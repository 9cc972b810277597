/**
 * An overlapped job (`overlap: "delayed-outer"`) over the real network: peer processes on 127.0.0.1 complete it
 * with the same weights hash every round, and their logs show each round's all-reduce running while the next
 * round trained (in the trainer worker thread).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import type { LogLine } from '../../node/demo/peer-process.ts'
import { codecFor } from '../../node/compression/index.ts'
import { getCheckpointManifest } from '../../node/storage/checkpoints.ts'
import { fetchUpdatePart } from '../../node/storage/update-parts.ts'
import { startTestNetwork, type TestNetwork } from './network.ts'

const ROUNDS = 4
// Inner steps long enough that a round's all-reduce (about 1 s of matchmaking and 1 s of exchange here) fits
// inside the next round's training with room to spare on a loaded 2-core machine.
const STEPS = 150

describe('job: overlapped rounds (delayed outer update) between peer processes', function () {
  this.timeout(300_000)
  let net: TestNetwork
  after(async function () {
    await net?.stop(this.test?.parent?.tests.some(t => t.state === 'failed') === true)
  })

  it('completes with identical weights every round; round t is reduced while round t+1 trains', async () => {
    net = await startTestNetwork({ peers: 2, trainDigits: 2000, job: { rounds: ROUNDS, checkpointEvery: ROUNDS, overlap: 'delayed-outer', inner: { steps: STEPS, lr: 1e-3, weightDecay: 0.01, batchSize: 64 }, eval: { every: ROUNDS, maxSamples: 500 } } })
    for (let i = 0; i < 2; i++) net.start(i)
    const done = await Promise.all(net.peers.map(async p => await p.waitFor(l => l.event === 'job-done', 240_000, 'job-done')))
    assert.equal(new Set(done.map(d => d.hash as string)).size, 1, `final hashes differ: ${done.map(d => d.hash as string).join(', ')}`)

    // The final checkpoint commits to each peer's update (audits are on by default), and the peers, still
    // lingering, serve every part by its digest: the bootstrap node stands in for a validator.
    const stateCid = done[0].stateCid as string
    const { manifest } = await getCheckpointManifest(net.boot.helia, CID.parse(stateCid), { timeoutMs: 15_000 })
    assert.equal(manifest.version, 3)
    assert.ok(manifest.updates != null, 'the checkpoint has the update layout')
    assert.deepEqual(manifest.contributions?.map(c => c.peer), [...net.peerIds].sort())
    const codec = codecFor(manifest.updates.codec)
    for (const c of manifest.contributions ?? []) {
      assert.equal(c.update?.length, manifest.updates.parts.length, `${c.peer} lists a digest for every part`)
      let values = 0
      for (const [k, d] of (c.update ?? []).entries()) {
        const bytes = await fetchUpdatePart(net.boot.helia, d, { timeoutMs: 15_000 })
        assert.equal(createHash('sha256').update(bytes).digest('hex'), d)
        const part = codec.decode(bytes)
        assert.equal(part.length, manifest.updates.parts[k])
        values += part.length
      }
      assert.equal(values, manifest.updates.parts.reduce((s, n) => s + n, 0))
    }

    // Every round's global state is the same at both peers, and both peers averaged in it.
    const byRound = net.peers.map(p => new Map(p.rounds().map(r => [r.round as number, r])))
    for (let r = 0; r < ROUNDS; r++) {
      const [a, b] = byRound.map(m => m.get(r))
      assert.ok(a != null && b != null, `round ${r} missing at a peer`)
      assert.equal(a.hash, b.hash, `round ${r}: hashes differ`)
      assert.equal(a.peers, 2, `round ${r} was not averaged by both peers`)
    }

    for (const peer of net.peers) {
      assert.ok(peer.logs.some(l => /worker thread/.test(l.msg ?? '')), `${peer.name} did not train in a worker thread`)
      const at = (match: (l: LogLine) => boolean): number => peer.logs.findIndex(match)
      const training = (r: number): number => at(l => l.event === 'training' && l.round === r)
      const trained = (r: number): number => at(l => l.event === 'trained' && l.round === r)
      const group = (r: number): number => at(l => l.event === 'group' && l.round === r)
      const round = (r: number): number => at(l => l.event === 'round' && l.round === r)
      // In the log's order: round t+1's training starts before round t's group forms and its result is in.
      for (let r = 0; r < ROUNDS - 1; r++) {
        assert.ok(trained(r) >= 0 && training(r + 1) >= 0 && group(r) >= 0 && round(r) >= 0, `${peer.name}: round ${r}'s events missing`)
        assert.ok(training(r + 1) < group(r), `${peer.name}: round ${r + 1} started training after round ${r}'s group formed`)
        assert.ok(training(r + 1) < round(r), `${peer.name}: round ${r + 1} started training after round ${r} completed`)
      }
      // The all-reduce progressed during the training: some round's group formed and its result came in
      // (all-reduce, outer step, publication) before the next round's inner steps were done.
      const within = Array.from({ length: ROUNDS - 1 }, (_, r) => r).filter(r => round(r) < trained(r + 1))
      assert.ok(within.length > 0, `${peer.name}: no round completed while the next one trained`)
      console.log(`      ${peer.name}: rounds completed while the next one trained: ${within.join(', ')} of 0-${ROUNDS - 2}`)
    }
  })
})
