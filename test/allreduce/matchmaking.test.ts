import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import type { PeerId } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Matchmaking, type ReadyGossip, type FormGroupResult } from '../../node/allreduce/matchmaking.ts'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import type { Clock } from '../../node/time/clock.ts'
import { encodeReadyMessage, jobReadyTopic, parseReadyMessage } from '../../protocol/allreduce.ts'
import { encodeGossip, parseGossip, type GossipMessage } from '../../protocol/gossip.ts'
import { TypedGossip } from '../../node/network/gossip.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { identityCodec, maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, waitFor, weightedMeanReference } from './helpers.ts'
import { AllReduceAverager } from '../../node/round/allreduce-averager.ts'
import { MatchWindow } from '../../node/round/match-window.ts'
import { RoundFailedError } from '../../node/round/round-loop.ts'
import { plainEncoder } from '../../node/compression/update-encoder.ts'

/** A clock whose time moves only when the test says so. */
class ManualClock implements Clock {
  private t = 0
  private seq = 0
  private readonly timers = new Map<number, { at: number, fn: () => void }>()
  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn }); return id }
  clearTimeout = (h: unknown): void => { this.timers.delete(h as number) }
  /** Fires due timers in time order, letting promises settle in between, until `until`. */
  async runUntil (until: number): Promise<void> {
    for (;;) {
      await settle()
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (next == null || next[1].at > until) { this.t = Math.max(this.t, until); await settle(); return }
      this.t = Math.max(this.t, next[1].at)
      this.timers.delete(next[0])
      next[1].fn()
    }
  }
}

async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
}

/**
 * An in-memory typed gossip: every subscriber of a topic gets every message, unless the test drops it. Messages
 * go through the protocol's encoder and parser on the way, as they do through TypedGossip's validator.
 */
class FakeBus {
  readonly endpoints: FakeGossip[] = []
  drop: (from: string, to: string, message: GossipMessage) => boolean = () => false
  deliver (from: FakeGossip, topic: string, message: GossipMessage): void {
    const data = encodeGossip(message)
    for (const e of this.endpoints) {
      if (e === from || this.drop(from.peerId.toString(), e.peerId.toString(), message)) continue
      const handlers = [...(e.topics.get(topic) ?? [])]
      if (handlers.length === 0) continue
      const parsed = parseGossip(topic, data, from.peerId.toString())
      queueMicrotask(() => { for (const h of handlers) h(parsed, from.peerId.toString()) })
    }
  }
}

class FakeGossip implements ReadyGossip {
  readonly topics = new Map<string, Set<(message: GossipMessage, from: string) => void>>()
  constructor (readonly bus: FakeBus, readonly peerId: PeerId) { bus.endpoints.push(this) }
  subscribe (topic: string, handler: (message: GossipMessage, from: string) => void): () => void {
    const set = this.topics.get(topic) ?? new Set()
    this.topics.set(topic, set)
    set.add(handler)
    return () => { set.delete(handler) }
  }

  async publish (topic: string, message: GossipMessage): Promise<unknown> { this.bus.deliver(this, topic, message); return 1 }
}

async function peerIds (n: number): Promise<PeerId[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
}

