/**
 * Shard streams (`/nearai/shard/1.0.0`): the fast path of dataset fetches, between real nodes on 127.0.0.1.
 * Holders stream a shard's blocks; the fetcher checks each against its CID and the DAG it asked for, and
 * anything a holder does not deliver correctly is fetched over bitswap instead.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import all from 'it-all'
import type { Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import type { Host } from '../../node/network/host.ts'
import { addDataset, getDataset, getShardBytes, type AddDatasetResult } from '../../node/storage/datasets.ts'
import { walkDag } from '../../node/storage/dag.ts'
import { prefetchDags } from '../../node/storage/shard-stream/prefetch.ts'
import { ShardStreamError, streamBlocks } from '../../node/storage/shard-stream/client.ts'
import { linkDecoder } from '../../node/storage/shard-stream/links.ts'
import { penalised } from '../../node/storage/shard-stream/holders.ts'
import { ByteReader } from '../../node/storage/shard-stream/byte-reader.ts'
import {
  encodeBlockHeader, encodeEnd, MAX_BLOCK_BYTES, MAX_ERROR_BYTES, parseShardError, SHARD_STREAM_PROTOCOL
} from '../../protocol/shard-stream.ts'
import { startHost, stopAll, waitFor } from './helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/** Text lines of random hex: a `text` dataset, incompressible. */
function textBytes (bytes: number): Buffer {
  const lines: string[] = []
  for (let n = 0; n < bytes;) { const line = randomBytes(40).toString('hex') + '\n'; lines.push(line); n += line.length }
  return Buffer.from(lines.join(''))
}

async function cidsOf (host: Host, root: CID): Promise<string[]> {
  return (await all(walkDag(host.helia, root, { offline: true }))).map(b => b.cid.toString()).sort()
}

/** Every block of the dataset's shards as the importer made them. */
async function shardCids (host: Host, added: AddDatasetResult): Promise<string[]> {
  const out: string[] = []
  for (const s of added.manifest.shards) out.push(...await cidsOf(host, s.cid))
  return out.sort()
}

async function connect (from: Host, to: Host): Promise<void> {
  await from.libp2p.dial(to.libp2p.getMultiaddrs()[0])
  await waitFor('identify', async () => (await from.libp2p.peerStore.get(to.libp2p.peerId)).protocols.length > 0)
}

/** Reads a holder's answer to a raw request: the error frame it must send. */
async function errorAnswer (stream: Stream): Promise<{ code: string, message: string }> {
  const reader = new ByteReader(stream)
  assert.equal(await reader.u8(), 2, 'an error frame')
  const length = await reader.u32()
  assert.ok(length <= MAX_ERROR_BYTES)
  return parseShardError(await reader.read(length))
}

function withLength (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.byteLength)
  new DataView(out.buffer).setUint32(0, body.byteLength)
  out.set(body, 4)
  return out
}

