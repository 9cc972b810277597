import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator } from '../../node/allreduce/combine.ts'
import { FrameReader } from '../../node/allreduce/wire.ts'
import {
  ALLREDUCE_PROTOCOL, encodeFrame, encodeFramePrefix, decodeFrameHeader, validateFrameHeader, groupHash,
  type ContributeHeader, type FrameHeader, type FrameContext
} from '../../protocol/allreduce.ts'
import { InvalidMessageError, MessageTooLargeError } from '../../protocol/errors.ts'
import { identityCodec, maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, weightedMeanReference } from './helpers.ts'

/** Sends raw bytes on a new all-reduce stream and reads the answer: a frame header, or the error that ended the stream. */
async function exchange (from: Libp2p<any>, to: Libp2p<any>, bytes: Uint8Array): Promise<FrameHeader | Error> {
  const stream = await from.dialProtocol(to.peerId, ALLREDUCE_PROTOCOL)
  const reader = new FrameReader(stream)
  stream.send(bytes)
  await stream.close()
  try {
    // A header the reducer takes is answered with 'accept'; what is wrong with the payload comes after.
    for (;;) {
      const { header } = await reader.readFrame({ accept: h => h, maxPayload: () => 1 << 20 })
      if (header.type !== 'accept') return header
    }
  } catch (err) {
    return err as Error
  }
}

