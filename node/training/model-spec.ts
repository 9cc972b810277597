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

export const ModelSpec = z.discriminatedUnion('kind', [MlpSpec, CnnSpec, CharTransformerSpec])
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
