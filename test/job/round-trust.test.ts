/**
 * The round-trust rules with fakes (ARCHITECTURE.md, "Round trust"): the catch-up quorum rule (round-trust.ts),
 * the round-advance and membership rules of the ready topic (allreduce/admission.ts, job/membership.ts), and
 * matchmaking under them (a huge round, a flood of attempts, a newcomer that takes a place and gives nothing).
 */
import assert from 'node:assert/strict'
import { quorumSize, RoundBook, type HeldRound } from '../../node/job/round-trust.ts'
import { JobMembership } from '../../node/job/membership.ts'
import { admitNewcomers, judgeReadyRound, maxNewcomers, type RoundView } from '../../node/allreduce/admission.ts'
import { Matchmaking, type ReadyGossip } from '../../node/allreduce/matchmaking.ts'
import { GOSSIP_VERSION } from '../../protocol/ids.ts'
import { READY_TOPIC_VERSION, type ReadyTopicMessage } from '../../protocol/allreduce.ts'
import type { GossipMessage, RoundAnnouncement } from '../../protocol/gossip.ts'
import type { Verdict } from '../../node/allreduce/admission.ts'

const H = (n: number): string => n.toString(16).padStart(64, '0')
const CIDS = ['bafkreiaaaa', 'bafkreibbbb', 'bafkreicccc']
const JOB = 'trust-job'

function announcement (peer: string, round: number, hash: string, cid: string, contributors: string[]): RoundAnnouncement {
  return { v: GOSSIP_VERSION, type: 'round-result', job: JOB, round, peerId: peer, weightsSha256: hash, checkpointCid: cid, contributions: contributors.map(p => ({ peer: p, samples: 1 })), at: 0 }
}

