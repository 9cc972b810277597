/**
 * Fuzzing the DHT record validator and selector (`protocol/records.ts`, installed as kad-dht's validator and
 * selector for the `nearai` namespace): keys and values from any peer either verify as a record its
 * publisher signed, or are refused with InvalidMessageError; the selector never throws anything else and
 * picks the same record however often one is replayed among the candidates.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { recordKey } from '../../protocol/dht-keys.ts'
import { MAX_RECORD_BYTES, selectRecord, signRecord, verifyRecord } from '../../protocol/records.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { fuzzTimeout, hostileBytes, hostileJson, parsesOrRefusesAsync, runs } from './fuzz.ts'

describe('fuzz: DHT records', function () {
  this.timeout(fuzzTimeout(120_000))
  let key: PrivateKey
  let publisher: string
  let valid: Uint8Array
  let rawKey: Uint8Array

  before(async () => {
    key = await generateKeyPair('Ed25519')
    publisher = peerIdFromPrivateKey(key).toString()
    rawKey = recordKey({ kind: 'job', publisher, name: 'fuzz' })
    valid = await signRecord(key, { key: { kind: 'job', publisher, name: 'fuzz' }, seq: 3, issuedAt: 1000, payload: { jobId: 'fuzz', specCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' } })
    assert.equal((await verifyRecord(rawKey, valid)).seq, 3)
  })

  it('hostile values under a valid key, and hostile keys, verify or are refused with InvalidMessageError', async () => {
    const envelope = JSON.parse(new TextDecoder().decode(valid)) as Record<string, unknown>
    const values = fc.oneof(hostileBytes(valid), hostileJson(envelope, { oversize: MAX_RECORD_BYTES + 1 }))
    await fc.assert(fc.asyncProperty(values, async (value) => {
      const record = await parsesOrRefusesAsync(async () => await verifyRecord(rawKey, value), [InvalidMessageError], new TextDecoder().decode(value))
      if (record != null) assert.equal(record.key.publisher, publisher)
    }), runs())
    const keys = fc.oneof(
      hostileBytes(rawKey),
      fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{40,100}$/).map(p => new TextEncoder().encode(`/nearai/job/${p}/fuzz`)),
      fc.uint8Array({ maxLength: 120 })
    )
    await fc.assert(fc.asyncProperty(keys, async (k) => {
      const record = await parsesOrRefusesAsync(async () => await verifyRecord(k, valid), [InvalidMessageError], new TextDecoder().decode(k))
      if (record != null) assert.deepEqual(record.key, { kind: 'job', publisher, name: 'fuzz' })
    }), runs())
  })

  it('a signature of the wrong length and a publisher that only looks like a peer id are InvalidMessageErrors (the first found by fuzzing: a TypeError)', async () => {
    const envelope = JSON.parse(new TextDecoder().decode(valid)) as Record<string, unknown>
    const short = new TextEncoder().encode(JSON.stringify({ ...envelope, sig: Buffer.alloc(10).toString('base64') }))
    await assert.rejects(verifyRecord(rawKey, short), (err: Error) => err instanceof InvalidMessageError && /malformed signature/.test(err.message))
    const fake = 'Qm' + '1'.repeat(44)
    const body = JSON.stringify({ kind: 'job', publisher: fake, name: 'fuzz', seq: 1, issuedAt: 1, payload: {} })
    const value = new TextEncoder().encode(JSON.stringify({ v: 1, body, sig: Buffer.alloc(64).toString('base64') }))
    await assert.rejects(verifyRecord(new TextEncoder().encode(`/nearai/job/${fake}/fuzz`), value), (err: Error) => err instanceof InvalidMessageError && /is not a peer id|no public key/.test(err.message))
  })

  it('bodies re-signed by the publisher with hostile fields verify within the schema or are refused', async () => {
    const body = { kind: 'job', publisher, name: 'fuzz', seq: 1, issuedAt: 5, payload: { jobId: 'fuzz', specCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' } }
    await fc.assert(fc.asyncProperty(hostileJson(body), async (bodyBytes) => {
      const text = new TextDecoder().decode(bodyBytes)
      const sig = await key.sign(new TextEncoder().encode('nearai-dht-record:' + text))
      const value = new TextEncoder().encode(JSON.stringify({ v: 1, body: text, sig: Buffer.from(sig).toString('base64') }))
      const record = await parsesOrRefusesAsync(async () => await verifyRecord(rawKey, value), [InvalidMessageError], text)
      if (record != null) assert.ok(Number.isSafeInteger(record.seq) && record.seq >= 0)
    }), runs())
  })

  it('the selector picks the highest valid record among hostile and replayed candidates, or refuses by name', async () => {
    const newer = await signRecord(key, { key: { kind: 'job', publisher, name: 'fuzz' }, seq: 4, issuedAt: 1000, payload: { jobId: 'fuzz', specCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi' } })
    const candidate = fc.oneof(hostileBytes(valid), fc.constant(valid), fc.constant(newer))
    await fc.assert(fc.asyncProperty(fc.array(candidate, { minLength: 1, maxLength: 6 }), async (values) => {
      const best = await parsesOrRefusesAsync(async () => await selectRecord(rawKey, values), [InvalidMessageError])
      const hasNewer = values.some(v => Buffer.from(v).equals(Buffer.from(newer)))
      if (hasNewer) assert.ok(best != null && Buffer.from(values[best]).equals(Buffer.from(newer)), 'the newest record wins, however often the older one is replayed')
      if (best != null) assert.ok((await verifyRecord(rawKey, values[best])).seq >= 3)
    }), runs(0.5))
  })
})
