import assert from 'node:assert/strict'
import { RoundAnnouncements } from '../../node/validator/round-announcements.ts'
import type { RoundAnnouncement } from '../../protocol/gossip.ts'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const peer = (i: number): string => '12D3KooW' + B58[i % 58] + 'q'.repeat(43)
const H1 = '1'.repeat(64)
const H2 = '2'.repeat(64)

function announce (from: number, round: number, weightsSha256: string, checkpointCid?: string, job = 'job-a'): RoundAnnouncement {
  return { v: 1, type: 'round-result', job, round, peerId: peer(from), weightsSha256, ...(checkpointCid != null ? { checkpointCid } : {}), contributions: [], at: 0 } as RoundAnnouncement
}

describe('validator: what the rounds topic says about each round', () => {
  it('picks the hash most announcers hold and orders its CIDs by votes, then by string, so validators pick alike', () => {
    const a = new RoundAnnouncements('job-a')
    const heard: number[] = []
    a.onAnnouncement(r => heard.push(r))
    a.record(announce(1, 4, H1, 'bafyzzz'))
    a.record(announce(2, 4, H1, 'bafyaaa'))
    a.record(announce(3, 4, H1, 'bafyzzz'))
    a.record(announce(4, 4, H2, 'bafyevil'))
    a.record(announce(5, 4, H2, 'bafyevil', 'job-b')) // another job: ignored
    assert.deepEqual(a.get(4), { round: 4, weightsSha256: H1, peers: 3, cids: ['bafyzzz', 'bafyaaa'] })
    assert.deepEqual(heard, [4, 4, 4, 4])
    assert.equal(a.get(5), undefined)
  })

  it('counts one vote a peer: a later announcement replaces the earlier one', () => {
    const a = new RoundAnnouncements('job-a')
    a.record(announce(1, 2, H1, 'bafyone'))
    a.record(announce(2, 2, H2, 'bafytwo'))
    a.record(announce(3, 2, H2, 'bafytwo'))
    assert.equal(a.get(2)?.weightsSha256, H2)
    a.record(announce(2, 2, H1, 'bafyone'))
    a.record(announce(3, 2, H1, 'bafyone'))
    assert.deepEqual(a.get(2), { round: 2, weightsSha256: H1, peers: 3, cids: ['bafyone'] })
  })

  it('lists the rounds announced after a round, nearest first (where a late validator follows parent links from)', () => {
    const a = new RoundAnnouncements('job-a')
    for (const r of [7, 3, 5]) a.record(announce(1, r, H1, `bafy${r}`))
    assert.deepEqual(a.later(3).map(r => r.round), [5, 7])
    assert.deepEqual(a.later(7), [])
  })
})
