/**
 * DHT record keys of this network. Keys are `/<namespace>/<rest>`; kad-dht picks the validator and the
 * selector by namespace, so all NearAI records live under one namespace and carry their kind next.
 *
 *   /nearai/job/<publisher-peer-id>/<job-id>   a job's description (spec and dataset CIDs), signed by its publisher
 *   /nearai/peer/<peer-id>/info                 a peer's self-description (roles, backend), signed by that peer
 *
 * The publisher's peer id is part of the key, so only that peer can produce a valid record for it
 * (the record is signed by the key behind the peer id), the way IPNS names work.
 */
import { JOB_ID_PATTERN, PEER_ID_PATTERN } from './primitives.ts'
import { InvalidMessageError } from './errors.ts'

export const DHT_NAMESPACE = 'nearai'
export const RECORD_KINDS = ['job', 'peer'] as const
export type RecordKind = typeof RECORD_KINDS[number]

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export interface RecordKey {
  kind: RecordKind
  publisher: string
  name: string
}

export function recordKey (key: RecordKey): Uint8Array {
  return encoder.encode(formatRecordKey(key))
}

export function formatRecordKey ({ kind, publisher, name }: RecordKey): string {
  if (!PEER_ID_PATTERN.test(publisher)) throw new TypeError(`invalid peer id "${publisher}" in record key`)
  if (!JOB_ID_PATTERN.test(name)) throw new TypeError(`invalid record name "${name}"`)
  return `/${DHT_NAMESPACE}/${kind}/${publisher}/${name}`
}

/** Parses a raw DHT key; throws InvalidMessageError for anything that is not a well-formed NearAI key. */
export function parseRecordKey (raw: Uint8Array): RecordKey {
  const text = decoder.decode(raw)
  const parts = text.split('/')
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== DHT_NAMESPACE) {
    throw new InvalidMessageError(`not a ${DHT_NAMESPACE} record key: ${JSON.stringify(text.slice(0, 200))}`)
  }
  const [, , kind, publisher, name] = parts
  if (!(RECORD_KINDS as readonly string[]).includes(kind)) throw new InvalidMessageError(`unknown record kind "${kind}"`)
  if (!PEER_ID_PATTERN.test(publisher)) throw new InvalidMessageError(`invalid publisher peer id in key: "${publisher}"`)
  if (!JOB_ID_PATTERN.test(name)) throw new InvalidMessageError(`invalid record name in key: "${name}"`)
  return { kind: kind as RecordKind, publisher, name }
}
