import assert from 'node:assert/strict'
import { checkModelFitsDataset, IncompatibleModelError, modelFitProblems } from '../../node/training/dataset-fit.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'

const csv = (features: number, numClasses: number, shape?: number[]): any => ({
  format: { kind: 'csv', columns: ['label', ...Array.from({ length: features }, (_, i) => `p${i}`)], label: 'label', numClasses, featureScale: 1, ...(shape != null ? { shape } : {}) },
  schema: { sample: 'csv-row', features, numClasses }
})
const text: any = { format: { kind: 'text', encoding: 'utf-8' }, schema: { sample: 'text-line' } }
const images: any = { format: { kind: 'image-records', classes: ['a', 'b', 'c'], shape: [8, 8, 1], featureScale: 1 / 255 }, schema: { sample: 'image-record', recordBytes: 65 } }

describe('training: does a model fit a dataset (from its manifest)', () => {
  it('accepts an MLP whose inputs and classes match, and a CNN whose input holds as many values', () => {
    assert.deepEqual(modelFitProblems(parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [16], classes: 10 }), csv(784, 10, [28, 28, 1])), [])
    assert.deepEqual(modelFitProblems(parseModelSpec({ kind: 'cnn', inputShape: [28, 28, 1], conv: [{ filters: 2, kernel: 3 }], classes: 10 }), csv(784, 10, [28, 28, 1])), [])
    assert.deepEqual(modelFitProblems(parseModelSpec({ kind: 'mlp', inputs: 64, hidden: [], classes: 3 }), images), [])
    assert.deepEqual(modelFitProblems(parseModelSpec({ kind: 'char-transformer', vocab: 256, context: 8, dModel: 8, heads: 2, layers: 1 }), text), [])
  })

  it('refuses inputs of another size with both shapes, and another class count with both counts', () => {
    assert.throws(() => { checkModelFitsDataset(parseModelSpec({ kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }), csv(784, 10, [28, 28, 1]), 'dataset bafy1') }, (err: Error) => {
      assert.ok(err instanceof IncompatibleModelError)
      assert.equal(err.message, 'the job\'s model does not fit dataset bafy1: the model takes inputs of shape [8] (8 values), the dataset\'s samples have shape [28, 28, 1] (784 values); the model has 3 classes, the dataset\'s labels have 10')
      return true
    })
  })

  it('refuses a classifier on text and a language model on features, and a vocab too small for bytes', () => {
    assert.match(modelFitProblems(parseModelSpec({ kind: 'mlp', inputs: 8, hidden: [], classes: 2 }), text)[0], /the dataset is text: train it with a char-transformer/)
    assert.match(modelFitProblems(parseModelSpec({ kind: 'char-transformer', vocab: 256, context: 8, dModel: 8, heads: 2, layers: 1 }), csv(4, 2))[0], /a char-transformer trains on text, the dataset is csv \(samples of shape \[4\]\)/)
    assert.match(modelFitProblems(parseModelSpec({ kind: 'char-transformer', vocab: 65, context: 8, dModel: 8, heads: 2, layers: 1 }), text)[0], /vocab is 65: set vocab to 256/)
  })
})