describe('storage: shard streams', function () {
  this.timeout(120_000)
  let dir: string
  let path: string
  let file: Buffer
  let boot: Host, a: Host, b: Host, c: Host
  let added: AddDatasetResult
  let expectedCids: string[]
  const opts = { name: 'text', license: 'CC0-1.0', format: 'text' as const, shardBytes: 1_200_000 }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-shard-stream-'))
    path = join(dir, 'data.txt')
    file = textBytes(4_000_000) // 4 shards of ~1.2 MB, each two 1 MiB raw leaves under a dag-pb root
    await writeFile(path, file)
    boot = await startHost()
    ;[a, b, c] = await Promise.all([startHost({ bootstrap: boot }), startHost({ bootstrap: boot }), startHost({ bootstrap: boot })])
    added = await addDataset(a.helia, path, opts)
    expectedCids = await shardCids(a, added)
    assert.ok(added.manifest.shards.length >= 3)
  })

  after(async () => {
    await stopAll([a, b, c, boot])
    await removeDir(dir)
  })

  it('fetches a dataset from one holder on shard streams: the same bytes and the same CIDs as the import', async () => {
    const f = await startHost({ bootstrap: boot })
    try {
      const before = a.shardServer!.served.blocks
      const progress = new Map<string, number[]>()
      const got = await getDataset(f.helia, added.cid, {
        timeoutMs: 30_000,
        onProgress: evt => { const k = evt.detail.cid.toString(); progress.set(k, [...progress.get(k) ?? [], evt.detail.received]) }
      })
      assert.deepEqual(Buffer.concat(got.shards.map(s => s.bytes)), file)
      assert.ok(a.shardServer!.served.blocks - before >= expectedCids.length, 'every shard block came on a shard stream')
      assert.deepEqual(await shardCids(f, added), expectedCids)
      // Progress follows the streams and ends at each shard's size.
      for (const shard of added.manifest.shards) {
        const seen = progress.get(shard.cid.toString()) ?? []
        assert.ok(seen.length >= 2, `progress while shard ${shard.cid.toString()} streamed`)
        assert.equal(seen.at(-1), shard.bytes)
        assert.ok(seen.every((x, i) => i === 0 || x >= seen[i - 1]), 'progress never goes back')
      }
    } finally {
      await stopAll([f])
    }
  })

  it('carries kubo-compatible shards (CIDv0, dag-pb leaves) block for block', async () => {
    const kubo = await addDataset(a.helia, path, { ...opts, shardBytes: 2_000_000, kuboCompatible: true })
    assert.equal(kubo.manifest.shards[0].cid.version, 0)
    const f = await startHost({ bootstrap: boot })
    try {
      const before = a.shardServer!.served.blocks
      const got = await getDataset(f.helia, kubo.cid, { timeoutMs: 30_000 })
      assert.deepEqual(Buffer.concat(got.shards.map(s => s.bytes)), file)
      const cids = await shardCids(a, kubo)
      assert.ok(a.shardServer!.served.blocks - before >= cids.length, 'every shard block came on a shard stream')
      assert.deepEqual(await shardCids(f, kubo), cids)
    } finally {
      await stopAll([f])
    }
  })

  it('spreads the shards over three holders, with the same result', async () => {
    await addDataset(b.helia, path, opts)
    await addDataset(c.helia, path, opts)
    const f = await startHost({ bootstrap: boot })
    try {
      const served = [a, b, c].map(h => h.shardServer!.served.blocks)
      const got = await getDataset(f.helia, added.cid, { timeoutMs: 30_000 })
      assert.deepEqual(Buffer.concat(got.shards.map(s => s.bytes)), file)
      const delta = [a, b, c].map((h, i) => h.shardServer!.served.blocks - served[i])
      assert.ok(delta.every(d => d > 0), `every holder served some blocks (${delta.join(', ')})`)
      assert.deepEqual(await shardCids(f, added), expectedCids)
    } finally {
      await stopAll([f])
    }
  })

  it('cuts a single shard into ranges of its leaves over several holders', async () => {
    const f = await startHost({ bootstrap: boot })
    try {
      const shard = added.manifest.shards[1]
      await connect(f, a)
      await connect(f, b)
      const served = [a, b].map(h => h.shardServer!.served.blocks)
      const report = await prefetchDags(f.helia, [shard.cid], { signal: AbortSignal.timeout(30_000), holders: [a.libp2p.peerId, b.libp2p.peerId], streamsPerHolder: 1 })
      assert.deepEqual(report.failed, [])
      assert.equal(report.leftOver, 0)
      assert.ok(report.complete)
      const delta = [a, b].map((h, i) => h.shardServer!.served.blocks - served[i])
      assert.ok(delta.every(d => d > 0), `both holders served part of the shard (${delta.join(', ')})`)
      const bytes = await getShardBytes(f.helia, added.cid, added.manifest, 1, { offline: true })
      assert.equal(Buffer.from(bytes).toString('hex').length, shard.bytes * 2)
      assert.deepEqual(await cidsOf(f, shard.cid), await cidsOf(a, shard.cid))
    } finally {
      await stopAll([f])
    }
  })

  describe('a holder that lies', () => {
    let liar: Host, honest: Host
    let own: AddDatasetResult
    let lie: (stream: Stream, requested: CID[]) => Promise<void>
    before(async () => {
      // The liar speaks the protocol but holds nothing; the honest holder speaks only bitswap.
      liar = await startHost({ bootstrap: boot, shardServer: false })
      honest = await startHost({ bootstrap: boot, shardServer: false })
      own = await addDataset(honest.helia, path, { ...opts, shardBytes: 1_500_000 }) // shards only the honest one holds
      // The liar announces the shards it does not hold, as a provider on the DHT.
      for (const shard of own.manifest.shards) await liar.libp2p.contentRouting.provide(shard.cid)
      await liar.libp2p.handle(SHARD_STREAM_PROTOCOL, (stream: Stream) => {
        void (async () => {
          const reader = new ByteReader(stream)
          const body = await reader.read(await reader.u32())
          const requested = (JSON.parse(Buffer.from(body).toString()) as { cids: string[] }).cids.map(s => CID.parse(s))
          await lie(stream, requested)
          stream.send(encodeEnd())
          await stream.close()
        })().catch(err => { stream.abort(err) })
      })
    })
    after(async () => { await stopAll([liar, honest]) })

    /** Runs the production path past the liar, then returns why the liar's stream was refused. */
    const fetchThrough = async (): Promise<ShardStreamError> => {
      const f = await startHost({ bootstrap: boot })
      const g = await startHost({ bootstrap: boot })
      try {
        // Shard streams from the holders the DHT names (the liar; the honest holder does not speak the
        // protocol), then bitswap (from the honest holder) for the rest.
        const shard = own.manifest.shards[0]
        const bytes = await getShardBytes(f.helia, own.cid, own.manifest, 0, { timeoutMs: 30_000 })
        assert.deepEqual(Buffer.from(bytes), file.subarray(0, shard.bytes))
        assert.ok(penalised(f.libp2p, liar.libp2p.peerId), 'the liar is skipped from now on')
        // Why: the liar's stream, asked directly.
        await connect(g, liar)
        const failures: ShardStreamError[] = []
        const report = await prefetchDags(g.helia, [own.manifest.shards[1].cid], { signal: AbortSignal.timeout(20_000), holders: [liar.libp2p.peerId], onHolderFailed: (_, err) => failures.push(err) })
        assert.equal(report.complete, false)
        assert.equal(failures.length, 1)
        return failures[0]
      } finally {
        await stopAll([f, g])
      }
    }

    it('a block whose bytes do not hash to its CID is refused, and the fetch completes over bitswap', async () => {
      lie = async (stream, requested) => {
        const bogus = randomBytes(1000)
        stream.send(encodeBlockHeader(requested[0], bogus.byteLength))
        stream.send(bogus)
      }
      const err = await fetchThrough()
      assert.equal(err.failure, 'bad-block')
      assert.match(err.message, /do not hash/)
    })

    it('a block that was not asked for is refused, and the fetch completes over bitswap', async () => {
      lie = async (stream) => {
        const bytes = randomBytes(1000)
        const cid = CID.createV1(raw.code, await sha256.digest(bytes)) // a true block, but not one of ours
        stream.send(encodeBlockHeader(cid, bytes.byteLength))
        stream.send(bytes)
      }
      const err = await fetchThrough()
      assert.equal(err.failure, 'unrequested-block')
      assert.match(err.message, /not asked for/)
    })

    it('a holder that goes silent is given up on once nothing arrived for the idle timeout', async () => {
      lie = async (stream) => { await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) }) }
      const f = await startHost({ bootstrap: boot })
      try {
        await connect(f, liar)
        await assert.rejects(
          streamBlocks(f.libp2p, liar.libp2p.peerId, [own.manifest.shards[0].cid], true, { signal: AbortSignal.timeout(20_000), idleTimeoutMs: 300, links: linkDecoder(f.helia), put: async () => {} }),
          (err: Error) => err instanceof ShardStreamError && err.failure === 'timeout' && /sent nothing for 300 ms/.test(err.message))
      } finally {
        await stopAll([f])
      }
    })

    it('a block announced larger than bitswap allows is refused before any of it is read', async () => {
      lie = async (stream, requested) => {
        stream.send(encodeBlockHeader(requested[0], MAX_BLOCK_BYTES + 1))
      }
      const err = await fetchThrough()
      assert.equal(err.failure, 'protocol')
      assert.match(err.message, /exceeds 2097152/)
    })
  })

  it('falls back to bitswap when no holder speaks the protocol', async () => {
    const old = await startHost({ bootstrap: boot, shardServer: false })
    const f = await startHost({ bootstrap: boot })
    try {
      const own = await addDataset(old.helia, path, { ...opts, shardBytes: 3_000_000 }) // other shards: only `old` holds them
      await connect(f, old)
      const failures: ShardStreamError[] = []
      const report = await prefetchDags(f.helia, [own.manifest.shards[0].cid], { signal: AbortSignal.timeout(20_000), holders: [old.libp2p.peerId], onHolderFailed: (_, err) => failures.push(err) })
      assert.equal(failures[0]?.failure, 'unsupported')
      assert.equal(report.blocks, 0)
      const got = await getDataset(f.helia, own.cid, { timeoutMs: 30_000 })
      assert.deepEqual(Buffer.concat(got.shards.map(s => s.bytes)), file)
    } finally {
      await stopAll([f, old])
    }
  })

  it('answers a malformed request with a clear error', async () => {
    const f = await startHost({ bootstrap: boot })
    try {
      await connect(f, a)
      const cases: Array<[Uint8Array, RegExp]> = [
        [withLength(Buffer.from('not json')), /not valid UTF-8 JSON/],
        [withLength(Buffer.from(JSON.stringify({ v: 2, cids: [added.cid.toString()], recursive: true }))), /v:/],
        [withLength(Buffer.from(JSON.stringify({ v: 1, cids: ['bafy-not-a-cid'], recursive: true }))), /cids\.0: not a CID/],
        [withLength(Buffer.from(JSON.stringify({ v: 1, cids: [added.cid.toString()], recursive: true }))), /cids\.0: not a CID of a UnixFS block/], // the manifest is dag-cbor
        [Uint8Array.of(0xff, 0xff, 0xff, 0xff), /exceeds/]
      ]
      for (const [request, message] of cases) {
        const stream = await f.libp2p.dialProtocol(a.libp2p.peerId, SHARD_STREAM_PROTOCOL)
        stream.send(request)
        await stream.close()
        const error = await errorAnswer(stream)
        assert.equal(error.code, 'malformed-request')
        assert.match(error.message, message)
      }
    } finally {
      await stopAll([f])
    }
  })

  it('a holder without the data answers not-found', async () => {
    const empty = await startHost({ bootstrap: boot })
    const f = await startHost({ bootstrap: boot })
    try {
      await connect(f, empty)
      await assert.rejects(
        streamBlocks(f.libp2p, empty.libp2p.peerId, [added.manifest.shards[0].cid], true, { signal: AbortSignal.timeout(10_000), links: linkDecoder(f.helia), put: async () => {} }),
        (err: Error) => err instanceof ShardStreamError && err.holderCode === 'not-found' && err.message.includes(added.manifest.shards[0].cid.toString())
      )
      assert.equal(empty.shardServer!.served.blocks, 0)
    } finally {
      await stopAll([f, empty])
    }
  })
})
