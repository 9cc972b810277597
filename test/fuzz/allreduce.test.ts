/**
 * Fuzzing the all-reduce protocol (`/nearai/allreduce/1.0.0`): the frame header parser and validator
 * (`protocol/allreduce.ts`), the bounded frame reader every stream goes through (`node/allreduce/wire.ts`),
 * and a real node's handler over real streams. A frame is either taken (it belongs to the round, from a
 * member, for the part's exact length) or refused by name; a length prefix past its bound is refused
 * before anything is allocated or read; a replayed contribution changes nothing.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator } from '../../node/allreduce/combine.ts'
import { FrameReader, StreamEndedError } from '../../node/allreduce/wire.ts'
import {
  ALLREDUCE_PROTOCOL, decodeFrameHeader, encodeFrame, encodeFrameHeader, groupHash, MAX_FRAME_HEADER_BYTES, MAX_WEIGHT,
  validateFrameHeader, type ContributeHeader, type FrameContext, type FrameHeader
} from '../../protocol/allreduce.ts'
import { InvalidMessageError, MessageTooLargeError } from '../../protocol/errors.ts'
import { identityCodec, maxAbsDiff, randomVector, startConnectedNodes, stopAll, weightedMeanReference } from '../allreduce/helpers.ts'
import { fuzzTimeout, hostileBytes, hostileJson, parsesOrRefuses, parsesOrRefusesAsync, runs } from './fuzz.ts'

const members = ['12D3KooWA1111111111111111111111111111111111111111111', '12D3KooWB2222222222222222222222222222222222222222222'].sort()
const ctx: FrameContext = { job: 'j', round: 1, group: groupHash('j', 1, members, 10), members, offsets: [0, 5], lengths: [5, 5] }
const common = { v: 1, job: 'j', round: 1, group: ctx.group, part: 1, offset: 5, elements: 5 } as const
const headers: Record<string, FrameHeader> = {
  contribute: { ...common, type: 'contribute', from: members[0], weight: 3, standIn: false },
  accept: { ...common, type: 'accept' },
  wait: { ...common, type: 'wait' },
  result: { ...common, type: 'result', reducer: members[1], contributors: [{ peer: members[0], weight: 3 }, { peer: members[1], weight: 2 }], meta: { trimmed: 0 } },
  reject: { ...common, type: 'reject', reason: 'invalid', message: 'no' }
}

/** Splits `bytes` into chunks at the given cut points, as a stream delivers them. */
function chunked (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let at = 0
  for (const p of [...points, bytes.byteLength]) { if (p > at) { out.push(bytes.subarray(at, p)); at = p } }
  return out
}

async function * source (chunks: Uint8Array[], pulled: { bytes: number }): AsyncGenerator<Uint8Array> {
  for (const c of chunks) { pulled.bytes += c.byteLength; yield c }
}

/** The checks a reducer makes before a payload is read: the header belongs to the round, from the member that sent it. */
const acceptFrom = (remote: string) => (h: FrameHeader): FrameHeader => { validateFrameHeader(h, ctx, remote); return h }