describe('round trust: the catch-up quorum rule', () => {
  it('needs f + 1 vouchers among n others, f = ⌊(n − 1) / 3⌋', () => {
    assert.deepEqual([1, 2, 3, 4, 6, 7, 10].map(quorumSize), [1, 1, 1, 2, 2, 3, 4])
    assert.throws(() => quorumSize(0), RangeError)
  })

  const members = ['A', 'B', 'C', 'D', 'E']
  const held = (round: number, hash?: string, m = members): HeldRound => ({ round, weightsSha256: hash, members: new Set(m) })

  it('one announcer outside the held round\'s members never makes a state trusted, whatever its round', () => {
    const book = new RoundBook('A')
    book.record(announcement('X', 5, H(9), CIDS[0], ['X']))
    book.record(announcement('X', 9_007_199_254_740_000, H(9), CIDS[0], ['X']))
    assert.equal(book.trusted(held(3, H(3))), undefined)
  })

  it('a quorum of the held round\'s members makes a newer state trusted; fewer do not', () => {
    const book = new RoundBook('A') // 4 others: quorum 2
    book.record(announcement('B', 4, H(4), CIDS[0], members))
    assert.equal(book.trusted(held(3, H(3))), undefined, 'one of four others is not enough')
    book.record(announcement('X', 4, H(4), CIDS[0], members))
    assert.equal(book.trusted(held(3, H(3))), undefined, 'a non-member does not count')
    book.record(announcement('C', 4, H(4), CIDS[0], members))
    const t = book.trusted(held(3, H(3)))
    assert.equal(t?.round, 4)
    assert.equal(t?.weightsSha256, H(4))
    assert.equal(t?.cid, CIDS[0])
    assert.deepEqual(t?.vouchers.sort(), ['B', 'C'])
  })

  it('vouchers must agree on hash and CID', () => {
    const book = new RoundBook('A')
    book.record(announcement('B', 4, H(4), CIDS[0], members))
    book.record(announcement('C', 4, H(4), CIDS[1], members))
    assert.equal(book.trusted(held(3, H(3))), undefined)
  })

  it('walks round by round: the vouched state\'s contributors vouch for the next', () => {
    const book = new RoundBook('A')
    // F is a newcomer of round 4: not a member of round 3, so alone it vouches for nothing from round 3...
    book.record(announcement('F', 5, H(5), CIDS[1], ['C', 'F']))
    assert.equal(book.trusted(held(3, H(3))), undefined)
    // ...until round 4 (contributors B, C, F) is vouched for by round 3's members B and C: F then counts for round 5.
    book.record(announcement('B', 4, H(4), CIDS[0], ['B', 'C', 'F']))
    book.record(announcement('C', 4, H(4), CIDS[0], ['B', 'C', 'F']))
    const t = book.trusted(held(3, H(3)))
    assert.equal(t?.round, 5)
    assert.deepEqual(t?.vouchers, ['F'])
  })

  it('a fork of the held round is adopted only when more participants vouch for it than hold ours', () => {
    const three = ['A', 'B', 'C']
    const book = new RoundBook('A')
    book.record(announcement('B', 4, H(40), CIDS[0], three))
    assert.equal(book.trusted(held(4, H(41), three)), undefined, 'one against one (this peer)')
    book.record(announcement('C', 4, H(40), CIDS[0], three))
    assert.equal(book.trusted(held(4, H(41), three))?.weightsSha256, H(40), 'two against one')
    assert.equal(book.trusted(held(4, H(40), three)), undefined, 'the state this peer holds is not "newer"')
  })

  it('two states of one round vouched for as strongly: neither is adopted', () => {
    const four = ['A', 'B', 'C', 'D'] // 3 others: quorum 1
    const book = new RoundBook('A')
    book.record(announcement('B', 6, H(6), CIDS[0], four))
    book.record(announcement('C', 6, H(7), CIDS[1], four))
    assert.equal(book.trusted(held(5, H(5), four)), undefined)
  })

  it('a peer that knows no participants (initial state) needs max(2, minPeers) announcers that took part', () => {
    const book = new RoundBook('A', 3)
    book.record(announcement('X', 7, H(70), CIDS[0], ['X']))
    book.record(announcement('B', 7, H(7), CIDS[1], ['B', 'C', 'D']))
    book.record(announcement('C', 7, H(7), CIDS[1], ['B', 'C', 'D']))
    const initial: HeldRound = { round: -1, members: new Set() }
    assert.equal(book.trusted(initial), undefined, 'two of the minimum three')
    book.record(announcement('D', 7, H(7), CIDS[1], ['B', 'C', 'D']))
    assert.equal(book.trusted(initial)?.weightsSha256, H(7))
    // An announcer that does not list itself among the contributors does not count.
    const other = new RoundBook('A', 2)
    other.record(announcement('Y', 2, H(2), CIDS[0], ['B', 'C']))
    other.record(announcement('Z', 2, H(2), CIDS[0], ['B', 'C']))
    assert.equal(other.trusted(initial), undefined)
  })

  it('keeps a bounded number of announcements per peer', () => {
    const book = new RoundBook('A')
    for (let r = 0; r < 100; r++) book.record(announcement('B', r, H(r), CIDS[0], members))
    book.record(announcement('C', 99, H(99), CIDS[0], members))
    assert.equal(book.trusted(held(90, H(90)))?.round, 99)
    assert.equal(book.trusted(held(0, H(0)))?.round, 99, 'old rounds were forgotten, the newest vouched one is still found')
  })
})

