import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as tf from '@tensorflow/tfjs'
import { CID } from 'multiformats/cid'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Host } from '../../node/network/host.ts'
import { AllReduceAverager } from '../../node/round/allreduce-averager.ts'
import { StatePublisher } from '../../node/round/publish-step.ts'
import type { AveragedUpdate } from '../../node/round/steps.ts'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { fp16Codec, updateEncoder } from '../../node/compression/index.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { BufferPool } from '../../node/memory/buffer-pool.ts'
import { getCheckpointManifest } from '../../node/storage/checkpoints.ts'
import { fetchUpdatePart, UpdatePartsKeeper } from '../../node/storage/update-parts.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { startHost, stopAll, waitFor } from '../storage/helpers.ts'
import { ScriptedMatchmaking } from './fakes.ts'

const SPEC = parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [16], classes: 4 })
const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

function randomVector (length: number, seed: number): Float32Array {
  let s = seed
  return Float32Array.from({ length }, () => { s = (s * 1103515245 + 12345) % 2147483648; return (s / 2147483648 - 0.5) * 0.1 })
}

describe('update commitments through a round: 3 trainers (libp2p on 127.0.0.1, butterfly all-reduce, audits on) and a validator', function () {
  this.timeout(60_000)
  let trainers: Host[] = []
  let validator: Host
  let home: string
  let model: tf.LayersModel

  before(async () => {
    await tf.setBackend('cpu')
    trainers = await Promise.all([0, 1, 2].map(async () => await startHost()))
    validator = await startHost()
    const all = [...trainers, validator]
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) await all[i].libp2p.dial(all[j].libp2p.getMultiaddrs()[0])
    }
    await waitFor('full mesh', () => all.every(h => new Set(h.libp2p.getConnections().map(c => c.remotePeer.toString())).size === all.length - 1))
    home = await mkdtemp(join(tmpdir(), 'nearai-update-commitments-'))
    model = buildModel(SPEC, 5)
  })
  after(async () => {
    model?.dispose()
    await stopAll([validator, ...trainers])
    if (home != null) await removeDir(home)
  })

  it('every contributor\'s `update` digests are the SHA-256 of its own payloads; the checkpoint lists them and a validator fetches and decodes them', async () => {
    const size = flattenWeights(model).length
    const ids = trainers.map(t => t.libp2p.peerId.toString())
    const own = new Map<string, Uint8Array[]>()
    const stores: Array<Promise<unknown>> = []
    const services = trainers.map(t => new ButterflyAllReduce({ host: t.libp2p }, { timeouts: { floorMs: 2000 } }))
    const averagers = trainers.map((t, i) => {
      const keeper = new UpdatePartsKeeper(t.helia)
      return new AllReduceAverager(
        { matchmaking: new ScriptedMatchmaking(ids), encoder: updateEncoder(fp16Codec(), { pool: new BufferPool() }), allReduce: services[i], logger: silentLogger() },
        {
          job: 'job',
          self: ids[i],
          onOwnPayloads: (round, payloads) => {
            assert.equal(round, 0)
            own.set(ids[i], payloads.map(p => p.slice()))
            stores.push(keeper.store(round, payloads)) // as run-job.ts: kept for validators
          }
        })
    })
    await Promise.all(averagers.map(async a => { await a.start() }))
    let results: AveragedUpdate[]
    try {
      const signal = new AbortController().signal
      results = await Promise.all(averagers.map(async (a, i) => await a.average(0, { pseudoGradient: randomVector(size, 7 + i), samples: 10 * (i + 1), loss: 0 }, signal)))
    } finally {
      await Promise.all(averagers.map(async a => { await a.stop() }))
    }
    await Promise.all(stores)

    // Every member derives the same contributions and layout (one checkpoint CID for the round).
    for (const r of results) assert.deepEqual({ c: r.contributions, u: r.updates }, { c: results[0].contributions, u: results[0].updates })
    const { contributions, updates } = results[0]
    assert.ok(updates != null, 'the round result carries the update layout')
    assert.equal(updates.codec, 'fp16')
    assert.equal(updates.parts.length, 3, 'one part a member')
    assert.equal(updates.parts.reduce((s, n) => s + n, 0), size)
    assert.deepEqual(contributions.map(c => c.peer).sort(), [...ids].sort())
    for (const c of contributions) {
      const payloads = own.get(c.peer)
      assert.ok(payloads != null && c.update != null, `${c.peer} has its update and its payloads`)
      assert.deepEqual(c.update, payloads.map(digest), 'the reducers listed the digests of exactly what this peer sent')
      const decoded = payloads.map(p => fp16Codec().decode(p))
      assert.deepEqual(decoded.map(d => d.length), updates.parts)
      assert.equal(decoded.reduce((s, d) => s + d.length, 0), size, 'the parts, decoded and concatenated, are the whole vector')
    }

    // The published state's checkpoint.json commits to them; a validator fetches each part from the trainers by digest.
    const state = { round: 0, weights: randomVector(size, 99), momentum: new Float32Array(size) }
    const publisher = new StatePublisher({ helia: trainers[0].helia, model, home, job: 'job', announcer: { announce: async () => {} } })
    const cid = await publisher.publish(state, { round: 0, weightsSha256: weightsHash(state.weights), loss: 0, samples: 60, contributions, updates, dropped: [], standIns: [], bytesSent: 0, bytesReceived: 0, checkpoint: false, millis: 1 })
    const { manifest } = await getCheckpointManifest(validator.helia, CID.parse(cid), { timeoutMs: 20_000 })
    assert.equal(manifest.version, 3)
    assert.deepEqual(manifest.updates, updates)
    assert.deepEqual(manifest.contributions?.map(c => [c.peer, c.update]), [...contributions].sort((a, b) => a.peer < b.peer ? -1 : 1).map(c => [c.peer, c.update]))
    for (const c of manifest.contributions ?? []) {
      const fetched = await Promise.all((c.update ?? []).map(async d => await fetchUpdatePart(validator.helia, d, { timeoutMs: 20_000 })))
      assert.deepEqual(fetched.map(f => Buffer.from(f)), own.get(c.peer)?.map(p => Buffer.from(p)), `${c.peer}'s update, byte for byte`)
      const vector = new Float32Array(size)
      let offset = 0
      fetched.forEach((f, k) => { const part = fp16Codec().decode(f); assert.equal(part.length, manifest.updates?.parts[k]); vector.set(part, offset); offset += part.length })
      assert.equal(offset, size)
    }
  })
})
