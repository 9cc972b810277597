/**
 * Parsers for flag values. Each throws commander's InvalidArgumentError, so a bad value ends in one line
 * that names the flag: `option '--shard <i>' argument 'x' is invalid. expected a whole number`.
 */
import { InvalidArgumentError } from 'commander'
import { CID } from 'multiformats/cid'
import { notACheckpointReason } from '../../protocol/checkpoint-manifest.ts'

/** A whole number >= 0. */
export function int (value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number (0, 1, 2, ...)')
  return n
}

/** A whole number >= 1. */
export function positiveInt (value: string): number {
  const n = int(value)
  if (n < 1) throw new InvalidArgumentError('expected a whole number of at least 1')
  return n
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 }

/** A byte size: a whole number of bytes, or a number with a unit (`512MiB`, `4 GiB`, `1.5GB`). */
export function byteSize (value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value)
  const unit = BYTE_UNITS[(m?.[2] ?? '').toLowerCase()]
  const n = m != null && unit != null ? Math.floor(Number(m[1]) * unit) : NaN
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a size in bytes, e.g. 1073741824, 512MiB or 8GiB')
  return n
}

/** A TCP port, 0 (any free one) to 65535. */
export function port (value: string): number {
  const n = int(value)
  if (n > 65_535) throw new InvalidArgumentError('a port is a number from 0 to 65535 (0 picks a free one)')
  return n
}

/** The longest wait a --timeout takes: a day. */
export const MAX_TIMEOUT_SECONDS = 86_400

/** A timeout in whole seconds (1 s to a day), returned in milliseconds. */
export function timeoutSeconds (value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds greater than 0')
  if (n > MAX_TIMEOUT_SECONDS) throw new InvalidArgumentError(`at most ${MAX_TIMEOUT_SECONDS} seconds (a day)`)
  return Math.ceil(n * 1000)
}

/** A CID argument; the error says what was given. */
export function parseCid (text: string, what = 'CID'): CID {
  try {
    return CID.parse(text.trim())
  } catch {
    throw new InvalidArgumentError(`"${text}" is not a ${what} (a CID looks like bafy... or Qm...)`)
  }
}

/** The dag-cbor codec: dataset manifests are dag-cbor, checkpoints are UnixFS folders (dag-pb). */
const DAG_CBOR = 0x71

/** A dataset manifest CID, refused at once when its codec says it cannot be one. */
export function parseDatasetCid (text: string): CID {
  const cid = parseCid(text, 'dataset manifest CID')
  if (cid.code !== DAG_CBOR) throw new InvalidArgumentError(`${cid.toString()} is not a dataset manifest (not dag-cbor)`)
  return cid
}

/** A checkpoint CID, refused at once when its codec says it cannot be one (a dataset manifest, a file). */
export function parseCheckpointCid (text: string): CID {
  const cid = parseCid(text, 'checkpoint CID')
  const reason = notACheckpointReason(cid)
  if (reason != null) throw new InvalidArgumentError(reason)
  return cid
}