describe('matchmaking', function () {
  this.timeout(60_000)
  const job = 'mnist-mlp'
  const base = { job, round: 3, vectorLength: 1000, codec: 'none', speedBps: 1e7, deadline: 1000 }

  it('peers that announce before the deadline form the same ordered group; a late announcer is left out', async () => {
    const clock = new ManualClock()
    const bus = new FakeBus()
    const ids = await peerIds(4)
    const mms = ids.map(id => new Matchmaking({ gossip: new FakeGossip(bus, id), peerId: id.toString(), clock }, { confirmWindowMs: 500, republishMs: 200 }))
    mms.forEach(m => { m.join(job) })
    const onTime = mms.slice(0, 3).map(async m => await m.formGroup(base))
    await clock.runUntil(1200)
    const late = mms[3].formGroup(base) // starts after the others' deadline
    await clock.runUntil(5000)
    const results = await Promise.all(onTime)
    const expected = ids.slice(0, 3).map(String).sort()
    for (const r of results) {
      assert.ok(r.group != null)
      assert.deepEqual(r.group.members, expected)
      assert.equal(r.group.hash, results[0].group?.hash)
      assert.deepEqual(r.group.speedBps, [1e7, 1e7, 1e7])
    }
    const lateResult = await late
    assert.equal(lateResult.group, null)
    mms.forEach(m => { m.stop() })
  })

  it('closes as soon as every expected peer is ready, and waits out the deadline only for a missing one', async () => {
    const clock = new ManualClock()
    const bus = new FakeBus()
    const ids = await peerIds(3)
    const all = ids.map(String)
    const mms = ids.map(id => new Matchmaking({ gossip: new FakeGossip(bus, id), peerId: id.toString(), clock }, { confirmWindowMs: 500, republishMs: 200 }))
    mms.forEach(m => { m.join(job) })
    // All three expected and all ready at t=0: the group forms long before the 10 s deadline.
    const quick = mms.map(async m => await m.formGroup({ ...base, deadline: 10_000, expected: all, minWaitMs: 100 }))
    await clock.runUntil(2000)
    const formed = await Promise.race([Promise.all(quick), new Promise<null>(resolve => { setTimeout(() => { resolve(null) }, 50) })])
    assert.ok(formed != null, 'the group did not form before the deadline although every expected peer was ready')
    for (const r of formed) assert.deepEqual(r.group?.members, [...all].sort())
    // Round 4: the third peer never comes (crashed): the other two wait until the deadline, then go on without it.
    const waiting = mms.slice(0, 2).map(async m => await m.formGroup({ ...base, round: 4, deadline: clock.now() + 3000, expected: all, minWaitMs: 100 }))
    let settled = false
    void Promise.all(waiting).then(() => { settled = true })
    await clock.runUntil(clock.now() + 2500)
    assert.equal(settled, false, 'closed before the deadline while an expected peer was missing')
    await clock.runUntil(clock.now() + 5000)
    const late = await Promise.all(waiting)
    for (const r of late) assert.deepEqual(r.group?.members, all.slice(0, 2).sort())
    mms.forEach(m => { m.stop() })
  })

  it('tells the highest try of a round heard, and keeps accepting new tries (the oldest are forgotten)', async () => {
    const clock = new ManualClock()
    const bus = new FakeBus()
    const ids = await peerIds(2)
    const [a, b] = ids.map(id => new Matchmaking({ gossip: new FakeGossip(bus, id), peerId: id.toString(), clock }, { confirmWindowMs: 100, republishMs: 50 }))
    a.join(job); b.join(job)
    assert.equal(b.highestAttempt(job, 3), -1)
    // A retries round 3 alone, 20 times: B hears every try, and A is never refused a new one.
    for (let attempt = 0; attempt < 20; attempt++) {
      const pending = a.formGroup({ ...base, attempt, deadline: clock.now() + 100 })
      await clock.runUntil(clock.now() + 1000)
      assert.deepEqual((await pending).group?.members, [ids[0].toString()])
    }
    assert.equal(b.highestAttempt(job, 3), 19)
    assert.equal(b.highestAttempt(job, 4), -1)
    a.stop(); b.stop()
  })

  it('views that differ converge on their intersection; the peer only some saw drops out', async () => {
    const clock = new ManualClock()
    const bus = new FakeBus()
    const ids = await peerIds(4)
    const [a, b, c, l] = ids.map(String)
    // L's announcement reaches A and C but never B.
    bus.drop = (from, to, message) => from === l && to === b && message.type === 'allreduce-ready'
    const mms = ids.map(id => new Matchmaking({ gossip: new FakeGossip(bus, id), peerId: id.toString(), clock }, { confirmWindowMs: 500, republishMs: 200 }))
    mms.forEach(m => { m.join(job) })
    const pending = mms.map(async m => await m.formGroup(base))
    await clock.runUntil(5000)
    const [ra, rb, rc, rl] = await Promise.all(pending) as FormGroupResult[]
    assert.deepEqual(ra.view, [a, b, c, l].sort())
    assert.deepEqual(rb.view, [a, b, c].sort())
    for (const r of [ra, rb, rc]) assert.deepEqual(r.group?.members, [a, b, c].sort())
    assert.equal(ra.group?.hash, rb.group?.hash)
    assert.equal(rl.group, null)
    assert.deepEqual(ra.excluded, [l])
    mms.forEach(m => { m.stop() })
  })

  it('announcements with another vector length or codec are not grouped', async () => {
    const clock = new ManualClock()
    const bus = new FakeBus()
    const ids = await peerIds(3)
    const mms = ids.map(id => new Matchmaking({ gossip: new FakeGossip(bus, id), peerId: id.toString(), clock }, { confirmWindowMs: 300, republishMs: 200 }))
    const pending = [
      mms[0].formGroup(base),
      mms[1].formGroup(base),
      mms[2].formGroup({ ...base, vectorLength: 999 })
    ]
    await clock.runUntil(5000)
    const [r0, r1, r2] = await Promise.all(pending)
    assert.deepEqual(r0.group?.members, ids.slice(0, 2).map(String).sort())
    assert.deepEqual(r1.group?.members, r0.group?.members)
    assert.deepEqual(r2.group?.members, [ids[2].toString()])
  })

  it('ready messages are validated: schema, topic, author', async () => {
    const [p, q] = (await peerIds(2)).map(String)
    const topic = jobReadyTopic(job)
    assert.equal(topic, '/nearai/job/mnist-mlp/ready/1')
    const ready = { v: 1 as const, type: 'allreduce-ready' as const, job, round: 1, peerId: p, vectorLength: 10, codec: 'none', speedBps: 5, at: 0 }
    // A message without `attempt` (a first try) parses as attempt 0.
    assert.deepEqual(parseReadyMessage(topic, encodeReadyMessage(ready), p), { ...ready, attempt: 0 })
    assert.equal((parseReadyMessage(topic, encodeReadyMessage({ ...ready, attempt: 2 }), p) as { attempt: number }).attempt, 2)
    assert.throws(() => parseReadyMessage(topic, encodeReadyMessage({ ...ready, attempt: -1 }), p), InvalidMessageError)
    assert.throws(() => parseReadyMessage(topic, encodeReadyMessage(ready), q), InvalidMessageError) // forged author
    assert.throws(() => parseReadyMessage(jobReadyTopic('other'), encodeReadyMessage(ready), p), InvalidMessageError)
    assert.throws(() => parseReadyMessage(topic, encodeReadyMessage({ ...ready, vectorLength: -1 }), p), InvalidMessageError)
    assert.throws(() => parseReadyMessage(topic, new Uint8Array(40_000).fill(32), p), InvalidMessageError)
    const confirm = { v: 1 as const, type: 'allreduce-group' as const, job, round: 1, peerId: p, members: [q], at: 0 }
    assert.throws(() => parseReadyMessage(topic, encodeReadyMessage(confirm), p), InvalidMessageError) // confirms a group without itself
  })
})