describe('all-reduce frames', function () {
  this.timeout(60_000)

  describe('validation (pure)', () => {
    const members = ['12D3KooWA1111111111111111111111111111111111111111111', '12D3KooWB2222222222222222222222222222222222222222222'].sort()
    const ctx: FrameContext = { job: 'j', round: 1, group: groupHash('j', 1, members, 10), members, offsets: [0, 5], lengths: [5, 5] }
    const good: ContributeHeader = { v: 1, type: 'contribute', job: 'j', round: 1, group: ctx.group, part: 1, offset: 5, elements: 5, from: members[0], weight: 3, standIn: false }

    it('accepts a well-formed frame from a member', () => {
      assert.deepEqual(decodeFrameHeader(encodeFrame(good, new Uint8Array(20)).subarray(4, 4 + new DataView(encodeFrame(good, new Uint8Array(0)).buffer).getUint32(0))), good)
      validateFrameHeader(good, ctx, members[0])
    })
    it('rejects a part whose length does not match, an unknown sender, a forged sender, another group', () => {
      assert.throws(() => { validateFrameHeader({ ...good, elements: 6 }, ctx, members[0]) }, InvalidMessageError)
      assert.throws(() => { validateFrameHeader({ ...good, offset: 4 }, ctx, members[0]) }, InvalidMessageError)
      assert.throws(() => { validateFrameHeader({ ...good, part: 2 }, ctx, members[0]) }, InvalidMessageError)
      assert.throws(() => { validateFrameHeader(good, ctx, '12D3KooWC3333333333333333333333333333333333333333333') }, /not in the group/)
      assert.throws(() => { validateFrameHeader(good, ctx, members[1]) }, /speaks for/)
      assert.throws(() => { validateFrameHeader({ ...good, group: 'f'.repeat(64) }, ctx, members[0]) }, /group/)
      assert.throws(() => { validateFrameHeader({ ...good, round: 2 }, ctx, members[0]) }, InvalidMessageError)
    })
    it('rejects headers that break the schema or the size bound', () => {
      const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
      assert.throws(() => decodeFrameHeader(enc({ ...good, weight: -1 })), InvalidMessageError)
      assert.throws(() => decodeFrameHeader(enc({ ...good, weight: 'NaN' })), InvalidMessageError)
      assert.throws(() => decodeFrameHeader(enc({ ...good, extra: 1 })), InvalidMessageError)
      assert.throws(() => decodeFrameHeader(enc({ ...good, type: 'gimme' })), InvalidMessageError)
      assert.throws(() => decodeFrameHeader(new Uint8Array(20_000).fill(32)), MessageTooLargeError)
      assert.throws(() => encodeFramePrefix({ ...good, job: 'x'.repeat(20_000) }, 0), MessageTooLargeError)
    })
  })

  describe('on the wire', () => {
    let nodes: Array<Libp2p<any>> = []
    let services: ButterflyAllReduce[] = []
    after(async () => {
      await Promise.all(services.map(async s => { await s.stop() }))
      await stopAll(nodes)
    })

    it('refuses malformed, foreign and oversized frames, and the round still completes correctly', async () => {
      nodes = await startConnectedNodes(3)
      const [a, b, outsider] = nodes
      services = [a, b].map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 10_000 } }))
      await Promise.all(services.map(async s => { await s.start() }))
      const length = 1000
      const group = makeGroup({ job: 'frames', round: 1, members: [a.peerId.toString(), b.peerId.toString()], vectorLength: length })
      const part = group.members.indexOf(a.peerId.toString())
      const { offsets, lengths } = partitionGroup(group)
      const vectors = [randomVector(length, 1), randomVector(length, 2)]
      const aggregator = plaintextAggregator(identityCodec)
      const running = services[0].run({ group, vector: vectors[0], weight: 2, aggregator })

      const header = (from: Libp2p<any>, over: Partial<ContributeHeader> = {}): ContributeHeader => ({
        v: 1, type: 'contribute', job: 'frames', round: 1, group: group.hash, part, offset: offsets[part], elements: lengths[part], from: from.peerId.toString(), weight: 1, standIn: false, ...over
      })
      const payload = new Uint8Array(lengths[part] * 4)
      const expectReject = (answer: FrameHeader | Error, reason: string): void => {
        assert.ok(!(answer instanceof Error), `expected a reject frame, got ${String(answer)}`)
        assert.equal(answer.type, 'reject')
        if (answer.type === 'reject') assert.equal(answer.reason, reason)
      }

      // A peer outside the group.
      expectReject(await exchange(outsider, a, encodeFrame(header(outsider), payload)), 'invalid')
      // A member, but the part's length is wrong.
      expectReject(await exchange(b, a, encodeFrame(header(b, { elements: lengths[part] + 1 }), payload)), 'invalid')
      // A member speaking for someone else.
      expectReject(await exchange(b, a, encodeFrame(header(b, { from: outsider.peerId.toString() }), payload)), 'invalid')
      // Another view of the group.
      expectReject(await exchange(b, a, encodeFrame(header(b, { group: 'a'.repeat(64) }), payload)), 'group-mismatch')
      // A payload announced far larger than the part can be: refused before a byte of it is read.
      expectReject(await exchange(b, a, encodeFramePrefix(header(b), 1 << 30)), 'invalid')
      // A header length beyond the bound: the stream is reset, nothing is parsed.
      const huge = new Uint8Array(8); new DataView(huge.buffer).setUint32(0, 1 << 30)
      assert.ok(await exchange(b, a, huge) instanceof Error)

      // The real contribution is still welcome.
      const [ra, rb] = await Promise.all([running, services[1].run({ group, vector: vectors[1], weight: 5, aggregator })])
      const reference = weightedMeanReference(vectors, [2, 5])
      for (const r of [ra, rb]) {
        assert.ok(maxAbsDiff(r.vector, reference) < 1e-6)
        assert.equal(r.complete, true)
        assert.deepEqual(r.dropped, [])
      }
      assert.equal(ra.rejectedFrames, 5)
      assert.equal(services[0].stats.rejectedFrames, 6)
    })

    it('a member whose payload does not decode is refused for the part: what it sends after is not counted, and the round completes', async () => {
      const [a, b] = nodes
      const length = 1000
      const group = makeGroup({ job: 'frames', round: 2, members: [a.peerId.toString(), b.peerId.toString()], vectorLength: length })
      const part = group.members.indexOf(a.peerId.toString())
      const { offsets, lengths } = partitionGroup(group)
      const vectors = [randomVector(length, 3), randomVector(length, 4)]
      const aggregator = plaintextAggregator(identityCodec)
      const running = services[0].run({ group, vector: vectors[0], weight: 2, aggregator })
      const header: ContributeHeader = {
        v: 1, type: 'contribute', job: 'frames', round: 2, group: group.hash, part, offset: offsets[part], elements: lengths[part], from: b.peerId.toString(), weight: 1, standIn: false
      }
      // Decodes to 1 value instead of the part's length.
      const answer = await exchange(b, a, encodeFrame(header, new Uint8Array(7)))
      assert.ok(!(answer instanceof Error) && answer.type === 'reject' && answer.reason === 'invalid', `expected an invalid reject, got ${String(answer)}`)
      const [ra, rb] = await Promise.all([running, services[1].run({ group, vector: vectors[1], weight: 5, aggregator })])
      const reference = weightedMeanReference(vectors, [2, 5])
      const [at, end] = [offsets[part], offsets[part] + lengths[part]]
      for (const r of [ra, rb]) {
        assert.equal(r.complete, true)
        // a's part holds a's values alone (b's later contribution to it was not counted); the other part is the mean.
        assert.ok(sameBits(r.vector.subarray(at, end), vectors[0].subarray(at, end)), 'the refused member is not in the part')
        const other = (i: number): boolean => i < at || i >= end
        let worst = 0
        for (let i = 0; i < length; i++) if (other(i)) worst = Math.max(worst, Math.abs(r.vector[i] - reference[i]))
        assert.ok(worst < 1e-6, `the other part differs from the mean by ${worst}`)
        assert.deepEqual(r.parts[part].contributors.map(c => c.peer), [a.peerId.toString()])
      }
      assert.equal(ra.rejectedFrames, 1)
    })
  })
})
