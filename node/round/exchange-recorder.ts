/**
 * A diagnostic of the reduce step: every accepted all-reduce exchange written to a folder, so that a round can
 * be checked by hand (or by a test) after the fact: what this peer sent (its contribution, decoded as every
 * reducer decodes it), the average it got back, and each part's reducer, stand-in and contributors.
 *
 *   <dir>/round-<r>-try-<a>.json          { round, attempt, peer, members, weight, parts }
 *   <dir>/round-<r>-try-<a>.sent.f32      the contribution, float32 little-endian
 *   <dir>/round-<r>-try-<a>.average.f32   the average, float32 little-endian
 *
 * Turned on by `NEARAI_DEBUG_EXCHANGE_DIR=<dir>` (`nearai node start --job`); off by default. The files are
 * written synchronously, in the order the exchanges complete: a few MB per round for the demo's model.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ExchangeRecord } from './allreduce-averager.ts'

export const EXCHANGE_DIR_ENV = 'NEARAI_DEBUG_EXCHANGE_DIR'

export function exchangeRecorder (dir: string, peer: string): (exchange: ExchangeRecord) => void {
  mkdirSync(dir, { recursive: true })
  return (x) => {
    const base = join(dir, `round-${x.round}-try-${x.attempt}`)
    const bytes = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    writeFileSync(`${base}.sent.f32`, bytes(x.sent))
    writeFileSync(`${base}.average.f32`, bytes(x.average))
    writeFileSync(`${base}.json`, JSON.stringify({ round: x.round, attempt: x.attempt, peer, members: x.members, weight: x.weight, parts: x.parts }))
  }
}

/** The recorder `NEARAI_DEBUG_EXCHANGE_DIR` asks for, if any. */
export function exchangeRecorderFromEnv (peer: string, env: NodeJS.ProcessEnv = process.env): ((exchange: ExchangeRecord) => void) | undefined {
  const dir = env[EXCHANGE_DIR_ENV]
  return dir != null && dir !== '' ? exchangeRecorder(dir, peer) : undefined
}