describe('matchmaking over gossipsub, then the all-reduce', function () {
  this.timeout(90_000)
  let nodes: Array<Libp2p<any>> = []
  after(async () => { await stopAll(nodes) })

  it('3 peers form one group over real gossip and average (the production AllReduceAverager); a late peer is not in it', async () => {
    nodes = await startConnectedNodes(4, true)
    const job = 'gossip-job'
    const mms = nodes.map(n => new Matchmaking({ gossip: new TypedGossip(n.services.pubsub, silentLogger()), peerId: n.peerId.toString() }, { confirmWindowMs: 1500, republishMs: 200 }))
    mms.forEach(m => { m.join(job) })
    const services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 1000 } }))
    await Promise.all(services.map(async s => { await s.start() }))
    const topic = jobReadyTopic(job)
    await waitFor('ready-topic subscriptions', () => nodes.every(n => n.services.pubsub.getSubscribers(topic).length === 3))
    const length = 5000
    const deadline = Date.now() + 1500
    // A job's first round waits up to the window's cap: 1.5 s here.
    const averagers = nodes.map((_n, i) => new AllReduceAverager(
      { matchmaking: mms[i], encoder: plainEncoder(identityCodec), allReduce: services[i], logger: silentLogger() },
      { job, minGroupSize: 2, window: new MatchWindow({ capMs: 1500 }) }
    ))
    const signal = new AbortController().signal
    const vectors = nodes.map((_n, i) => randomVector(length, i))
    const onTime = averagers.slice(0, 3).map(async (a, i) => await a.average(0, { pseudoGradient: vectors[i], samples: 10 * (i + 1), loss: 0 }, signal))
    await new Promise(resolve => setTimeout(resolve, deadline - Date.now() + 300))
    await assert.rejects(averagers[3].average(0, { pseudoGradient: vectors[3], samples: 1, loss: 0 }, signal), RoundFailedError)
    const results = await Promise.all(onTime)
    const expected = nodes.slice(0, 3).map((n, i) => ({ peer: n.peerId.toString(), samples: 10 * (i + 1) })).sort((x, y) => (x.peer < y.peer ? -1 : 1))
    const reference = weightedMeanReference(vectors.slice(0, 3), [10, 20, 30])
    for (const r of results) {
      assert.deepEqual(r.contributions.map(c => ({ peer: c.peer, samples: c.samples })), expected)
      // Each contribution commits to its update, one digest a part (audits are on): the same at every member.
      assert.ok(r.contributions.every(c => c.update?.length === 3), JSON.stringify(r.contributions))
      assert.deepEqual(r.contributions, results[0].contributions)
      assert.deepEqual(r.dropped, [])
      assert.equal(sameBits(r.average, results[0].average), true)
      assert.ok(maxAbsDiff(r.average, reference) < 1e-6)
    }
    await Promise.all(services.map(async s => { await s.stop() }))
    mms.forEach(m => { m.stop() })
  })
})