describe('fuzz: all-reduce protocol', function () {
  this.timeout(fuzzTimeout(120_000))

  for (const [type, header] of Object.entries(headers)) {
    it(`a ${type} header: hostile variants decode and validate, or are refused with InvalidMessageError`, () => {
      fc.assert(fc.property(hostileJson(header as unknown as Record<string, unknown>, { oversize: MAX_FRAME_HEADER_BYTES }), fc.constantFrom(...members), (bytes, remote) => {
        const decoded = parsesOrRefuses(() => decodeFrameHeader(bytes), [InvalidMessageError], new TextDecoder().decode(bytes))
        if (decoded == null) return
        if (decoded.type === 'contribute' || decoded.type === 'result') {
          const weights = decoded.type === 'contribute' ? [decoded.weight] : decoded.contributors.map(c => c.weight)
          for (const w of weights) assert.ok(Number.isFinite(w) && w >= 0 && w <= MAX_WEIGHT, `weight ${w} within bounds`)
        }
        const valid = parsesOrRefuses(() => { validateFrameHeader(decoded, ctx, remote); return true }, [InvalidMessageError], decoded)
        if (valid === true) {
          assert.equal(decoded.group, ctx.group)
          assert.equal(decoded.offset, ctx.offsets[decoded.part])
          assert.equal(decoded.elements, ctx.lengths[decoded.part])
          if (decoded.type === 'contribute') assert.equal(decoded.from, remote)
        }
      }), runs())
    })
  }

  it('the frame reader: truncated, bit-flipped, padded and random streams, cut anywhere, give a checked frame or a named error', async () => {
    const frames = Object.values(headers).map(h => encodeFrame(h, new Uint8Array(h.elements * 4).fill(7)))
    const streams = fc.oneof(...frames.map(f => hostileBytes(f)), fc.constantFrom(...frames))
    await fc.assert(fc.asyncProperty(streams, fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom(...members), async (bytes, cuts, remote) => {
      const pulled = { bytes: 0 }
      const reader = new FrameReader(source(chunked(bytes, cuts), pulled))
      const frame = await parsesOrRefusesAsync(async () => await reader.readFrame({ accept: acceptFrom(remote), maxPayload: h => h.elements * 4 }), [InvalidMessageError, StreamEndedError], bytes)
      if (frame != null) {
        assert.equal(frame.payload.byteLength <= frame.header.elements * 4, true)
        assert.equal(frame.bytes <= bytes.byteLength, true, 'a frame is never longer than what arrived')
      }
    }), runs(2))
  })

  it('a length prefix past its bound is refused before the reader allocates or reads what it announces', async () => {
    // An endless sender: were the reader to trust the prefix, it would read (and buffer) forever.
    async function * endless (prefix: Uint8Array, pulled: { bytes: number }): AsyncGenerator<Uint8Array> {
      pulled.bytes += prefix.byteLength
      yield prefix
      for (;;) { pulled.bytes += 65_536; yield new Uint8Array(65_536) }
    }
    await fc.assert(fc.asyncProperty(fc.integer({ min: MAX_FRAME_HEADER_BYTES + 1, max: 0xffffffff }), async (announced) => {
      const prefix = new Uint8Array(4); new DataView(prefix.buffer).setUint32(0, announced)
      const pulled = { bytes: 0 }
      await assert.rejects(new FrameReader(endless(prefix, pulled)).readHeader(h => h), MessageTooLargeError)
      assert.equal(pulled.bytes, 4, 'nothing past the prefix was read')
    }), runs())
    // The payload's prefix too: checked against the part's size, which the validated header fixes.
    await fc.assert(fc.asyncProperty(fc.integer({ min: 21, max: 0xffffffff }), async (announced) => {
      const head = encodeFrameHeader(headers.contribute)
      const prefix = new Uint8Array(head.byteLength + 4); prefix.set(head); new DataView(prefix.buffer).setUint32(head.byteLength, announced)
      const pulled = { bytes: 0 }
      await assert.rejects(new FrameReader(endless(prefix, pulled)).readFrame({ accept: acceptFrom(members[0]), maxPayload: h => h.elements * 4 }), MessageTooLargeError)
      assert.equal(pulled.bytes, prefix.byteLength)
    }), runs())
  })

  describe('a real node\'s handler', () => {
    let nodes: Array<Libp2p<any>> = []
    let services: ButterflyAllReduce[] = []
    after(async () => {
      await Promise.all(services.map(async s => { await s.stop() }))
      await stopAll(nodes)
    })

    /** Sends raw bytes on a new stream and reads what the handler answers: frame headers, then the end or the error. */
    async function exchange (from: Libp2p<any>, to: Libp2p<any>, bytes: Uint8Array): Promise<FrameHeader[]> {
      const stream = await from.dialProtocol(to.peerId, ALLREDUCE_PROTOCOL)
      const reader = new FrameReader(stream)
      if (bytes.byteLength > 0) stream.send(bytes)
      await stream.close()
      const answers: FrameHeader[] = []
      try {
        for (;;) {
          const { header } = await reader.readFrame({ accept: h => h, maxPayload: () => 1 << 20 })
          answers.push(header)
          if (header.type !== 'accept' && header.type !== 'wait') return answers
        }
      } catch (err) {
        assert.ok(err instanceof StreamEndedError || err instanceof InvalidMessageError || (err as Error).name.includes('Reset') || (err as Error).name.includes('Abort'), `the stream ended or was reset, not ${(err as Error).name}: ${(err as Error).message}`)
        return answers
      }
    }

    it('refuses hostile streams from members and outsiders, ignores a replayed contribution, and the round result is exact', async () => {
      nodes = await startConnectedNodes(3)
      const [a, b, outsider] = nodes
      services = [a, b].map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 10_000 } }))
      await Promise.all(services.map(async s => { await s.start() }))
      const length = 64
      const group = makeGroup({ job: 'fuzz', round: 1, members: [a.peerId.toString(), b.peerId.toString()], vectorLength: length })
      const part = group.members.indexOf(a.peerId.toString())
      const { offsets, lengths } = partitionGroup(group)
      const vectors = [randomVector(length, 11), randomVector(length, 12)]
      const aggregator = plaintextAggregator(identityCodec)
      const running = services[0].run({ group, vector: vectors[0], weight: 2, aggregator })

      const header = (from: Libp2p<any>): ContributeHeader => ({
        v: 1, type: 'contribute', job: 'fuzz', round: 1, group: group.hash, part, offset: offsets[part], elements: lengths[part], from: from.peerId.toString(), weight: 5, standIn: false
      })
      // b's own contribution to a's part, exactly as b's run sends it: replayed below.
      const own = vectors[1].slice(offsets[part], offsets[part] + lengths[part])
      const ownFrame = encodeFrame(header(b), identityCodec.encode(own))
      // Hostile streams: anything from a peer outside the group (speaking for itself or for b), and from b,
      // a member, its frame cut short (whatever b sends whole is b's contribution: values are b's to choose).
      const forged = encodeFrame({ ...header(b) }, identityCodec.encode(own))
      const fromOutsider = fc.oneof(
        hostileBytes(forged), fc.constant(forged), fc.constant(encodeFrame(header(outsider), identityCodec.encode(own))),
        hostileJson(header(b) as unknown as Record<string, unknown>).map(json => { const out = new Uint8Array(4 + json.byteLength); new DataView(out.buffer).setUint32(0, json.byteLength); out.set(json, 4); return out })
      ).map(bytes => ({ from: outsider, bytes }))
      const truncatedFromB = fc.nat(ownFrame.byteLength - 1).map(n => ({ from: b, bytes: ownFrame.slice(0, n) }))
      const cases = fc.sample(fc.oneof(fromOutsider, truncatedFromB), { numRuns: Math.min(40, Math.max(8, Math.round((runs().numRuns ?? 8) / 2))) })
      for (const { from, bytes } of cases) {
        const answers = await exchange(from, a, bytes)
        const last = answers.at(-1)
        // A hostile stream gets nothing (reset) or a refusal; 'accept' only for b's header, whose payload never comes whole.
        assert.ok(last == null || last.type === 'reject' || (last.type === 'accept' && from === b), `answered ${String(last?.type)}`)
      }

      const [ra, rb] = await Promise.all([running, services[1].run({ group, vector: vectors[1], weight: 5, aggregator })])
      const reference = weightedMeanReference(vectors, [2, 5])
      for (const r of [ra, rb]) {
        assert.ok(maxAbsDiff(r.vector, reference) < 1e-6, 'the result is the weighted mean of the members\' real vectors')
        assert.equal(r.complete, true)
      }
      // Replayed after the round: idempotent. The lingering reducer answers with the part it already reduced
      // (or refuses), never reduces it again with the replay counted twice, and a's result does not move.
      const kept = ra.vector.slice()
      for (let i = 0; i < 2; i++) {
        const replay = await exchange(b, a, ownFrame)
        const last = replay.at(-1)
        assert.ok(last == null || last.type === 'reject' || last.type === 'result', `a replay is answered ${String(last?.type)}`)
        if (last?.type === 'result') {
          const expected = [{ peer: a.peerId.toString(), weight: 2 }, { peer: b.peerId.toString(), weight: 5 }].sort((x, y) => x.peer < y.peer ? -1 : 1)
          assert.deepEqual(last.contributors.map(c => ({ peer: c.peer, weight: c.weight })), expected, 'the same contributors and weights as the round itself')
        }
      }
      assert.deepEqual(ra.vector, kept)
      assert.ok(services[0].stats.rejectedFrames >= 1, 'hostile frames were counted as rejected')
    })
  })
})
