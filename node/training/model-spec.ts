/**
 * Declarative model specs a job names. Pure schemas (no I/O), so they can move to protocol/.
 */
import { z } from 'zod'

const positive = z.number().int().positive()

export const MlpSpec = z.object({
  kind: z.literal('mlp'),
  inputs: positive,
  hidden: z.array(positive).max(16),
  activation: z.enum(['relu', 'tanh', 'gelu', 'sigmoid']).default('relu'),
  dropout: z.number().min(0).max(0.9).default(0),
  classes: z.number().int().min(2)
}).strict()

export const CnnSpec = z.object({
  kind: z.literal('cnn'),
  inputShape: z.tuple([positive, positive, positive]),
  conv: z.array(z.object({ filters: positive, kernel: positive, pool: z.number().int().min(1).default(2) }).strict()).min(1).max(8),
  dense: z.array(positive).max(4).default([]),
  classes: z.number().int().min(2)
}).strict()

export const CharTransformerSpec = z.object({
  kind: z.literal('char-transformer'),
  vocab: z.number().int().min(2).max(65_536),
  context: positive,
  dModel: positive,
  heads: positive,
  layers: positive,
  mlpRatio: z.number().int().min(1).max(8).default(4)
}).strict().refine(s => s.dModel % s.heads === 0, { message: 'dModel must be divisible by heads', path: ['heads'] })

/**
 * The largest model a spec may describe. Every peer builds it, trains it with AdamW (weights, gradients
 * and two moments) and keeps DiLoCo's outer momentum and a few flat copies for the all-reduce: about 8
 * float32 values a parameter, 3.2 GB at this bound. A spec over it (a typo'd hidden size of 1e9) is refused
 * when it is parsed, before any tensor is allocated, instead of wedging the peer.
 */
export const MAX_MODEL_PARAMETERS = 100_000_000
/** Bound on the values one sample's activations hold in a CNN (input and each conv output). */
export const MAX_ACTIVATIONS_PER_SAMPLE = 16_000_000

type AnyModelSpec = z.infer<typeof MlpSpec> | z.infer<typeof CnnSpec> | z.infer<typeof CharTransformerSpec>

/** Trainable parameters of the model `buildModel` makes from `spec`, computed without building it. */
export function countParameters (spec: AnyModelSpec): number {
  const dense = (inputs: number, units: number): number => inputs * units + units
  switch (spec.kind) {
    case 'mlp': {
      let total = 0
      let width = spec.inputs
      for (const units of [...spec.hidden, spec.classes]) { total += dense(width, units); width = units }
      return total
    }
    case 'cnn': {
      let [h, w, c] = spec.inputShape
      let total = 0
      for (const conv of spec.conv) {
        total += conv.kernel * conv.kernel * c * conv.filters + conv.filters // 'same' padding keeps h, w
        c = conv.filters
        if (conv.pool > 1) { h = Math.floor(h / conv.pool); w = Math.floor(w / conv.pool) }
      }
      let width = h * w * c
      for (const units of [...spec.dense, spec.classes]) { total += dense(width, units); width = units }
      return total
    }
    case 'char-transformer': {
      const d = spec.dModel
      const hidden = d * spec.mlpRatio
      const block = 4 * dense(d, d) + 2 * (2 * d) + dense(d, hidden) + dense(hidden, d)
      return spec.vocab * d + spec.context * d + spec.layers * block + 2 * d + dense(d, spec.vocab)
    }
  }
}

/** Problems that make a well-formed spec unbuildable or too large; empty when it is fine. */
export function modelSizeProblems (spec: AnyModelSpec): string[] {
  const problems: string[] = []
  if (spec.kind === 'cnn') {
    let [h, w, c] = spec.inputShape
    let largest = h * w * c
    for (const [i, conv] of spec.conv.entries()) {
      largest = Math.max(largest, h * w * conv.filters)
      c = conv.filters
      if (conv.pool > 1) {
        h = Math.floor(h / conv.pool); w = Math.floor(w / conv.pool)
        if (h < 1 || w < 1) problems.push(`conv.${i}.pool: pooling by ${conv.pool} leaves nothing of the [${spec.inputShape.join(', ')}] input; use fewer or smaller pools`)
      }
    }
    if (largest > MAX_ACTIVATIONS_PER_SAMPLE) problems.push(`a sample's activations reach ${largest.toLocaleString('en-US')} values, over the limit of ${MAX_ACTIVATIONS_PER_SAMPLE.toLocaleString('en-US')}`)
  }
  const parameters = countParameters(spec)
  if (!(parameters <= MAX_MODEL_PARAMETERS)) {
    problems.push(`the model has ${parameters.toLocaleString('en-US')} parameters, over the limit of ${MAX_MODEL_PARAMETERS.toLocaleString('en-US')}: make the layers smaller`)
  }
  return problems
}

export const ModelSpec = z.discriminatedUnion('kind', [MlpSpec, CnnSpec, CharTransformerSpec]).superRefine((spec, ctx) => {
  for (const message of modelSizeProblems(spec)) ctx.addIssue({ code: 'custom', message })
})
export type ModelSpec = z.infer<typeof ModelSpec>

export class InvalidSpecError extends Error {
  override name = 'InvalidSpecError'
}

/** Parses untrusted JSON into a ModelSpec; the error names each bad field by its path. */
export function parseModelSpec (input: unknown): ModelSpec {
  const r = ModelSpec.safeParse(input)
  if (!r.success) throw new InvalidSpecError(`invalid model spec: ${formatIssues(r.error.issues)}`)
  return r.data
}

export function formatIssues (issues: ReadonlyArray<{ path: PropertyKey[], message: string }>): string {
  return issues.map(i => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ')
}