describe('round trust: the round-advance and membership rules of the ready topic', () => {
  const view = (heldRound: number, members: string[], barred: string[] = []): RoundView => ({ heldRound, rounds: 10, members: new Set(members), barred: (p) => barred.includes(p) })

  it('accepts only the held round\'s next two rounds; rejects rounds past the job and unexplained rounds from outsiders', () => {
    const v = view(3, ['A', 'B', 'C'])
    assert.equal(judgeReadyRound(4, 'B', v).verdict, 'accept')
    assert.equal(judgeReadyRound(5, 'B', v).verdict, 'accept')
    assert.equal(judgeReadyRound(3, 'B', v).verdict, 'ignore', 'stale')
    assert.equal(judgeReadyRound(0, 'X', v).verdict, 'ignore', 'stale, from anyone')
    assert.equal(judgeReadyRound(8, 'B', v).verdict, 'ignore', 'a member ahead: this peer may be behind')
    assert.equal(judgeReadyRound(8, 'X', v).verdict, 'penalize', 'an outsider ahead: its author is charged (a forwarder that knows less is not)')
    assert.equal(judgeReadyRound(10, 'B', v).verdict, 'reject', 'past the job\'s last round, even from a member')
    assert.equal(judgeReadyRound(2 ** 53 - 1, 'X', v).verdict, 'reject')
    assert.equal(judgeReadyRound(4, 'X', v).verdict, 'accept', 'a newcomer for the next round')
    assert.equal(judgeReadyRound(4, 'X', view(3, ['A', 'B', 'C'], ['X'])).verdict, 'ignore', 'a barred newcomer: dropped, not penalised (a bar judges timing, which honest peers can fail)')
    assert.equal(judgeReadyRound(7, 'X', view(-1, [])).verdict, 'ignore', 'membership open (initial state): ahead is not a lie yet')
    assert.equal(judgeReadyRound(12, 'X', view(-1, [])).verdict, 'reject')
  })

  it('admits a third of the members as newcomers, the same ones at every member, in an order no peer chooses', () => {
    assert.deepEqual([0, 2, 3, 6, 9].map(maxNewcomers), [1, 1, 1, 2, 3])
    const candidates = ['N1', 'N2', 'N3', 'N4']
    const a = admitNewcomers(JOB, 5, candidates, 2)
    assert.equal(a.length, 2)
    assert.deepEqual(admitNewcomers(JOB, 5, [...candidates].reverse(), 2), a, 'independent of the order heard')
    const orders = new Set(Array.from({ length: 8 }, (_, r) => admitNewcomers(JOB, r, candidates, 4).join()))
    assert.ok(orders.size > 1, 'the order changes with the round')
  })

  it('a member left out of one round stays a member for the next (it rejoins without admission), not after two; catch-up counts the held round only', () => {
    const m = new JobMembership(JOB, 100)
    m.hold(3, H(3), ['A', 'B', 'C'])
    m.hold(4, H(4), ['A', 'B'])
    assert.equal(m.isMember('C'), true)
    assert.ok(m.view(JOB)!.members.has('C'))
    assert.deepEqual([...m.heldRound().members].sort(), ['A', 'B'], 'the quorum is of round 4\'s participants')
    m.bar(JOB, 'C', 5)
    assert.equal(m.barred('C'), false, 'a recent member is not barred as a newcomer')
    m.hold(5, H(5), ['A', 'B'])
    assert.equal(m.isMember('C'), false, 'left out of two rounds: a newcomer again')
    m.hold(7, H(7), ['A', 'B', 'D'])
    assert.equal(m.isMember('B'), true)
    m.hold(9, H(9), ['A', 'B'])
    assert.equal(m.isMember('D'), false, 'after a jump (adopted round 9 from 7) only the held round counts')
  })

  it('bars a newcomer that took a place and gave nothing for 2, then 4 rounds; members are never barred', () => {
    const m = new JobMembership(JOB, 100)
    m.hold(3, H(3), ['A', 'B', 'C'])
    m.bar(JOB, 'X', 4)
    assert.equal(m.barred('X'), true)
    m.hold(6, H(6), ['A', 'B', 'C'])
    assert.equal(m.barred('X'), false, 'round 7 is past the bar (rounds 4-6)')
    m.bar(JOB, 'X', 7)
    m.hold(10, H(10), ['A', 'B', 'C'])
    assert.equal(m.barred('X'), true, 'second strike: rounds 7-11')
    m.bar(JOB, 'A', 11)
    assert.equal(m.barred('A'), false)
    m.hush(JOB, 'Y', 11)
    assert.equal(m.quiet('Y'), true, 'expected and silent: not waited for')
    assert.equal(m.barred('Y'), false, '...but still admitted when it announces')
    assert.deepEqual(m.participants(['A', 'B', 'X', 'Y'], 'C'), ['A', 'B', 'C'], 'shards and expectations: members only')
  })
})

/** An in-memory gossip that applies each subscriber's admission as TypedGossip does, and counts what cost each sender score. */
class Bus {
  readonly subs: Array<{ peer: string, handler: (m: GossipMessage, from: string) => void, admit?: (m: GossipMessage, from: string) => Verdict }> = []
  readonly rejected = new Map<string, number>()
  gossip (peer: string): ReadyGossip {
    return {
      subscribe: (_topic, handler, admit) => { const s = { peer, handler, admit }; this.subs.push(s); return () => { this.subs.splice(this.subs.indexOf(s), 1) } },
      publish: async (_topic, message) => { this.send(peer, message); return 1 }
    }
  }

