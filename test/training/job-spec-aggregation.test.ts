import assert from 'node:assert/strict'
import { InvalidSpecError } from '../../node/training/model-spec.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'

const base = { id: 'spec-aggregation', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' }

describe('training: the job spec\'s aggregation', () => {
  it('defaults to the weighted mean (what every job did before the field) with the update checks on, norm bound 5× the median', () => {
    assert.deepEqual(parseJobSpec(base).aggregation, { rule: 'mean', trim: 1, maxNormRatio: 5 })
  })

  it('takes a robust rule, its trim, and a norm bound or null (no norm check)', () => {
    assert.deepEqual(parseJobSpec({ ...base, aggregation: { rule: 'trimmed-mean', trim: 2 } }).aggregation, { rule: 'trimmed-mean', trim: 2, maxNormRatio: 5 })
    assert.deepEqual(parseJobSpec({ ...base, aggregation: { rule: 'median', maxNormRatio: null } }).aggregation, { rule: 'median', trim: 1, maxNormRatio: null })
    assert.equal(parseJobSpec({ ...base, aggregation: { maxNormRatio: 1000 } }).aggregation.maxNormRatio, 1000)
  })

  it('refuses every parameter out of its bounds, naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ rule: 'krum' }, /aggregation\.rule/],
      [{ rule: 'trimmed-mean', trim: 0 }, /aggregation\.trim/],
      [{ rule: 'trimmed-mean', trim: 128 }, /aggregation\.trim/],
      [{ rule: 'trimmed-mean', trim: 1.5 }, /aggregation\.trim/],
      [{ rule: 'mean', trim: 2 }, /aggregation\.trim.*trimmed-mean' only/],
      [{ maxNormRatio: 1 }, /aggregation\.maxNormRatio/],
      [{ maxNormRatio: 1001 }, /aggregation\.maxNormRatio/],
      [{ maxNormRatio: 'big' }, /aggregation\.maxNormRatio/],
      [{ clip: 3 }, /aggregation/],
      ['mean', /aggregation/]
    ]
    for (const [aggregation, message] of bad) {
      assert.throws(() => parseJobSpec({ ...base, aggregation }), (err: Error) => err instanceof InvalidSpecError && message.test(err.message), `aggregation ${JSON.stringify(aggregation)} accepted or badly named`)
    }
  })
})
