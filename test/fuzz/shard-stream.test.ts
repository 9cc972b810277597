/**
 * Fuzzing the shard-stream protocol (`/nearai/shard/1.0.0`) on both sides: the request, block-header and
 * error parsers (`protocol/shard-stream.ts`); a real holder's handler (`node/storage/shard-stream/server.ts`)
 * given hostile requests; and the fetcher (`client.ts`) reading from a hostile holder. A holder answers a
 * bad request with a named error frame (never `internal`) and keeps serving; a fetcher refuses a bad
 * stream with a ShardStreamError and stores nothing it did not verify.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import type { Host } from '../../node/network/host.ts'
import { ByteReader, StreamEndedError } from '../../node/storage/shard-stream/byte-reader.ts'
import { ShardStreamError, streamBlocks } from '../../node/storage/shard-stream/client.ts'
import { linkDecoder } from '../../node/storage/shard-stream/links.ts'
import {
  BLOCK_HEADER_BYTES, decodeBlockCid, encodeBlockHeader, encodeEnd, encodeShardError, encodeShardRequest, MAX_BLOCK_BYTES,
  MAX_CID_BYTES, MAX_ERROR_BYTES, MAX_REQUEST_BYTES, parseBlockHeader, parseShardError, parseShardRequest, SHARD_STREAM_PROTOCOL
} from '../../protocol/shard-stream.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { startHost, stopAll, waitFor } from '../storage/helpers.ts'
import { fuzzTimeout, hostileBytes, hostileJson, parsesOrRefuses, parsesOrRefusesAsync, runs } from './fuzz.ts'

async function rawBlock (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

function withLength (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.byteLength)
  new DataView(out.buffer).setUint32(0, body.byteLength)
  out.set(body, 4)
  return out
}

describe('fuzz: shard-stream protocol', function () {
  this.timeout(fuzzTimeout(120_000))
  const cid = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

  it('requests, block headers, CIDs and error frames: each parses or is refused with InvalidMessageError', () => {
    fc.assert(fc.property(hostileJson({ v: 1, cids: [cid, cid], recursive: true }, { oversize: MAX_REQUEST_BYTES }), (body) => {
      const parsed = parsesOrRefuses(() => parseShardRequest(body), [InvalidMessageError], new TextDecoder().decode(body))
      if (parsed != null) {
        assert.ok(parsed.cids.length >= 1 && parsed.cids.length === parsed.request.cids.length)
        for (const c of parsed.cids) assert.ok(c.code === 0x70 || c.code === 0x55)
      }
    }), runs())
    fc.assert(fc.property(fc.uint8Array({ minLength: BLOCK_HEADER_BYTES, maxLength: BLOCK_HEADER_BYTES }), (head) => {
      const lengths = parsesOrRefuses(() => parseBlockHeader(head), [InvalidMessageError], head)
      if (lengths != null) assert.ok(lengths.cidLength >= 1 && lengths.cidLength <= MAX_CID_BYTES && lengths.dataLength <= MAX_BLOCK_BYTES)
    }), runs())
    fc.assert(fc.property(fc.oneof(hostileBytes(CID.parse(cid).bytes), fc.uint8Array({ maxLength: MAX_CID_BYTES })), (bytes) => {
      parsesOrRefuses(() => decodeBlockCid(bytes), [InvalidMessageError], bytes)
    }), runs())
    fc.assert(fc.property(hostileJson({ code: 'not-found', message: 'no' }, { oversize: MAX_ERROR_BYTES }), (body) => {
      const error = parsesOrRefuses(() => parseShardError(body), [InvalidMessageError], new TextDecoder().decode(body))
      if (error != null) assert.ok(error.message.length <= 1024)
    }), runs())
  })

  describe('between real nodes', () => {
    let holder: Host
    let fetcher: Host
    const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
    before(async () => {
      holder = await startHost()
      fetcher = await startHost()
      for (let i = 0; i < 3; i++) {
        const bytes = randomBytes(1000 + i)
        const c = await rawBlock(bytes)
        await holder.helia.blockstore.put(c, bytes)
        blocks.push({ cid: c, bytes })
      }
      await fetcher.libp2p.dial(holder.libp2p.getMultiaddrs()[0])
      await waitFor('identify', async () => (await fetcher.libp2p.peerStore.get(holder.libp2p.peerId)).protocols.includes(SHARD_STREAM_PROTOCOL))
    })
    after(async () => { await stopAll([fetcher, holder]) })

    /** Sends `bytes` as a request and reads the holder's answer to the end: blocks, then the end or an error. */
    async function ask (bytes: Uint8Array): Promise<{ blocks: string[], end?: true, error?: { code: string, message: string } } | 'reset'> {
      const stream: Stream = await fetcher.libp2p.dialProtocol(holder.libp2p.peerId, SHARD_STREAM_PROTOCOL)
      if (bytes.byteLength > 0) stream.send(bytes)
      await stream.close()
      const reader = new ByteReader(stream)
      const got: string[] = []
      try {
        for (;;) {
          const type = await reader.u8()
          if (type === 0) return { blocks: got, end: true }
          if (type === 2) {
            const length = await reader.u32()
            assert.ok(length <= MAX_ERROR_BYTES)
            return { blocks: got, error: parseShardError(await reader.read(length)) }
          }
          assert.equal(type, 1, 'a block frame')
          const { cidLength, dataLength } = parseBlockHeader(Uint8Array.of(type, ...await reader.read(BLOCK_HEADER_BYTES - 1)))
          got.push(decodeBlockCid(await reader.read(cidLength)).toString())
          await reader.read(dataLength)
        }
      } catch (err) {
        if (err instanceof StreamEndedError || (err as Error).name.includes('Reset') || (err as Error).name.includes('Abort')) return 'reset'
        throw err
      }
    }

    it('a holder answers hostile requests with a named error frame (never internal) and keeps serving', async () => {
      const valid = { v: 1, cids: blocks.map(b => b.cid.toString()), recursive: false }
      const hostile = fc.oneof(
        hostileJson(valid, { oversize: MAX_REQUEST_BYTES }).map(withLength),
        hostileBytes(encodeShardRequest(valid as never)),
        fc.integer({ min: MAX_REQUEST_BYTES + 1, max: 0xffffffff }).map(n => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b })
      )
      const cases = fc.sample(hostile, { numRuns: Math.min(60, Math.max(10, runs().numRuns ?? 10)) })
      const codes = new Map<string, number>()
      for (const bytes of cases) {
        const answer = await ask(bytes)
        assert.notEqual(answer, 'reset', `the holder answers, it does not drop the stream (request ${Buffer.from(bytes.subarray(0, 80)).toString('hex')})`)
        if (answer === 'reset') continue
        if (answer.error != null) {
          assert.ok(['malformed-request', 'not-found'].includes(answer.error.code), `a hostile request is refused as malformed or not found, not ${answer.error.code}: ${answer.error.message}`)
          codes.set(answer.error.code, (codes.get(answer.error.code) ?? 0) + 1)
        } else {
          // A request that parses names blocks; the holder sends only blocks it holds, each once.
          assert.equal(new Set(answer.blocks).size, answer.blocks.length)
          for (const c of answer.blocks) assert.ok(blocks.some(b => b.cid.toString() === c))
        }
      }
      assert.ok((codes.get('malformed-request') ?? 0) > 0, 'malformed requests were seen and named')
      // Replayed: the same valid request twice gets the same blocks twice.
      const request = encodeShardRequest(valid as never)
      for (let i = 0; i < 2; i++) {
        const answer = await ask(request)
        assert.ok(answer !== 'reset')
        assert.equal(answer.end, true)
        assert.deepEqual(answer.blocks, valid.cids)
      }
      await waitFor('every stream served', () => holder.shardServer?.active === 0)
    })

    it('a request cut short by its sender is refused as malformed-request, not as an internal failure (found by fuzzing)', async () => {
      const request = encodeShardRequest({ v: 1, cids: [blocks[0].cid.toString()], recursive: false })
      for (const cut of [2, 4, 10, request.byteLength - 1]) {
        const answer = await ask(request.slice(0, cut))
        assert.ok(answer !== 'reset')
        assert.equal(answer.error?.code, 'malformed-request', `cut at ${cut}: ${JSON.stringify(answer)}`)
        assert.match(answer.error?.message ?? '', /truncated request/)
      }
    })

    it('a fetcher refuses a hostile holder\'s stream with a ShardStreamError and stores only verified blocks', async () => {
      const wanted = blocks[0]
      const good = new Uint8Array([...encodeBlockHeader(wanted.cid, wanted.bytes.byteLength), ...wanted.cid.bytes, ...wanted.bytes, ...encodeEnd()])
      const replies = fc.oneof(hostileBytes(good), fc.constant(encodeShardError('busy', 'later')), fc.constant(new Uint8Array([...good.subarray(0, good.byteLength - 1), ...good])))
      const cases = fc.sample(replies, { numRuns: Math.min(40, Math.max(8, runs().numRuns ?? 8)) })
      let reply: Uint8Array = new Uint8Array(0)
      const evil = await startHost({ shardServer: false })
      try {
        await evil.libp2p.handle(SHARD_STREAM_PROTOCOL, (stream: Stream) => {
          const send = reply
          void (async () => {
            try { for await (const _ of stream) { /* the request */ } } catch {}
            try { if (send.byteLength > 0) stream.send(send); await stream.close() } catch { stream.abort(new Error('closed')) }
          })()
        })
        await fetcher.libp2p.dial(evil.libp2p.getMultiaddrs()[0])
        for (const bytes of cases) {
          reply = bytes
          const stored: Array<{ cid: CID, bytes: Uint8Array }> = []
          const result = await parsesOrRefusesAsync(async () => await streamBlocks(fetcher.libp2p, evil.libp2p.peerId, [wanted.cid], false, {
            signal: AbortSignal.timeout(20_000), idleTimeoutMs: 5_000, links: linkDecoder(fetcher.helia), put: async (c, b) => { stored.push({ cid: c, bytes: b }) }
          }), [ShardStreamError], bytes)
          for (const s of stored) {
            assert.equal(s.cid.toString(), wanted.cid.toString(), 'only the block asked for is stored')
            assert.deepEqual(Buffer.from(s.bytes), Buffer.from(wanted.bytes), 'and only its true bytes')
          }
          if (result != null) assert.equal(result.blocks, 1)
        }
      } finally {
        await stopAll([evil])
      }
    })
  })
})
