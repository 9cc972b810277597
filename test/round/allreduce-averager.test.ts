import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { AllReduceAverager, updateCommitments } from '../../node/round/allreduce-averager.ts'
import { MatchWindow } from '../../node/round/match-window.ts'
import { RoundFailedError } from '../../node/round/round-loop.ts'
import type { AveragedUpdate } from '../../node/round/steps.ts'
import { partitionGroup, makeGroup } from '../../node/allreduce/group.ts'
import { int8Codec, updateEncoder, type VectorCodec } from '../../node/compression/index.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { BufferPool } from '../../node/memory/buffer-pool.ts'
import { InMemoryGroup, ManualClock, ScriptedMatchmaking } from './fakes.ts'
import type { FormGroupOptions, FormGroupResult } from '../../node/allreduce/matchmaking.ts'
import type { GroupAllReduce, PartReport } from '../../node/allreduce/all-reduce.ts'

/** Rounds to whole numbers: a lossy codec whose error is known exactly. Counts its encodings. */
function roundingCodec (): VectorCodec & { encodes: number } {
  const codec = {
    id: 'int8' as const,
    encodes: 0,
    encode (v: Float32Array): Uint8Array { codec.encodes++; return new Uint8Array(Int32Array.from(v, x => Math.round(x)).buffer) },
    decode: (b: Uint8Array): Float32Array => Float32Array.from(new Int32Array(b.slice().buffer))
  }
  return codec
}

const decode = (codec: VectorCodec, payloads: Uint8Array[]): number[][] => payloads.map(p => [...codec.decode(p)])
const signal = new AbortController().signal

interface Peer { id: string, averager: AllReduceAverager, matchmaking: ScriptedMatchmaking, codec: VectorCodec & { encodes?: number } }

/** Averagers for `ids` on one in-memory group; each member has its own codec instance (and so its own encode count). */
function peers (ids: string[], opts: { group?: InMemoryGroup, codec?: () => VectorCodec, minGroupSize?: number, clock?: ManualClock, window?: MatchWindow, livePeers?: () => string[] } = {}): { net: InMemoryGroup, peers: Peer[] } {
  const net = opts.group ?? new InMemoryGroup()
  return {
    net,
    peers: ids.map(id => {
      const codec = (opts.codec ?? roundingCodec)()
      const matchmaking = new ScriptedMatchmaking(ids)
      const averager = new AllReduceAverager(
        // As run-job.ts: the encode step's arrays come from a pool and are reused round after round.
        { matchmaking, encoder: updateEncoder(codec, { pool: new BufferPool() }), allReduce: net.member(id), logger: silentLogger(), clock: opts.clock },
        { job: 'job', minGroupSize: opts.minGroupSize, window: opts.window, livePeers: opts.livePeers }
      )
      return { id, averager, matchmaking, codec }
    })
  }
}

async function averageAll (ps: Peer[], round: number, updates: number[][], samples: number[]): Promise<AveragedUpdate[]> {
  return await Promise.all(ps.map(async (p, i) => await p.averager.average(round, { pseudoGradient: Float32Array.from(updates[i]), samples: samples[i], loss: 0 }, signal)))
}

