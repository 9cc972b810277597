import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Host } from '../../node/network/host.ts'
import { fetchUpdatePart, storeUpdateParts, UpdatePartsKeeper } from '../../node/storage/update-parts.ts'
import { ContentNotFoundError, ContentTooLargeError } from '../../node/storage/errors.ts'
import { updatePartCid, InvalidUpdatePartError } from '../../protocol/update-parts.ts'
import { startHost, stopAll } from './helpers.ts'

const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

function payload (seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let s = seed
  for (let i = 0; i < length; i++) { s = (s * 1103515245 + 12345) % 2147483648; out[i] = s >>> 16 }
  return out
}

async function hasBlock (host: Host, bytes: Uint8Array): Promise<boolean> {
  return await host.helia.blockstore.has(updatePartCid(digest(bytes)))
}

describe('update parts: raw blocks by digest, kept for the newest rounds, fetched from a connected peer', function () {
  this.timeout(60_000)
  let trainer: Host
  let validator: Host

  before(async () => {
    trainer = await startHost()
    validator = await startHost({ bootstrap: trainer })
  })
  after(async () => { await stopAll([validator, trainer]) })

  it('stores a copy of each payload (the caller\'s buffer may change at once) and a connected peer fetches it by digest, byte for byte', async () => {
    const parts = [payload(1, 70_000), payload(2, 30_001), payload(3, 5)]
    const originals = parts.map(p => p.slice())
    const cids = await storeUpdateParts(trainer.helia, parts)
    for (const p of parts) p.fill(0) // the pool reuses the buffers
    assert.deepEqual(cids.map(String), originals.map(p => updatePartCid(digest(p)).toString()))
    for (const original of originals) {
      assert.equal(await hasBlock(validator, original), false, 'the validator does not hold it before')
      const fetched = await fetchUpdatePart(validator.helia, digest(original), { timeoutMs: 20_000 })
      assert.equal(digest(fetched), digest(original))
      assert.deepEqual(Buffer.from(fetched), Buffer.from(original))
    }
  })

  it('refuses a part larger than maxBytes (ContentTooLargeError), a malformed digest, and one nobody holds before the deadline', async () => {
    const big = payload(4, 4096)
    await storeUpdateParts(trainer.helia, [big])
    await assert.rejects(fetchUpdatePart(validator.helia, digest(big), { maxBytes: 4095, timeoutMs: 20_000 }),
      (err: Error) => err instanceof ContentTooLargeError && err.limit === 4095 && err.cid === updatePartCid(digest(big)).toString())
    await assert.rejects(fetchUpdatePart(validator.helia, 'not-a-digest'), InvalidUpdatePartError)
    const nobody = digest(payload(5, 100))
    await assert.rejects(fetchUpdatePart(validator.helia, nobody, { timeoutMs: 1500 }), (err: Error) => err instanceof ContentNotFoundError && err.message.includes('1500 ms'))
  })

  it('the keeper deletes the parts of rounds older than the newest keepRounds, except pinned blocks and blocks it did not store', async () => {
    const keeper = new UpdatePartsKeeper(trainer.helia, { keepRounds: 2 })
    const preexisting = payload(100, 64)
    await storeUpdateParts(trainer.helia, [preexisting])
    const rounds = [0, 1, 2, 3].map(r => [payload(10 + 2 * r, 1000), payload(11 + 2 * r, 999)])
    rounds[0].push(preexisting) // bytes the blockstore held before: not the keeper's to delete
    const pinned = rounds[1][0]
    for (const [r, parts] of rounds.entries()) {
      await keeper.store(r, parts)
      if (r === 1) for await (const _ of trainer.helia.pins.add(updatePartCid(digest(pinned)))) { /* drain */ }
    }
    assert.deepEqual(keeper.heldRounds(), [2, 3])
    for (const p of [...rounds[2], ...rounds[3]]) assert.equal(await hasBlock(trainer, p), true, 'the newest two rounds are kept')
    for (const p of [...rounds[0].slice(0, 2), rounds[1][1]]) assert.equal(await hasBlock(trainer, p), false, 'older rounds are deleted')
    assert.equal(await hasBlock(trainer, pinned), true, 'a pinned part stays')
    assert.equal(await hasBlock(trainer, preexisting), true, 'a block stored before the keeper stays')
    assert.throws(() => new UpdatePartsKeeper(trainer.helia, { keepRounds: 0 }), RangeError)
  })
})
