import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator, weightedMean } from '../../node/allreduce/combine.ts'
import { codecFor, updateEncoder } from '../../node/compression/index.ts'
import { BufferPool } from '../../node/memory/buffer-pool.ts'
import { randomVector, sameBits, startConnectedNodes, stopAll } from './helpers.ts'

const TIMEOUTS = { floorMs: 5000, multiplier: 4, defaultBps: 50 * 1024 * 1024, defaultLatencyMs: 20, minSampleBytes: 8 * 1024 }

/**
 * Reused memory must not leak into results: rounds run back to back over pooled buffers (the encode step's,
 * the contributions a reducer reads, the results a member reads, the averages assembled in turn) give, round
 * after round, the same bits as the same rounds on services and encoders that allocate everything fresh.
 */
describe('all-reduce rounds over pooled buffers', function () {
  this.timeout(120_000)
  let nodes: Array<Libp2p<any>> = []
  afterEach(async () => { await stopAll(nodes) })

  async function rounds (pooled: boolean, count: number): Promise<{ results: Float32Array[][], pools: BufferPool[] }> {
    nodes = await startConnectedNodes(3)
    const pools = nodes.map(() => new BufferPool())
    // lingerMs 0: each round's session closes (and gives its buffers back) before the next round begins.
    const services = nodes.map((n, i) => new ButterflyAllReduce({ host: n }, { timeouts: TIMEOUTS, lingerMs: 0, bufferPool: pooled ? pools[i] : undefined }))
    await Promise.all(services.map(async s => { await s.start() }))
    const encoders = nodes.map((_n, i) => updateEncoder(codecFor('fp16'), pooled ? { pool: pools[i] } : {}))
    const rings = nodes.map(() => [undefined, undefined] as Array<Float32Array | undefined>)
    const aggregator = plaintextAggregator(codecFor('fp16'), weightedMean)
    const members = nodes.map(n => n.peerId.toString())
    const length = 200_003
    const results: Float32Array[][] = []
    try {
      for (let round = 0; round < count; round++) {
        const group = makeGroup({ job: 'pool-job', round, members, vectorLength: length })
        const out = await Promise.all(services.map(async (s, i) => {
          const encoded = encoders[i].encode(randomVector(length, 100 * round + i + 1, 0.1), partitionGroup(group))
          const into = pooled ? (rings[i][round % 2] ??= new Float32Array(length)) : undefined
          const r = await s.run({ group, vector: encoded.values, payloads: encoded.payloads, decoded: encoded.decoded, weight: i + 1, aggregator, into, releasePayloads: () => { encoded.release() } })
          assert.deepEqual(r.dropped, [])
          encoded.commit()
          // A copy: the ring's array is overwritten two rounds later.
          return r.vector.slice()
        }))
        results.push(out)
        await new Promise(resolve => setTimeout(resolve, 20)) // the linger timers fire
      }
    } finally {
      await Promise.all(services.map(async s => { await s.stop() }))
    }
    return { results, pools }
  }

  it('give the same bits every round as fresh memory, and the pools are reused', async () => {
    const fresh = await rounds(false, 4)
    await stopAll(nodes)
    const pooled = await rounds(true, 4)
    for (let round = 0; round < 4; round++) {
      for (let peer = 0; peer < 3; peer++) {
        assert.ok(sameBits(pooled.results[round][peer], pooled.results[round][0]), `round ${round}: peer ${peer} differs from peer 0`)
        assert.ok(sameBits(pooled.results[round][peer], fresh.results[round][peer]), `round ${round}: peer ${peer} pooled differs from fresh`)
      }
    }
    for (const pool of pooled.pools) assert.ok(pool.stats.reused >= 6, `reused ${pool.stats.reused} of ${pool.stats.taken}`)
  })
})
