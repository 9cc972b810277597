/**
 * Whether a model spec can train on a dataset, decided from the dataset's manifest alone (no shard is
 * fetched): the values per sample the model takes against those the format lays out, the class count
 * against the labels, and a language model against text. `nearai job create` refuses a job that fails it,
 * with both shapes in the message, instead of every peer finding out at its first round. Pure.
 */
import type { DatasetFormat } from '../../protocol/dataset-format.ts'
import type { DatasetManifest } from '../../protocol/dataset-manifest.ts'
import { BYTE_VOCAB_SIZE } from './data/decode-shard.ts'
import type { ModelSpec } from './model-spec.ts'

export class IncompatibleModelError extends Error {
  override name = 'IncompatibleModelError'
}

export type SampleLayout = { kind: 'features', shape: number[], classes: number } | { kind: 'text' }

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)
const shapeText = (shape: number[]): string => `[${shape.join(', ')}]`

/** What one sample of a dataset in `format` is, as a model sees it. */
export function sampleLayout (format: DatasetFormat, manifest?: Pick<DatasetManifest, 'schema'>): SampleLayout {
  switch (format.kind) {
    case 'csv': return { kind: 'features', shape: format.shape ?? [format.columns.length - 1], classes: format.numClasses }
    case 'jsonl': return { kind: 'features', shape: format.shape ?? [manifest?.schema.features ?? 0], classes: format.numClasses }
    case 'image-records': return { kind: 'features', shape: [...format.shape], classes: format.classes.length }
    case 'text': return { kind: 'text' }
  }
}

/** The reasons `model` cannot train on `manifest`'s samples; empty when it can. */
export function modelFitProblems (model: ModelSpec, manifest: Pick<DatasetManifest, 'format' | 'schema'>): string[] {
  const data = sampleLayout(manifest.format, manifest)
  if (model.kind === 'char-transformer') {
    if (data.kind !== 'text') return [`a char-transformer trains on text, the dataset is ${manifest.format.kind} (samples of shape ${shapeText(data.shape)})`]
    if (model.vocab < BYTE_VOCAB_SIZE) return [`text is decoded as UTF-8 bytes (${BYTE_VOCAB_SIZE} token ids), the model's vocab is ${model.vocab}: set vocab to ${BYTE_VOCAB_SIZE}`]
    return []
  }
  const input = model.kind === 'mlp' ? [model.inputs] : [...model.inputShape]
  if (data.kind === 'text') return [`the dataset is text: train it with a char-transformer, not an ${model.kind} taking inputs of shape ${shapeText(input)}`]
  const problems: string[] = []
  if (product(input) !== product(data.shape)) {
    problems.push(`the model takes inputs of shape ${shapeText(input)} (${product(input)} values), the dataset's samples have shape ${shapeText(data.shape)} (${product(data.shape)} values)`)
  }
  if (model.classes !== data.classes) {
    problems.push(`the model has ${model.classes} classes, the dataset's labels have ${data.classes}`)
  }
  return problems
}

/** Throws IncompatibleModelError naming the dataset and every problem, unless `model` fits it. */
export function checkModelFitsDataset (model: ModelSpec, manifest: Pick<DatasetManifest, 'format' | 'schema'>, what: string): void {
  const problems = modelFitProblems(model, manifest)
  if (problems.length > 0) throw new IncompatibleModelError(`the job's model does not fit ${what}: ${problems.join('; ')}`)
}
