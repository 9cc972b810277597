import assert from 'node:assert/strict'
import { InvalidSpecError } from '../../node/training/model-spec.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'

const base = { id: 'spec-overlap', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' }

describe('training: the job spec', () => {
  it('overlap defaults to "none" and accepts "delayed-outer"', () => {
    assert.equal(parseJobSpec(base).overlap, 'none')
    assert.equal(parseJobSpec({ ...base, overlap: 'none' }).overlap, 'none')
    assert.equal(parseJobSpec({ ...base, overlap: 'delayed-outer' }).overlap, 'delayed-outer')
  })

  it('rejects an unknown overlap mode or a wrong type, naming the field', () => {
    for (const overlap of ['delayed', 'streaming', true, 1, null]) {
      assert.throws(() => parseJobSpec({ ...base, overlap }), (err: Error) => err instanceof InvalidSpecError && /overlap/.test(err.message), `overlap ${JSON.stringify(overlap)} accepted`)
    }
  })
})