describe('AllReduceAverager (the reduce step) with in-memory matchmaking, all-reduce and codec', () => {
  it('averages the group\'s updates through the encode step: each part encoded once, the payload is what the all-reduce sends', async () => {
    const { net, peers: ps } = peers(['peer-a', 'peer-b'])
    const [a, b] = ps
    await a.averager.start()
    assert.deepEqual(a.matchmaking.joined, ['job'], 'start joins the job\'s ready topic')
    const results = await averageAll(ps, 0, [[0.75, -0.25, 0.5, 2.25], [4, 8, -4, 0]], [1, 3])
    // Two parts, each encoded once by each member: nothing encodes a part a second time.
    assert.equal(a.codec.encodes, 2 + 2, 'two part payloads, plus the two part results the in-memory reducer encoded')
    assert.deepEqual(decode(a.codec, net.sent.get('peer-a')![0]), [[1, 0], [1, 2]])
    assert.deepEqual(decode(b.codec, net.sent.get('peer-b')![0]), [[4, 8], [-4, 0]])
    // Weighted mean of what was sent, (1·[1, 0, 1, 2] + 3·[4, 8, -4, 0]) / 4, through the codec once more.
    const expected = [13 / 4, 24 / 4, -11 / 4, 2 / 4].map(Math.round)
    for (const r of results) {
      assert.deepEqual([...r.average], expected)
      assert.deepEqual(r.contributions, [{ peer: 'peer-a', samples: 1 }, { peer: 'peer-b', samples: 3 }])
      assert.deepEqual(r.dropped, [])
      assert.equal(r.updates, undefined, 'the in-memory reducers list no digests: no update commitments')
    }
    assert.equal(a.matchmaking.calls[0].codec, 'int8', 'the group is formed for the encoder\'s codec')
  })

  it('error feedback across rounds: the error of round t is added to the update of round t+1 (exact values)', async () => {
    const { net, peers: ps } = peers(['peer-a', 'peer-b'])
    const g = [0.75, -0.25, 0.5, 2.25]
    const zeros = [0, 0, 0, 0]
    for (let round = 0; round < 3; round++) await averageAll(ps, round, [g, zeros], [1, 1])
    const sent = net.sent.get('peer-a')!.map(parts => decode(ps[0].codec, parts).flat())
    // Round 0 sends round(g) and keeps g − round(g) = [-0.25, -0.25, -0.5, 0.25];
    // round 1 sends round(g + that) = round([0.5, -0.5, 0, 2.5]), keeping [-0.5, -0.5, 0, -0.5];
    // round 2 sends round([0.25, -0.75, 0.5, 1.75]).
    assert.deepEqual(sent, [[1, 0, 1, 2], [1, 0, 0, 3], [0, -1, 1, 2]])
    // What was sent over three rounds falls short of 3·g by exactly the error still carried.
    const total = sent.reduce((acc, s) => acc.map((x, i) => x + s[i]), [0, 0, 0, 0])
    assert.deepEqual(g.map((x, i) => 3 * x - total[i]), [0.25, 0.25, -0.5, -0.25])
  })

  it('an average stays valid through the next round; the round after next reuses its memory', async () => {
    const { peers: ps } = peers(['peer-a', 'peer-b'])
    const r0 = await averageAll(ps, 0, [[1, 2, 3, 4], [3, 4, 5, 6]], [1, 1])
    const r1 = await averageAll(ps, 1, [[10, 10, 10, 10], [20, 20, 20, 20]], [1, 1])
    assert.deepEqual([...r0[0].average], [2, 3, 4, 5], 'round 0\'s average after round 1')
    assert.deepEqual([...r1[0].average], [15, 15, 15, 15])
    assert.notEqual(r1[0].average.buffer, r0[0].average.buffer)
    const r2 = await averageAll(ps, 2, [[0, 0, 0, 0], [2, 2, 2, 2]], [1, 1])
    assert.equal(r2[0].average.buffer, r0[0].average.buffer, 'round 2 is assembled where round 0 was')
    assert.deepEqual([...r2[0].average], [1, 1, 1, 1])
    assert.deepEqual([...r1[0].average], [15, 15, 15, 15], 'round 1\'s average after round 2')
  })

  it('error feedback is measured on exactly the group\'s parts (int8 scales per part), round after round', async () => {
    const codec = int8Codec({ chunkSize: 1024 })
    const ids = ['peer-a', 'peer-b', 'peer-c']
    const { net, peers: ps } = peers(ids, { codec: () => int8Codec({ chunkSize: 1024 }) })
    const n = 3001
    const update = (round: number, who: number): number[] => Array.from({ length: n }, (_v, i) => Math.sin(i * (who + 1) + round) * (i % 97 === 0 ? 40 : 1))
    // An independent reference of A's payloads: the carry is (update + carry) − decode(encode(part)) over the group's parts.
    const parts = partitionGroup(makeGroup({ job: 'job', round: 0, members: ids, vectorLength: n }))
    let carry = new Float32Array(n)
    for (let round = 0; round < 3; round++) {
      await averageAll(ps, round, ids.map((_id, who) => update(round, who)), [5, 6, 7])
      const x = Float32Array.from(update(round, 0))
      for (let i = 0; i < n; i++) x[i] += carry[i]
      const next = new Float32Array(n)
      const sent = net.sent.get('peer-a')![round]
      parts.offsets.forEach((offset, k) => {
        const slice = x.subarray(offset, offset + parts.lengths[k])
        assert.deepEqual(sent[k], codec.encode(slice), `round ${round} part ${k}`)
        const decoded = codec.decode(sent[k])
        for (let i = 0; i < slice.length; i++) next[offset + i] = slice[i] - decoded[i]
      })
      carry = next
    }
  })

  it('a crashed member (its part reduced by a stand-in) is dropped; the average is of the survivors', async () => {
    const group = new InMemoryGroup()
    group.crashed.add('peer-c')
    const { peers: ps } = peers(['peer-a', 'peer-b', 'peer-c'], { group, minGroupSize: 2 })
    const results = await averageAll(ps.slice(0, 2), 0, [[2, 4, 6], [6, 8, 10]], [1, 1])
    for (const r of results) {
      assert.deepEqual([...r.average], [4, 6, 8])
      assert.deepEqual(r.contributions.map(c => c.peer), ['peer-a', 'peer-b'])
      assert.deepEqual(r.dropped, ['peer-c'])
    }
  })

  it('a member that crashed mid-round counts for the parts it reached; fewer contributors than the job needs fail the round, and its retry sends the same bytes', async () => {
    const group = new InMemoryGroup()
    group.crashesAfter.set('peer-c', [0])
    const { net, peers: ps } = peers(['peer-a', 'peer-b', 'peer-c'], { group, minGroupSize: 2 })
    const g = [[0.75, 0.75, 0.75], [0, 0, 0], [9, 9, 9]]
    const results = await Promise.allSettled(ps.map(async (p, i) => await p.averager.average(0, { pseudoGradient: Float32Array.from(g[i]), samples: 1, loss: 0 }, signal)))
    const [ra] = results
    assert.equal(ra.status, 'fulfilled')
    if (ra.status === 'fulfilled') {
      assert.deepEqual(ra.value.contributions.map(c => c.peer), ['peer-a', 'peer-b', 'peer-c'], 'C is in part 0')
      assert.deepEqual(ra.value.dropped, ['peer-c'])
      assert.deepEqual([...ra.value.average], [Math.round((1 + 0 + 9) / 3), Math.round(1 / 2), Math.round(1 / 2)])
    }
    assert.equal(results[2].status, 'rejected')

    // Now A and B alone, with a job that needs three: the round fails after the exchange...
    const strict = new InMemoryGroup()
    strict.crashed.add('peer-c')
    const { net: net2, peers: ps2 } = peers(['peer-a', 'peer-b', 'peer-c'], { group: strict, minGroupSize: 3 })
    const two = ps2.slice(0, 2)
    const failed = await Promise.allSettled(two.map(async (p, i) => await p.averager.average(0, { pseudoGradient: Float32Array.from(g[i]), samples: 1, loss: 0 }, signal)))
    for (const f of failed) assert.ok(f.status === 'rejected' && f.reason instanceof RoundFailedError && /only 2 of the group's 3 members contributed/.test(f.reason.message))
    // ...and its retry carries no error from the failed try: the same bytes go out.
    strict.crashed.delete('peer-c')
    ps2[2].matchmaking.highest = 1 // C has heard the others' second try announced
    await Promise.all(ps2.map(async (p, i) => await p.averager.average(0, { pseudoGradient: Float32Array.from(g[i]), samples: 1, loss: 0 }, signal)))
    const [first, retry] = net2.sent.get('peer-a')!
    assert.deepEqual(retry, first)
    assert.ok(net.sent.size > 0)
  })

  it('fails the round when a part combined fewer members than the job needs (a peer cut off mid-round), even if every member counts somewhere', async () => {
    const ids = ['peer-a', 'peer-b', 'peer-c']
    // What a cut-off member's butterfly returns: part 0's result came in from its reducer before the cut (all three
    // members), part 1 it stood in for alone, part 2 its own reduction of what had arrived (two members).
    const cutOff: GroupAllReduce = {
      start: async () => {},
      stop: async () => {},
      run: async (opts) => {
        const report = (index: number, contributors: string[]): PartReport => ({ index, offset: index, elements: 1, reducer: ids[index], reducedBy: 'peer-c', standIn: index === 1, contributors: contributors.map(peer => ({ peer, weight: 1 })), localOnly: false })
        const parts = [report(0, ids), report(1, ['peer-c']), report(2, ['peer-b', 'peer-c'])]
        return { vector: new Float32Array(3), group: opts.group, parts, contributors: ids.map(peer => ({ peer, weight: 1, elements: 1, fraction: 1 / 3 })), dropped: ids, standIns: [], traffic: [], bytesSent: 1, bytesReceived: 1, durationMs: 1, complete: true, rejectedFrames: 0 }
      }
    }
    const averager = new AllReduceAverager({ matchmaking: new ScriptedMatchmaking(ids), encoder: updateEncoder(int8Codec()), allReduce: cutOff, logger: silentLogger() }, { job: 'job', minGroupSize: 2 })
    await assert.rejects(averager.average(0, { pseudoGradient: new Float32Array(3), samples: 1, loss: 0 }, signal), (err: Error) => err instanceof RoundFailedError && /part\(s\) 1 combined fewer than the 2 members/.test(err.message))
  })

  it('fails the round before encoding anything when this peer is not in the group, or the group is below the job\'s minimum', async () => {
    const { net, peers: [a] } = peers(['peer-a', 'peer-b'], { minGroupSize: 3 })
    await assert.rejects(a.averager.average(0, { pseudoGradient: new Float32Array(4), samples: 1, loss: 0 }, signal), /the group has 2 member\(s\), the job needs 3/)
    a.matchmaking.members = null
    await assert.rejects(a.averager.average(1, { pseudoGradient: new Float32Array(4), samples: 1, loss: 0 }, signal), (err: Error) => err instanceof RoundFailedError && /not in the group/.test(err.message))
    assert.equal(a.codec.encodes, 0)
    assert.equal(net.sent.size, 0)
  })

  it('asks for the group with the window\'s deadline and the live peers, and retries a round as the next (or highest announced) try', async () => {
    const clock = new ManualClock()
    clock.t = 1_000
    const window = new MatchWindow({ floorMs: 100, capMs: 5_000, fraction: 2 })
    const group = new InMemoryGroup()
    const { peers: [a] } = peers(['peer-a'], { group, clock, window, livePeers: () => ['peer-a', 'peer-x'] })
    a.matchmaking.members = null
    const fail = async (round: number): Promise<void> => { await assert.rejects(a.averager.average(round, { pseudoGradient: new Float32Array(2), samples: 1, loss: 0 }, signal), RoundFailedError) }
    await fail(4)
    window.observeTrainingTime(1_000)
    window.observeTrainingTime(2_000)
    await fail(4)
    a.matchmaking.highest = 7
    await fail(4)
    await fail(5)
    const calls = a.matchmaking.calls
    assert.deepEqual(calls.map(c => [c.round, c.attempt]), [[4, 0], [4, 1], [4, 7], [5, 7]])
    // First rounds wait up to the cap; then fraction × the EWMA of training time (0.7·1000 + 0.3·2000 = 1300).
    assert.deepEqual(calls.map(c => c.deadline), [1_000 + 5_000, 1_000 + 2_600, 1_000 + 2_600, 1_000 + 2_600])
    assert.deepEqual(calls[0].expected, ['peer-a', 'peer-x'])
  })

  it('gives up waiting for a group as soon as the job\'s peers announce they completed the round without it, and only then', async () => {
    /** Matchmaking that forms no group until its signal aborts (peers that moved on never answer). */
    class WaitingMatchmaking extends ScriptedMatchmaking {
      override async formGroup (opts: FormGroupOptions): Promise<FormGroupResult> {
        this.calls.push(opts)
        return await new Promise((resolve, reject) => { opts.signal?.addEventListener('abort', () => { reject(opts.signal?.reason) }, { once: true }) })
      }
    }
    const announced = new Set<number>()
    const listeners = new Set<() => void>()
    const announce = (round: number): void => { announced.add(round); for (const l of listeners) l() }
    // As NetworkState.waitForNewer(round - 1): true once a state of `round` or later is announced.
    const completedElsewhere = async (round: number, until: AbortSignal): Promise<boolean> => await new Promise(resolve => {
      const check = (): void => { if ([...announced].some(r => r >= round)) { listeners.delete(check); resolve(true) } }
      listeners.add(check)
      until.addEventListener('abort', () => { listeners.delete(check); resolve(false) }, { once: true })
      check()
    })
    const matchmaking = new WaitingMatchmaking(['peer-a', 'peer-b'])
    const codec = roundingCodec()
    const averager = new AllReduceAverager(
      { matchmaking, encoder: updateEncoder(codec), allReduce: new InMemoryGroup().member('peer-a'), logger: silentLogger() },
      { job: 'job', completedElsewhere }
    )
    const pending = averager.average(5, { pseudoGradient: new Float32Array(4), samples: 1, loss: 0 }, signal)
    let settled = false
    pending.catch(() => {}).finally(() => { settled = true })
    announce(4) // an older round: not a reason to give up
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(settled, false, 'still waiting for round 5\'s group after an announcement of round 4')
    announce(5)
    await assert.rejects(pending, (err: Error) => err instanceof RoundFailedError && /completed it without this peer/.test(err.message))
    assert.equal(matchmaking.calls[0].signal?.aborted, true, 'the wait for the group was aborted')
    assert.equal(codec.encodes, 0, 'nothing was encoded for a round that is over')
    assert.equal(listeners.size, 0, 'the watch on announcements ended with the round')
    assert.equal(signal.aborted, false, 'the job\'s own signal is untouched')
  })
})

describe('AllReduceAverager: update commitments and the own-payloads hook', () => {
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

  it('gives each contribution its listed digests, hands this peer its own payloads, and logs (never fails) a misreported own digest', async () => {
    const net = new InMemoryGroup()
    // The reducers list true digests, except peer-b's in part 1 (a misreported input, which the audits deal with).
    net.listDigest = (peer, part, payload) => peer === 'peer-b' && part === 1 ? 'f'.repeat(64) : sha(payload)
    const logged: string[] = []
    const own = new Map<string, Uint8Array[]>()
    const ids = ['peer-a', 'peer-b']
    const averagers = ids.map(id => new AllReduceAverager(
      { matchmaking: new ScriptedMatchmaking(ids), encoder: updateEncoder(roundingCodec(), { pool: new BufferPool() }), allReduce: net.member(id), logger: { info: (obj: object) => { logged.push(`${id}:${String((obj as { event?: string }).event)}`) } } },
      { job: 'job', self: id, onOwnPayloads: (_round, payloads) => { own.set(id, payloads.map(p => p.slice())) } }
    ))
    const results = await Promise.all(averagers.map(async (a, i) => await a.average(0, { pseudoGradient: Float32Array.from([[1, 2, 3, 4], [5, 6, 7, 8]][i]), samples: 1 + i, loss: 0 }, signal)))
    for (const r of results) {
      assert.deepEqual(r.updates, { codec: 'int8', parts: [2, 2] })
      assert.deepEqual(r.contributions.map(c => c.update), [own.get('peer-a')!.map(sha), [sha(own.get('peer-b')![0]), 'f'.repeat(64)]])
    }
    assert.deepEqual(own.get('peer-a')!.map(p => [...roundingCodec().decode(p)]), [[1, 2], [3, 4]], 'the hook gets exactly what was sent')
    assert.ok(logged.includes('peer-b:update-digest-mismatch') && !logged.includes('peer-a:update-digest-mismatch'), logged.join(', '))
  })

  it('a hook that throws does not fail the round', async () => {
    const net = new InMemoryGroup()
    net.listDigest = (_peer, _part, payload) => sha(payload)
    const ids = ['peer-a', 'peer-b']
    const averagers = ids.map(id => new AllReduceAverager(
      { matchmaking: new ScriptedMatchmaking(ids), encoder: updateEncoder(roundingCodec()), allReduce: net.member(id), logger: silentLogger() },
      { job: 'job', onOwnPayloads: () => { throw new Error('disk full') } }
    ))
    const results = await Promise.all(averagers.map(async a => await a.average(0, { pseudoGradient: Float32Array.from([1, 2, 3, 4]), samples: 1, loss: 0 }, signal)))
    assert.deepEqual(results.map(r => r.contributions.every(c => c.update?.length === 2)), [true, true])
  })
})

describe('updateCommitments (each contributor\'s part digests from the reducers\' listings)', () => {
  const part = (index: number, elements: number, contributors: PartReport['contributors']): PartReport =>
    ({ index, offset: 0, elements, reducer: 'r', reducedBy: 'r', standIn: false, contributors, localOnly: false })
  const d = (c: string): string => c.repeat(64)

  it('lists a peer\'s digests in part order when every part lists one for it, and no update otherwise', () => {
    const parts = [
      part(1, 5, [{ peer: 'a', weight: 1, digest: d('c') }, { peer: 'b', weight: 2, digest: d('d') }]),
      part(0, 6, [{ peer: 'a', weight: 1, digest: d('a') }, { peer: 'b', weight: 2 }, { peer: 'c', weight: 3, digest: d('e') }])
    ]
    const out = updateCommitments(parts)
    assert.deepEqual(out.parts, [6, 5], 'element counts in part order')
    assert.deepEqual([...out.update], [['a', [d('a'), d('c')]]], 'b lacks a digest in part 0, c is missing from part 1')
    assert.deepEqual(updateCommitments([]), { update: new Map(), parts: [] })
  })
})

describe('MatchWindow', () => {
  it('waits up to the cap until training was measured twice, then a multiple of its EWMA within floor and cap', () => {
    const w = new MatchWindow({ floorMs: 1_000, capMs: 60_000, fraction: 3 })
    assert.equal(w.windowMs(), 60_000)
    w.observeTrainingTime(100)
    assert.equal(w.windowMs(), 60_000)
    w.observeTrainingTime(100)
    assert.equal(w.windowMs(), 1_000, 'the floor')
    for (let i = 0; i < 50; i++) w.observeTrainingTime(30_000)
    assert.equal(w.windowMs(), 60_000, 'the cap')
    const mid = new MatchWindow({ floorMs: 1_000, capMs: 60_000, fraction: 3 })
    mid.observeTrainingTime(2_000)
    mid.observeTrainingTime(4_000)
    assert.equal(mid.windowMs(), 3 * (0.7 * 2_000 + 0.3 * 4_000))
  })
})