  send (from: string, message: GossipMessage): void {
    for (const s of this.subs) {
      if (s.peer === from) continue
      const verdict = s.admit?.(message, from) ?? 'accept'
      if (verdict === 'reject' || verdict === 'penalize') this.rejected.set(from, (this.rejected.get(from) ?? 0) + 1)
      if (verdict === 'accept') setImmediate(() => { s.handler(message, from) })
    }
  }
}

function ready (peer: string, round: number, attempt = 0): ReadyTopicMessage {
  return { v: READY_TOPIC_VERSION, type: 'allreduce-ready', job: JOB, round, attempt, peerId: peer, vectorLength: 8, codec: 'none', speedBps: 1e6, at: 0 }
}

describe('round trust: matchmaking under the rules', function () {
  this.timeout(20_000)
  const peers = ['A', 'B', 'C']

  function setup (): { bus: Bus, mms: Matchmaking[], memberships: JobMembership[] } {
    const bus = new Bus()
    const memberships = peers.map(() => { const m = new JobMembership(JOB, 10); m.hold(2, H(2), peers); return m })
    const mms = peers.map((p, i) => new Matchmaking({ gossip: bus.gossip(p), peerId: p, policy: memberships[i] }, { confirmWindowMs: 300, republishMs: 50 }))
    for (const mm of mms) mm.join(JOB)
    return { bus, mms, memberships }
  }

  const form = async (mms: Matchmaking[], attempt = 0): Promise<Array<readonly string[] | undefined>> => await Promise.all(mms.map(async mm => (await mm.formGroup({ job: JOB, round: 3, vectorLength: 8, codec: 'none', speedBps: 1e6, deadline: Date.now() + 1500, expected: [...peers, 'X', 'Y'], minWaitMs: 50, attempt })).group?.members))

  it('a ready message for a huge round, or past the job, is rejected (costing its sender) and the round forms; a newcomer active but silent in the round is waited for once, one never heard not at all', async () => {
    const { bus, mms } = setup()
    bus.send('X', ready('X', 2 ** 53 - 1))
    bus.send('X', ready('X', 10))
    bus.send('X', ready('X', 9))
    for (let a = 0; a < 40; a++) bus.send('X', ready('X', 3, 1000 + a)) // a flood of tries of the current round
    assert.equal(bus.rejected.get('X'), 3 * 3, 'every member rejected the three impossible rounds')
    let t = Date.now()
    for (const g of await form(mms)) assert.deepEqual(g, peers)
    const firstMs = Date.now() - t
    // X is live and active (it sent tries of round 3) and never announced attempt 0: waited for until the deadline
    // once, then not; Y is live (subscribed) and never sent anything: never waited for.
    t = Date.now()
    for (const g of await form(mms, 1)) assert.deepEqual(g, peers)
    assert.ok(firstMs >= 1400 && Date.now() - t < 1000, `waited ${firstMs} ms for the silent newcomer, then ${Date.now() - t} ms`)
  })

  it('a newcomer that takes a place and never confirms costs one round its confirmation wait, then is barred', async () => {
    const { bus, mms, memberships } = setup()
    const flood = setInterval(() => { bus.send('X', ready('X', 3)); bus.send('X', ready('X', 3, 1)) }, 20)
    try {
      let t = Date.now()
      const first = await form(mms)
      const firstMs = Date.now() - t
      for (const g of first) assert.deepEqual(g, peers, 'X never confirmed: not in the group')
      for (const m of memberships) assert.equal(m.barred('X'), true)
      t = Date.now()
      const second = await form(mms, 1)
      const secondMs = Date.now() - t
      for (const g of second) assert.deepEqual(g, peers)
      assert.equal(bus.rejected.get('X') ?? 0, 0, 'a bar drops its messages without a penalty')
      assert.ok(secondMs < firstMs, `barred, X no longer holds the round up (${firstMs} ms, then ${secondMs} ms)`)
    } finally {
      clearInterval(flood)
    }
  })
})
