/**
 * Scoring contributors by the loss change of their own update: real local training on MNIST shards (the
 * production trainLocal), updates encoded with the job's codec and cut into parts as the all-reduce does,
 * committed by the SHA-256 of each part payload; the validator's scoreRound fetches them through the given
 * fetcher (here a map: fetching by content address over bitswap is tested with the storage module).
 */
import assert from 'node:assert/strict'
import { codecFor } from '../../node/compression/index.ts'
import { plaintextAggregator } from '../../node/allreduce/combine.ts'
import { payloadDigest } from '../../node/allreduce/audit-state.ts'
import { loadMnist, sliceSamples } from '../../node/training/data/mnist.ts'
import { trainLocal } from '../../node/training/local-trainer.ts'
import { buildModel } from '../../node/training/models.ts'
import type { ModelSpec } from '../../node/training/model-spec.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { HarmRecord, scoreRound, type RoundScores, type UpdateLayout } from '../../node/validator/contribution-scores.ts'

const MODEL: ModelSpec = { kind: 'mlp', inputs: 784, hidden: [32], activation: 'relu', dropout: 0, classes: 10 }

describe('validator: scoring each contributor by the loss change of its update', function () {
  this.timeout(120_000)
  const { train, test } = loadMnist({ train: 1200, seed: 5 })
  const heldOut = sliceSamples(test, 0, 300)
  const model = buildModel(MODEL, 7)
  const from = flattenWeights(model)
  const PARTS = 3
  const third = Math.floor(from.length / PARTS)
  const layout: UpdateLayout = { codec: 'fp16', parts: [third, third, from.length - 2 * third] }
  const blocks = new Map<string, Uint8Array>()
  const fetches: string[] = []
  const fetchPart = async (digest: string, maxBytes: number): Promise<Uint8Array> => {
    fetches.push(digest)
    const b = blocks.get(digest)
    if (b == null) throw new Error(`no block ${digest.slice(0, 12)}`)
    if (b.byteLength > maxBytes) throw new Error(`block of ${b.byteLength} bytes over ${maxBytes}`)
    return b
  }
  /** Commits to `update` as a contributor does: each part encoded with the codec, its payload's SHA-256. */
  const commit = (update: Float32Array): string[] => {
    const agg = plaintextAggregator(codecFor(layout.codec))
    let at = 0
    return layout.parts.map(n => {
      const payload = agg.encodeContribution(update.subarray(at, at + n), 1)
      at += n
      const d = payloadDigest(payload)
      blocks.set(d, payload)
      return d
    })
  }
  const peers = ['12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '12D3KooWBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', '12D3KooWCccccccccccccccccccccccccccccccccccccccccccccccc', '12D3KooWDddddddddddddddddddddddddddddddddddddddddddddddd', '12D3KooWEeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', '12D3KooWFfffffffffffffffffffffffffffffffffffffffffffffff']
  let honest: Float32Array
  let scores: RoundScores

  before(async () => {
    const result = await trainLocal(buildModel(MODEL, 7), from, sliceSamples(train, 0, 600), { steps: 30, lr: 3e-3, weightDecay: 0, batchSize: 32, seed: 1 })
    honest = result.pseudoGradient
    const flipped = honest.map(v => -v)
    const nan = honest.slice()
    nan[5] = Number.NaN
    const contributions = [
      { peer: peers[0], samples: 960, update: commit(honest) },
      { peer: peers[1], samples: 960, update: commit(flipped) }, // as large as an honest update: passes a norm check
      { peer: peers[2], samples: 960, update: commit(nan) },
      { peer: peers[3], samples: 0, update: commit(honest) }, // rejected by the update checks this round
      { peer: peers[4], samples: 960 }, // no commitment
      { peer: peers[5], samples: 960, update: [...commit(honest).slice(0, 2), 'e'.repeat(64)] } // a part nobody serves
    ]
    scores = await scoreRound({ round: 3, model: MODEL, from, contributions, layout, heldOut, fetchPart })
    const [h, f] = scores.scores
    console.log(`      held-out loss ${scores.baseLoss.toFixed(4)} at the round's start (${heldOut.count} samples); honest update → ${h.loss?.toFixed(4)} (${h.delta?.toFixed(4)}, ${h.verdict}); ` +
      `the same update sign-flipped → ${f.loss?.toFixed(4)} (+${f.delta?.toFixed(4)}, ${f.verdict}; harmful above +${(scores.tolerance * scores.baseLoss).toFixed(4)})`)
  })

  it('finds the honest update helpful: its local model is better on the held-out batch than where it started', () => {
    const s = scores.scores[0]
    assert.equal(s.verdict, 'helpful')
    assert.ok(s.delta! < 0, `delta ${s.delta}`)
    assert.ok(Number.isFinite(scores.baseLoss) && scores.baseLoss > 1, `an untrained model's loss: ${scores.baseLoss}`)
  })

  it('finds a sign-flipped update (same norm as an honest one) harmful, and one with NaN harmful', () => {
    assert.equal(scores.scores[1].verdict, 'harmful')
    assert.ok(scores.scores[1].delta! > scores.tolerance * scores.baseLoss, `delta ${scores.scores[1].delta}`)
    assert.equal(scores.scores[2].verdict, 'harmful')
  })

  it('does not score a rejected update, nor one without a commitment or whose part cannot be fetched', () => {
    assert.equal(scores.scores[3].verdict, 'rejected')
    assert.equal(scores.scores[4].verdict, 'unverified')
    assert.match(scores.scores[4].reason!, /commits to no update/)
    assert.equal(scores.scores[5].verdict, 'unverified')
    assert.match(scores.scores[5].reason!, /no block eeeeeeeeeeee/)
    assert.ok(!fetches.some(d => scores.scores[3].peer === d), 'nothing fetched for the rejected peer')
  })

  it('computes the same scores on a second run, from a fresh copy of the inputs (deterministic evaluation)', async () => {
    const again = await scoreRound({ round: 3, model: MODEL, from: flattenWeights(buildModel(MODEL, 7)), contributions: [{ peer: peers[0], samples: 960, update: commit(honest) }, { peer: peers[1], samples: 960, update: commit(honest.map(v => -v)) }], layout, heldOut: sliceSamples(loadMnist({ train: 1200, seed: 5 }).test, 0, 300), fetchPart })
    assert.equal(again.baseLoss, scores.baseLoss)
    assert.equal(again.scores[0].loss, scores.scores[0].loss)
    assert.equal(again.scores[1].loss, scores.scores[1].loss)
  })

  it('refuses a commitment that does not fit the round: another part count', async () => {
    const r = await scoreRound({ round: 3, model: MODEL, from, contributions: [{ peer: peers[0], samples: 1, update: commit(honest).slice(0, 2) }], layout, heldOut, fetchPart })
    assert.equal(r.scores[0].verdict, 'unverified')
    assert.match(r.scores[0].reason!, /commits to 2 parts, the round has 3/)
  })

  it('calls a peer consistently harmful after 2 harmful verdicts among its last 3 scored rounds, not after one', () => {
    const record = new HarmRecord()
    const round = (r: number, verdicts: Record<string, 'helpful' | 'harmful' | 'unverified'>): RoundScores =>
      ({ round: r, baseLoss: 1, tolerance: 0.05, scores: Object.entries(verdicts).map(([peer, verdict]) => ({ peer, samples: 1, verdict })) })
    record.record(round(0, { [peers[0]]: 'helpful', [peers[1]]: 'harmful', [peers[2]]: 'harmful' }))
    assert.deepEqual(record.consistentlyHarmful(), [])
    record.record(round(1, { [peers[0]]: 'harmful', [peers[1]]: 'unverified', [peers[2]]: 'helpful' }))
    assert.deepEqual(record.consistentlyHarmful(), [], 'unverified is no evidence; one harmful round is not consistent')
    record.record(round(2, { [peers[0]]: 'helpful', [peers[1]]: 'harmful', [peers[2]]: 'helpful' }))
    assert.deepEqual(record.consistentlyHarmful(), [peers[1]])
    assert.deepEqual(record.harmfulRounds(peers[1]), [0, 2])
    record.record(round(3, { [peers[2]]: 'helpful' }))
    record.record(round(4, { [peers[2]]: 'harmful' }))
    assert.deepEqual(record.harmfulRounds(peers[2]), [4], 'round 0 fell out of its last 3 scored rounds')
    assert.throws(() => new HarmRecord(3, 2), RangeError)
  })
})
