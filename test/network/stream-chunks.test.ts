/**
 * Reading a libp2p stream to its end when the remote wrote and closed before the reader started: two real
 * libp2p nodes on 127.0.0.1. The handler waits until the dialer's close is done before reading, which is what
 * happened by chance when a verdict arrived while its handler was still being set up (it then hung until the
 * auditor gave up).
 */
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { FrameReader } from '../../node/allreduce/wire.ts'
import { ByteReader } from '../../node/storage/shard-stream/byte-reader.ts'
import { streamChunks } from '../../node/network/stream-chunks.ts'
import { encodeFrame, type FrameHeader } from '../../protocol/allreduce.ts'
import { startConnectedNodes, stopAll } from '../allreduce/helpers.ts'

const PROTOCOL = '/nearai-test/late-reader/1.0.0'

/** Resolves with the stream a handler got, once the dialer's write and close are done. */
async function lateStream (a: Libp2p<any>, b: Libp2p<any>, bytes: Uint8Array): Promise<Stream> {
  let closed!: () => void
  const dialerDone = new Promise<void>(resolve => { closed = resolve })
  const inbound = new Promise<Stream>(resolve => {
    void b.handle(PROTOCOL, async (stream: Stream) => {
      await dialerDone
      // Give the FIN time to arrive and be processed before anyone reads.
      await new Promise(resolve => setTimeout(resolve, 200))
      resolve(stream)
    }, { force: true })
  })
  const out = await a.dialProtocol(b.peerId, PROTOCOL)
  out.send(bytes)
  await out.close()
  closed()
  return await inbound
}

async function within<T> (ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: no end within ${ms} ms`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

describe('network: reading a stream whose remote closed before the first read', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  before(async () => { nodes = await startConnectedNodes(2) })
  after(async () => { await stopAll(nodes) })

  it('streamChunks yields every byte, then ends', async () => {
    const bytes = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff)
    const stream = await lateStream(nodes[0], nodes[1], bytes)
    const got: number[] = []
    await within(3000, 'streamChunks', (async () => {
      for await (const chunk of streamChunks(stream)) got.push(...(chunk instanceof Uint8Array ? chunk : chunk.subarray()))
    })())
    assert.deepEqual(Uint8Array.from(got), bytes)
  })

  it('the all-reduce frame reader reads the frame and sees the end (a verdict handler waits for it)', async () => {
    const header: FrameHeader = { v: 1, type: 'verdict', job: 'j', round: 1, group: 'a'.repeat(64), part: 0, offset: 0, elements: 4, reducer: nodes[0].peerId.toString(), audited: false, result: 'b'.repeat(64), fault: false }
    const stream = await lateStream(nodes[0], nodes[1], encodeFrame(header, new Uint8Array(0)))
    const reader = new FrameReader(stream)
    const { header: h } = await reader.readHeader(f => f)
    assert.deepEqual(h, header)
    assert.equal((await reader.readPayload(0, 'verdict payload')).byteLength, 0)
    await within(3000, 'FrameReader.expectEnd', reader.expectEnd())
  })

  it('the shard-stream byte reader reads what was sent and finds the end', async () => {
    const stream = await lateStream(nodes[0], nodes[1], Uint8Array.from([0, 0, 0, 3, 9, 8, 7]))
    const reader = new ByteReader(stream)
    assert.equal(await reader.u32(), 3)
    assert.deepEqual([...await reader.read(3)], [9, 8, 7])
    await within(3000, 'ByteReader', assert.rejects(reader.read(1), /ended/))
  })
})
