import assert from 'node:assert/strict'
import { OuterOptimizer, averagePseudoGradients, weightsHash } from '../../node/training/outer-optimizer.ts'
import { assignShards } from '../../node/training/assignment.ts'

function vec (n: number, seed: number): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = (s / 2 ** 32 - 0.5) * 0.01 }
  return out
}

describe('outer optimizer', () => {
  const contribs = [0, 1, 2, 3].map(i => ({ peerId: `peer-${i}`, pseudoGradient: vec(5000, i + 1), samples: 100 + i * 37 }))

  it('is bit-identical whatever the arrival order, and across runs', () => {
    const w = vec(5000, 99)
    const run = (order: typeof contribs): string => {
      const opt = new OuterOptimizer({ lr: 0.7, momentum: 0.9, nesterov: true })
      let x = w
      for (let r = 0; r < 3; r++) x = opt.step(x, averagePseudoGradients(order))
      return weightsHash(x)
    }
    const a = run(contribs)
    assert.equal(run([...contribs].reverse()), a)
    assert.equal(run([contribs[2], contribs[0], contribs[3], contribs[1]]), a)
    assert.notEqual(weightsHash(w), a)
  })

  it('FedAvg (lr 1, momentum 0) equals the weighted average of local weights', () => {
    const w = vec(1000, 7)
    const locals = [vec(1000, 8), vec(1000, 9)]
    const samples = [30, 90]
    const pg = averagePseudoGradients(locals.map((l, i) => ({ peerId: String(i), samples: samples[i], pseudoGradient: w.map((v, j) => v - l[j]) })))
    const out = new OuterOptimizer({ lr: 1, momentum: 0, nesterov: false }).step(w, pg)
    for (let j = 0; j < 1000; j++) assert.ok(Math.abs(out[j] - (locals[0][j] * 0.25 + locals[1][j] * 0.75)) < 1e-6)
  })

  it('carries momentum state through a checkpoint', () => {
    const w = vec(100, 1); const g = vec(100, 2)
    const a = new OuterOptimizer({ lr: 0.5, momentum: 0.9, nesterov: true })
    const w1 = a.step(w, g)
    const b = new OuterOptimizer(a.options, a.getMomentum())
    assert.equal(weightsHash(b.step(w1, g)), weightsHash(a.step(w1, g)))
  })
})

describe('shard assignment', () => {
  const peers = Array.from({ length: 8 }, (_, i) => `12D3KooPeer${i}`)

  it('is deterministic and complete: every shard exactly once', () => {
    const a = assignShards({ jobId: 'job', round: 3, peerIds: peers, shardCount: 200 })
    const b = assignShards({ jobId: 'job', round: 3, peerIds: [...peers].reverse(), shardCount: 200 })
    assert.deepEqual([...a.entries()], [...b.entries()])
    const all = [...a.values()].flat().sort((x, y) => x - y)
    assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => i))
  })

  it('is balanced: each of N peers gets ⌊S/N⌋ or ⌈S/N⌉ shards, also when shards are few', () => {
    for (const [n, shards, rounds] of [[8, 1000, 1], [4, 8, 20], [3, 8, 20], [8, 3, 20]]) {
      for (let round = 0; round < rounds; round++) {
        const a = assignShards({ jobId: 'job', round, peerIds: peers.slice(0, n), shardCount: shards })
        for (const [p, s] of a) assert.ok(s.length === Math.floor(shards / n) || s.length === Math.ceil(shards / n), `${n} peers, ${shards} shards, round ${round}: ${p} got ${s.length}`)
      }
    }
  })

  it('changes with the peer set, moving the leaver\'s shards and few others', () => {
    const a = assignShards({ jobId: 'job', round: 1, peerIds: peers, shardCount: 800 })
    const b = assignShards({ jobId: 'job', round: 1, peerIds: peers.slice(1), shardCount: 800 })
    assert.notDeepEqual([...a.entries()], [...b.entries()])
    let kept = 0; let had = 0
    for (const p of peers.slice(1)) for (const s of a.get(p)!) { had++; if (b.get(p)!.includes(s)) kept++ }
    assert.ok(kept / had > 0.8, `only ${kept} of ${had} shards stayed with their peer`)
    for (const s of a.get(peers[0])!) assert.ok(peers.slice(1).some(p => b.get(p)!.includes(s)))
  })

  it('changes from round to round, so a peer sees different shards over the job', () => {
    const r1 = assignShards({ jobId: 'job', round: 1, peerIds: peers.slice(0, 4), shardCount: 8 })
    const r2 = assignShards({ jobId: 'job', round: 2, peerIds: peers.slice(0, 4), shardCount: 8 })
    assert.notDeepEqual([...r1.entries()], [...r2.entries()])
  })
})
