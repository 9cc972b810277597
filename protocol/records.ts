/**
 * Signed DHT records. A record value is a JSON envelope `{ v, body, sig }` where `body` is the JSON text of
 * the record and `sig` an Ed25519 signature of `RECORD_SIGNING_PREFIX + body` by the key behind the
 * publisher's peer id. Signing the exact body bytes avoids any JSON canonicalisation question.
 *
 * kad-dht calls the validator on every record it stores for others and the selector whenever several
 * values exist for one key: the newest `seq` wins.
 */
import { z } from 'zod'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { decodeJson, encodeJson, parseWith } from './codec.ts'
import { InvalidMessageError } from './errors.ts'
import { parseRecordKey, type RecordKey, type RecordKind } from './dht-keys.ts'
import { CidString as Cid } from './primitives.ts'

export const RECORD_SIGNING_PREFIX = 'nearai-dht-record:'
/** kad-dht's wire buffers allow ~4 MiB, but records are pointers (CIDs), never payloads. */
export const MAX_RECORD_BYTES = 16 * 1024

export const JobRecordPayload = z.object({
  jobId: z.string().min(1).max(64),
  specCid: Cid,
  datasetCid: Cid.optional(),
  description: z.string().max(1024).optional()
}).strict()

export const PeerRecordPayload = z.object({
  roles: z.array(z.enum(['peer', 'bootstrap'])).min(1).max(2),
  agent: z.string().max(128),
  backend: z.string().max(64).optional(),
  jobs: z.array(z.string().max(64)).max(64).default([])
}).strict()

const payloadSchemas = { job: JobRecordPayload, peer: PeerRecordPayload } satisfies Record<RecordKind, z.ZodType>
export type RecordPayload<K extends RecordKind> = z.infer<typeof payloadSchemas[K]>

const RecordBody = z.object({
  kind: z.enum(['job', 'peer']),
  publisher: z.string(),
  name: z.string(),
  seq: z.number().int().nonnegative(),
  issuedAt: z.number().int().nonnegative(),
  payload: z.unknown()
}).strict()

const Envelope = z.object({
  v: z.literal(1),
  body: z.string().max(MAX_RECORD_BYTES),
  sig: z.string().regex(/^[A-Za-z0-9+/]+=*$/).max(200)
}).strict()

export interface SignedRecord<K extends RecordKind = RecordKind> {
  key: RecordKey
  seq: number
  issuedAt: number
  payload: RecordPayload<K>
}

const encoder = new TextEncoder()

export async function signRecord<K extends RecordKind> (privateKey: PrivateKey, record: SignedRecord<K>): Promise<Uint8Array> {
  const body = JSON.stringify({
    kind: record.key.kind,
    publisher: record.key.publisher,
    name: record.key.name,
    seq: record.seq,
    issuedAt: record.issuedAt,
    payload: parseWith(payloadSchemas[record.key.kind], record.payload, `${record.key.kind} record payload`)
  })
  const sig = await privateKey.sign(encoder.encode(RECORD_SIGNING_PREFIX + body))
  return encodeJson({ v: 1, body, sig: Buffer.from(sig).toString('base64') })
}

/**
 * Parses and verifies a record found under `key`. Throws InvalidMessageError when the envelope is malformed,
 * the body does not match the key, or the signature is not the publisher's.
 */
export async function verifyRecord (key: Uint8Array, value: Uint8Array): Promise<SignedRecord> {
  const parsedKey = parseRecordKey(key)
  const envelope = decodeJson(Envelope, value, MAX_RECORD_BYTES + 512, 'DHT record')
  let bodyJson: unknown
  try {
    bodyJson = JSON.parse(envelope.body)
  } catch {
    throw new InvalidMessageError('DHT record: body is not JSON')
  }
  const body = parseWith(RecordBody, bodyJson, 'DHT record body')
  if (body.kind !== parsedKey.kind || body.publisher !== parsedKey.publisher || body.name !== parsedKey.name) {
    throw new InvalidMessageError('DHT record: body does not match the key it is stored under')
  }
  let publicKey
  try {
    publicKey = peerIdFromString(parsedKey.publisher).publicKey
  } catch (err) {
    throw new InvalidMessageError(`DHT record: publisher ${parsedKey.publisher} is not a peer id (${(err as Error).message})`)
  }
  if (publicKey == null) throw new InvalidMessageError('DHT record: publisher peer id carries no public key')
  let ok: boolean
  try {
    ok = await publicKey.verify(encoder.encode(RECORD_SIGNING_PREFIX + envelope.body), Buffer.from(envelope.sig, 'base64'))
  } catch (err) {
    // A signature of the wrong length for the key's type: the verifier throws instead of answering false.
    throw new InvalidMessageError(`DHT record: malformed signature (${(err as Error).message})`)
  }
  if (!ok) throw new InvalidMessageError('DHT record: signature does not verify against the publisher key')
  const payload = parseWith(payloadSchemas[parsedKey.kind], body.payload, `${parsedKey.kind} record payload`)
  return { key: parsedKey, seq: body.seq, issuedAt: body.issuedAt, payload }
}

/** The kad-dht selector: index of the best record, the highest sequence number (ties: the newest issue time). */
export async function selectRecord (key: Uint8Array, values: Uint8Array[]): Promise<number> {
  let best = -1
  let bestRecord: SignedRecord | undefined
  for (let i = 0; i < values.length; i++) {
    let record: SignedRecord
    try {
      record = await verifyRecord(key, values[i])
    } catch {
      continue
    }
    if (bestRecord == null || record.seq > bestRecord.seq || (record.seq === bestRecord.seq && record.issuedAt > bestRecord.issuedAt)) {
      best = i
      bestRecord = record
    }
  }
  if (best < 0) throw new InvalidMessageError('DHT record: no valid record among the candidates')
  return best
}
