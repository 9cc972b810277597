/**
 * The JSON wire codec shared by gossip messages and DHT records: UTF-8 JSON, parsed against a zod schema,
 * with a hard size bound checked before a single byte is parsed.
 */
import type { z } from 'zod'
import { InvalidMessageError, MessageTooLargeError } from './errors.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeJson (value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

/** Parses `bytes` as JSON matching `schema`; any deviation is an InvalidMessageError naming `what`. */
export function decodeJson<S extends z.ZodType> (schema: S, bytes: Uint8Array, maxBytes: number, what: string): z.infer<S> {
  if (bytes.byteLength > maxBytes) {
    throw new MessageTooLargeError(`${what}: ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new InvalidMessageError(`${what}: not valid UTF-8 JSON (${(err as Error).message})`)
  }
  return parseWith(schema, raw, what)
}

/** Validates an already-parsed value against `schema`, with an error that names the offending fields. */
export function parseWith<S extends z.ZodType> (schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issues = result.error.issues.map(i => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    throw new InvalidMessageError(`${what}: ${issues.join('; ')}`, result.error.issues)
  }
  return result.data
}
