import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { CHECKPOINT_MANIFEST_VERSION, decodeCheckpointManifest, parseCheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { canonicalContributions, contributionsRoot, InvalidContributionsError } from '../../protocol/contributions.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { InvalidUpdatePartError, isUpdatePartCid, updatePartCid, updatePartDigest } from '../../protocol/update-parts.ts'

const PEER_A = '12D3KooWA1111111111111111111111111111111111111111111'
const PEER_B = '12D3KooWB1111111111111111111111111111111111111111111'
const hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const D1 = hex(new Uint8Array([1]))
const D2 = hex(new Uint8Array([2]))
const D3 = hex(new Uint8Array([3]))
const D4 = hex(new Uint8Array([4]))

function manifest (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'nearai/checkpoint', version: 3, job: 'j', round: 3, parent: null, metrics: { samples: 10 },
    model: { path: 'model.json', bytes: 100, sha256: 'ab'.repeat(32) },
    weights: { sha256: 'cd'.repeat(32), bytes: 400, files: [{ path: 'weights.bin', bytes: 400, sha256: 'ef'.repeat(32) }] },
    extraFiles: [],
    contributions: [{ peer: PEER_A, samples: 10, update: [D1, D2] }, { peer: PEER_B, samples: 0, update: [D3, D4] }],
    updates: { codec: 'fp16', parts: [60, 40] },
    totalBytes: 500,
    ...extra
  }
}

/** The parse error's message (the named error's text), or undefined when it parses. */
function refusal (value: unknown): string | undefined {
  try { parseCheckpointManifest(value); return undefined } catch (err) {
    assert.ok(err instanceof InvalidMessageError, `expected InvalidMessageError, got ${String(err)}`)
    return (err as Error).message
  }
}

describe('update commitments: checkpoint manifest v3, contributions, update-part CIDs', () => {
  it('the manifest is written at version 3 and a v3 manifest with updates is accepted, digests kept in part order', () => {
    assert.equal(CHECKPOINT_MANIFEST_VERSION, 3)
    const m = decodeCheckpointManifest(new TextEncoder().encode(JSON.stringify(manifest())))
    assert.deepEqual(m.contributions?.map(c => c.update), [[D1, D2], [D3, D4]])
    assert.deepEqual(m.updates, { codec: 'fp16', parts: [60, 40] })
  })

  it('refuses a bad digest, a wrong number of digests, an update without `updates`, a bad codec or part size, and updates in a v2 manifest', () => {
    const bad = refusal(manifest({ contributions: [{ peer: PEER_A, samples: 10, update: [D1, 'AB'.repeat(32)] }] }))
    assert.match(bad ?? '', /contributions\.0\.update\.1.*64 lowercase hex/s)
    const count = refusal(manifest({ contributions: [{ peer: PEER_A, samples: 10, update: [D1] }] }))
    assert.match(count ?? '', /1 part digest\(s\), the round has 2 part\(s\)/)
    const missing = refusal(manifest({ updates: undefined }))
    assert.match(missing ?? '', /lists an update but the manifest has no `updates`/)
    assert.match(refusal(manifest({ updates: { codec: 'gzip', parts: [60, 40] } })) ?? '', /updates\.codec/)
    assert.match(refusal(manifest({ updates: { codec: 'fp16', parts: [60, 0] } })) ?? '', /updates\.parts\.1/)
    assert.match(refusal(manifest({ updates: { codec: 'fp16', parts: [] } })) ?? '', /updates\.parts/)
    assert.match(refusal(manifest({ contributions: [{ peer: PEER_A, samples: 10, update: [] }], updates: { codec: 'fp16', parts: [] } })) ?? '', /update/)
    assert.match(refusal(manifest({ version: 2 })) ?? '', /need manifest version 3, this one is version 2/)
  })

  it('still parses version 2 (contributions without updates) and version 1 manifests', () => {
    const v2 = parseCheckpointManifest(manifest({ version: 2, contributions: [{ peer: PEER_A, samples: 10 }], updates: undefined }))
    assert.equal(v2.version, 2)
    assert.deepEqual(v2.contributions, [{ peer: PEER_A, samples: 10 }])
    const v1 = parseCheckpointManifest(manifest({ version: 1, contributions: undefined, updates: undefined }))
    assert.equal(v1.contributions, undefined)
  })

  it('canonicalContributions keeps and validates `update`; the contributions root ignores it', () => {
    const plain = [{ peer: PEER_B, samples: 5 }, { peer: PEER_A, samples: 10 }]
    const withUpdates = [{ peer: PEER_B, samples: 5, update: [D3, D4] }, { peer: PEER_A, samples: 10, update: [D1, D2] }]
    assert.deepEqual(canonicalContributions(withUpdates), [{ peer: PEER_A, samples: 10, update: [D1, D2] }, { peer: PEER_B, samples: 5, update: [D3, D4] }])
    assert.equal(contributionsRoot('job-1', 7, withUpdates), contributionsRoot('job-1', 7, plain))
    // The root still commits to the samples: changing them changes it.
    assert.notEqual(contributionsRoot('job-1', 7, [{ ...withUpdates[0], samples: 6 }, withUpdates[1]]), contributionsRoot('job-1', 7, plain))
    assert.throws(() => canonicalContributions([{ peer: PEER_A, samples: 1, update: ['xyz'] }]), (err: Error) => err instanceof InvalidContributionsError && /contributions\[0\]\.update\[0\]/.test(err.message))
    assert.throws(() => canonicalContributions([{ peer: PEER_A, samples: 1, update: [] }]), InvalidContributionsError)
  })

  it('updatePartCid is the CIDv1 (raw, sha2-256) of the payload the digest is of, and updatePartDigest its inverse', async () => {
    const payload = new Uint8Array([9, 8, 7, 6, 5])
    const expected = CID.createV1(0x55, await sha256.digest(payload))
    const cid = updatePartCid(hex(payload))
    assert.ok(cid.equals(expected), `${cid.toString()} vs ${expected.toString()}`)
    assert.equal(updatePartDigest(cid), hex(payload))
    assert.equal(isUpdatePartCid(cid, hex(payload)), true)
    assert.equal(isUpdatePartCid(cid, D1), false)
    for (const bad of ['', 'AB'.repeat(32), 'ab'.repeat(31), 'zz'.repeat(32)]) {
      assert.throws(() => updatePartCid(bad), (err: Error) => err instanceof InvalidUpdatePartError && err instanceof InvalidMessageError && err.message.includes('64 lowercase hex'))
    }
    // A dag-pb folder or a CIDv0 names no update part.
    assert.throws(() => updatePartDigest(CID.createV1(0x70, expected.multihash)), InvalidUpdatePartError)
    assert.throws(() => updatePartDigest(CID.createV0(expected.multihash as any)), InvalidUpdatePartError)
  })
})
