/**
 * Signed records in this network's DHT (see protocol/dht-keys.ts and protocol/records.ts): publish a record
 * under our own peer id, read anyone's, always verified.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import { recordKey, type RecordKind } from '../../protocol/dht-keys.ts'
import { signRecord, verifyRecord, type RecordPayload, type SignedRecord } from '../../protocol/records.ts'

export class RecordNotFoundError extends Error {
  override name = 'RecordNotFoundError'
}

export interface DhtRecordsComponents {
  dht: KadDHT
  privateKey: PrivateKey
  peerId: string
  now?: () => number
}

export class DhtRecords {
  private readonly now: () => number

  constructor (private readonly components: DhtRecordsComponents) {
    this.now = components.now ?? Date.now
  }

  /** Publishes `payload` as our record `kind/name`; `seq` defaults to the current time so newer records win. */
  async put<K extends RecordKind> (kind: K, name: string, payload: RecordPayload<K>, options: { seq?: number, signal?: AbortSignal } = {}): Promise<void> {
    const issuedAt = this.now()
    const key = { kind, publisher: this.components.peerId, name }
    const value = await signRecord(this.components.privateKey, { key, seq: options.seq ?? issuedAt, issuedAt, payload })
    for await (const _ of this.components.dht.put(recordKey(key), value, { signal: options.signal })) {
      // draining the query's events drives it to completion
    }
  }

  /** Fetches and verifies the best record `kind/publisher/name` from the DHT. */
  async get<K extends RecordKind> (kind: K, publisher: string, name: string, options: { signal?: AbortSignal } = {}): Promise<SignedRecord<K>> {
    const key = recordKey({ kind, publisher, name })
    let value: Uint8Array | undefined
    for await (const event of this.components.dht.get(key, { signal: options.signal })) {
      if (event.name === 'VALUE') value = event.value
    }
    if (value == null) throw new RecordNotFoundError(`no DHT record for /${kind}/${publisher}/${name}`)
    return await verifyRecord(key, value) as SignedRecord<K>
  }
}
