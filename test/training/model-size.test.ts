import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { buildModel } from '../../node/training/models.ts'
import { InvalidSpecError, MAX_MODEL_PARAMETERS, countParameters, parseModelSpec } from '../../node/training/model-spec.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'

describe('training: model size bounds', () => {
  const specs = [
    { kind: 'mlp', inputs: 784, hidden: [256, 128], classes: 10 },
    { kind: 'mlp', inputs: 8, hidden: [], classes: 3 },
    { kind: 'cnn', inputShape: [28, 28, 1], conv: [{ filters: 4, kernel: 3 }, { filters: 8, kernel: 3, pool: 1 }], dense: [16], classes: 10 },
    { kind: 'cnn', inputShape: [9, 7, 3], conv: [{ filters: 2, kernel: 5, pool: 2 }], classes: 2 },
    { kind: 'char-transformer', vocab: 256, context: 16, dModel: 32, heads: 4, layers: 2 },
    { kind: 'char-transformer', vocab: 40, context: 8, dModel: 12, heads: 3, layers: 1, mlpRatio: 2 }
  ]

  for (const input of specs) {
    it(`counts the parameters of ${JSON.stringify(input)} as the built model has them`, () => {
      const spec = parseModelSpec(input)
      const model = buildModel(spec, 1)
      try {
        assert.equal(countParameters(spec), model.countParams())
      } finally {
        model.dispose()
      }
    })
  }

  it('refuses a spec with hidden sizes of 1e9 when it is parsed, naming the count and the limit, before building anything', () => {
    const before = tf.memory().numBytes
    assert.throws(() => parseJobSpec({ id: 'huge', dataset: 'bafy', model: { kind: 'mlp', inputs: 784, hidden: [1e9, 1e9], classes: 10 } }), (err: Error) => {
      assert.ok(err instanceof InvalidSpecError)
      const m = /^invalid job spec: model: the model has ([\d,]+) parameters, over the limit of 100,000,000: make the layers smaller$/.exec(err.message)
      assert.ok(m != null, err.message)
      assert.ok(Number(m[1].replaceAll(',', '')) > 1e18, 'the 1e9 x 1e9 layer alone has 1e18 weights')
      return true
    })
    assert.equal(tf.memory().numBytes, before, 'no tensor was allocated')
    assert.equal(MAX_MODEL_PARAMETERS, 1e8)
  })

  it('refuses a CNN whose pooling leaves nothing of its input', () => {
    assert.throws(() => parseModelSpec({ kind: 'cnn', inputShape: [4, 4, 1], conv: [{ filters: 2, kernel: 3, pool: 8 }], classes: 2 }), /conv\.0\.pool: pooling by 8 leaves nothing/)
  })

  it('accepts a model at the bound and refuses one just over it', () => {
    // inputs·units + units + units·2 + 2 parameters, with 1 hidden layer.
    const fits = { kind: 'mlp', inputs: 99_999, hidden: [999], classes: 2 }
    assert.ok(countParameters(parseModelSpec(fits)) <= MAX_MODEL_PARAMETERS)
    assert.throws(() => parseModelSpec({ ...fits, hidden: [1001] }), /over the limit of 100,000,000/)
  })
})
