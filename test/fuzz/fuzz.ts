/**
 * Shared pieces of the fuzz tests: how many cases to run (FUZZ_RUNS: small in `npm test`, large in
 * `npm run fuzz`), the one assertion every handler must meet (a valid value, or a named error with a
 * message; never a TypeError, RangeError or anything unnamed), and generators of hostile inputs derived from
 * valid ones: malformed, truncated, bit-flipped, oversized, with extreme numbers.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'

/** Cases per property in the normal suite; `npm run fuzz` sets FUZZ_RUNS much higher. */
export const FUZZ_RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 60))

/** fast-check parameters: `scale` × FUZZ_RUNS cases, and the seed from FUZZ_SEED to replay a failure. */
export function runs (scale = 1): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED != null ? Number(process.env.FUZZ_SEED) : undefined
  return { numRuns: Math.max(1, Math.round(FUZZ_RUNS * scale)), ...(seed != null ? { seed } : {}) }
}

/** A test's timeout: `base` ms for the normal suite, growing with FUZZ_RUNS for the long runs. */
export function fuzzTimeout (base: number, perCaseMs = 100): number {
  return Math.max(base, FUZZ_RUNS * perCaseMs * 3)
}

type ErrorClass = abstract new (...args: any[]) => Error

/** Asserts `err` is one of the named error classes the handler promises, with a message. */
export function assertNamed (err: unknown, allowed: ErrorClass[], input?: unknown): void {
  const ok = err instanceof Error && allowed.some(c => err instanceof c) && err.message.length > 0
  if (!ok) {
    const shown = input instanceof Uint8Array ? Buffer.from(input.subarray(0, 200)).toString('hex') : JSON.stringify(input)?.slice(0, 300)
    assert.fail(`expected ${allowed.map(c => c.name).join(' or ')}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n  input: ${shown}\n  ${(err as Error)?.stack?.split('\n').slice(0, 6).join('\n  ') ?? ''}`)
  }
}

/** Runs `fn`: its value, or undefined when it threw one of `allowed` (anything else fails the case). */
export function parsesOrRefuses<T> (fn: () => T, allowed: ErrorClass[], input?: unknown): T | undefined {
  try {
    return fn()
  } catch (err) {
    assertNamed(err, allowed, input)
    return undefined
  }
}

export async function parsesOrRefusesAsync<T> (fn: () => Promise<T>, allowed: ErrorClass[], input?: unknown): Promise<T | undefined> {
  try {
    return await fn()
  } catch (err) {
    assertNamed(err, allowed, input)
    return undefined
  }
}

const encoder = new TextEncoder()

/** Numbers JSON can carry that break naive checks: non-finite after parsing, unsafe, fractional, negative, huge. */
const EXTREME_NUMBERS = ['1e999', '-1e999', '-0', '-1', '0.5', '1e21', '9007199254740993', '4294967296', '1e308', '0']

/**
 * Hostile variants of a valid JSON message: a field replaced by any JSON value, removed, or one added; a
 * number replaced by an extreme literal (in the text, so `1e999` arrives as Infinity); the encoding
 * truncated, bit-flipped, padded past a size bound; plain random bytes.
 */
export function hostileJson (valid: Record<string, unknown>, opts: { oversize?: number } = {}): fc.Arbitrary<Uint8Array> {
  const keys = Object.keys(valid)
  const text = JSON.stringify(valid)
  const bytes = encoder.encode(text)
  const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)].map(m => ({ at: m.index, length: m[0].length }))
  const variants: Array<fc.Arbitrary<Uint8Array>> = [
    fc.tuple(fc.constantFrom(...keys), fc.jsonValue()).map(([k, v]) => encoder.encode(JSON.stringify({ ...valid, [k]: v }))),
    fc.constantFrom(...keys).map(k => { const copy = { ...valid }; delete copy[k]; return encoder.encode(JSON.stringify(copy)) }),
    fc.tuple(fc.string({ maxLength: 12 }), fc.jsonValue()).map(([k, v]) => encoder.encode(JSON.stringify({ ...valid, [k]: v }))),
    fc.nat(bytes.byteLength).map(n => bytes.slice(0, n)),
    fc.tuple(fc.nat(bytes.byteLength - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = bytes.slice(); b[i] ^= x; return b }),
    fc.uint8Array({ maxLength: 512 }),
    fc.jsonValue().map(v => encoder.encode(JSON.stringify(v) ?? 'null'))
  ]
  if (numbers.length > 0) {
    variants.push(fc.tuple(fc.constantFrom(...numbers), fc.constantFrom(...EXTREME_NUMBERS))
      .map(([n, lit]) => encoder.encode(text.slice(0, n.at) + lit + text.slice(n.at + n.length))))
  }
  if (opts.oversize != null) {
    const size = opts.oversize
    variants.push(fc.constantFrom(...keys).map(k => encoder.encode(JSON.stringify({ ...valid, [k]: 'x'.repeat(size) }))))
  }
  return fc.oneof(...variants)
}

/** Hostile variants of valid binary frames: truncated, bit-flipped, with garbage appended, or random. */
export function hostileBytes (valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.nat(valid.byteLength).map(n => valid.slice(0, n)),
    fc.tuple(fc.nat(valid.byteLength - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = valid.slice(); b[i] ^= x; return b }),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map(extra => { const b = new Uint8Array(valid.byteLength + extra.byteLength); b.set(valid); b.set(extra, valid.byteLength); return b }),
    fc.uint8Array({ maxLength: 256 })
  )
}
