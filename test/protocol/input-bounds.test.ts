/**
 * Bounds on sizes that come from the network and from job specs: each refuses what is past it, by name,
 * and accepts the bound itself.
 */
import assert from 'node:assert/strict'
import { decodeFrameHeader, encodeFrameHeader, MAX_ROUND_SAMPLES, MAX_WEIGHT, groupHash } from '../../protocol/allreduce.ts'
import { encodeGossip, parseGossip } from '../../protocol/gossip.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { JOB_SPEC_LIMITS, parseJobSpec } from '../../node/training/job-spec.ts'
import { InvalidSpecError } from '../../node/training/model-spec.ts'

const PEER = '12D3KooWA1111111111111111111111111111111111111111111'

describe('input bounds: protocol and job specs', () => {
  it('a contribution claiming more than MAX_ROUND_SAMPLES samples (the old bound was 1e12) is refused; the bound itself is taken', () => {
    assert.equal(MAX_WEIGHT, MAX_ROUND_SAMPLES)
    const header = { v: 1, type: 'contribute', job: 'j', round: 1, group: groupHash('j', 1, [PEER], 10), part: 0, offset: 0, elements: 10, from: PEER, standIn: false } as const
    const frame = (weight: number): Uint8Array => encodeFrameHeader({ ...header, weight }).subarray(4)
    assert.equal(decodeFrameHeader(frame(MAX_ROUND_SAMPLES)).type, 'contribute')
    for (const weight of [MAX_ROUND_SAMPLES + 1, 1e12, -1]) assert.throws(() => decodeFrameHeader(frame(weight)), InvalidMessageError, `weight ${weight}`)
    // NaN and Infinity cannot be written as JSON numbers; 1e999 parses to Infinity and is refused too.
    const text = new TextDecoder().decode(frame(5)).replace('"weight":5', '"weight":1e999')
    assert.throws(() => decodeFrameHeader(new TextEncoder().encode(text)), InvalidMessageError)
  })

  it('a round announcement crediting a peer with more than MAX_ROUND_SAMPLES samples is refused', () => {
    const topic = jobRoundsTopic('j')
    const announce = (samples: number): Uint8Array => encodeGossip({ v: 1, type: 'round-result', job: 'j', round: 1, peerId: PEER, weightsSha256: 'ab'.repeat(32), contributions: [{ peer: PEER, samples }], at: 1 })
    assert.equal(parseGossip(topic, announce(MAX_ROUND_SAMPLES), PEER).type, 'round-result')
    assert.throws(() => parseGossip(topic, announce(MAX_ROUND_SAMPLES + 1), PEER), InvalidMessageError)
  })

  it('job spec sizes past JOB_SPEC_LIMITS are refused naming the field and the limit', () => {
    const base = { id: 'b', dataset: 'bafy', model: { kind: 'mlp', inputs: 4, hidden: [4], classes: 2 } }
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ rounds: JOB_SPEC_LIMITS.rounds + 1 }, /rounds: .*at most 1,000,000 \(JOB_SPEC_LIMITS\.rounds\)/],
      [{ inner: { steps: JOB_SPEC_LIMITS.innerSteps + 1 } }, /inner\.steps: .*JOB_SPEC_LIMITS\.innerSteps/],
      [{ inner: { batchSize: JOB_SPEC_LIMITS.batchSize + 1 } }, /inner\.batchSize: .*JOB_SPEC_LIMITS\.batchSize/],
      [{ inner: { steps: 100_000, batchSize: 65_536 } }, /inner\.batchSize: steps × batchSize is at most 1,000,000,000 samples a round \(MAX_ROUND_SAMPLES\)/],
      [{ eval: { maxSamples: JOB_SPEC_LIMITS.evalMaxSamples + 1 } }, /eval\.maxSamples: .*JOB_SPEC_LIMITS\.evalMaxSamples/],
      [{ checkpointEvery: 1e7 }, /checkpointEvery: .*JOB_SPEC_LIMITS\.checkpointEvery/],
      [{ inner: { lr: 1e6 } }, /inner\.lr: .*JOB_SPEC_LIMITS\.rate/],
      [{ outer: { lr: 1e300 } }, /outer\.lr: .*JOB_SPEC_LIMITS\.rate/]
    ]
    for (const [over, message] of cases) {
      assert.throws(() => parseJobSpec({ ...base, ...over }), (err: Error) => err instanceof InvalidSpecError && message.test(err.message), JSON.stringify(over))
    }
    const atBounds = parseJobSpec({ ...base, rounds: JOB_SPEC_LIMITS.rounds, inner: { steps: 10_000, batchSize: 65_536 }, eval: { maxSamples: JOB_SPEC_LIMITS.evalMaxSamples } })
    assert.equal(atBounds.rounds, JOB_SPEC_LIMITS.rounds)
    assert.ok(atBounds.inner.steps * atBounds.inner.batchSize <= MAX_ROUND_SAMPLES)
  })
})
