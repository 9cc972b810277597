/**
 * Peers of one job must meet even when the DHT does not help them: presence announcements through the
 * bootstrap node, and NetworkHealth's repairs of a connection that identify or the routing table dropped.
 */
import assert from 'node:assert/strict'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { DHT_PROTOCOL } from '../../protocol/ids.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'

describe('network: peers of a job meet without the DHT, and a node repairs what libp2p dropped', function () {
  this.timeout(120_000)
  const nodes: PeerNode[] = []
  let boot: PeerNode

  before(async () => {
    boot = await startTestNode('bootstrap')
    nodes.push(boot)
  })
  after(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  const connected = (a: PeerNode, b: PeerNode): boolean => a.libp2p.getConnections().some(c => c.remotePeer.toString() === b.peerId)

  it('two peers of the same job, both connected only to the bootstrap node, dial each other from their presence', async () => {
    const a = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], dhtServer: false })
    const b = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], dhtServer: false })
    const other = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], dhtServer: false })
    nodes.push(a, b, other)
    assert.ok(!connected(a, b), 'the peers start apart')
    other.joinJob('another-job')
    a.joinJob('job-1')
    b.joinJob('job-1')
    await waitFor('a and b connected through presence', () => connected(a, b), 60_000)
    assert.ok(a.presenceDials + b.presenceDials >= 1, 'one of them dialled the other because of its presence')
    // A peer of another job is not dialled.
    assert.ok(!connected(other, a) && !connected(other, b), 'a peer of another job stays apart')
    assert.equal(other.presenceDials, 0)
  })

  it('stops dialling same-job peers from their presence once connected to maxPresenceLinks of them', async () => {
    const a = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], dhtServer: false, maxPresenceLinks: 1 })
    const quiet = await Promise.all([0, 1].map(async () => await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], dhtServer: false, maxPresenceLinks: 0 })))
    nodes.push(a, ...quiet)
    a.joinJob('job-2')
    for (const q of quiet) q.joinJob('job-2')
    await waitFor('a connected to one of the others', () => quiet.some(q => connected(a, q)), 30_000)
    // Both keep announcing (at 3 and 10 s): a hears the second one too, but has its one link already.
    await new Promise(resolve => setTimeout(resolve, 11_000))
    assert.equal(quiet.filter(q => connected(a, q)).length, 1)
    assert.equal(a.presenceDials, 1)
    assert.equal(quiet[0].presenceDials + quiet[1].presenceDials, 0, 'maxPresenceLinks 0 never dials')
  })

  it('re-identifies a connection whose protocols are unknown and refills an emptied DHT routing table', async () => {
    const peer = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], healthIntervalMs: 3_600_000 })
    nodes.push(peer)
    const table = (peer.libp2p.services.dht as unknown as { routingTable: { size: number, remove: (p: unknown) => Promise<void> } }).routingTable
    await waitFor('the bootstrap node in the routing table', () => table.size > 0, 30_000)
    const bootId = boot.libp2p.peerId

    // What a timed-out identify and a missed liveness ping leave behind: no protocols, an empty table.
    await peer.libp2p.peerStore.patch(bootId, { protocols: [] })
    await table.remove(bootId)
    assert.equal(table.size, 0)
    assert.deepEqual(await peer.health.snapshot(), { connections: 1, relayedOnly: 0, unidentified: 1, dhtTable: 0 })

    const done = await peer.health.check()
    assert.equal(done.identified, 1, 'identify ran again on the bootstrap connection')
    assert.ok((await peer.libp2p.peerStore.get(bootId)).protocols.includes(DHT_PROTOCOL), 'the protocols are known again')
    assert.equal(done.offered, 1, 'the bootstrap node was offered to the empty routing table')
    assert.equal(table.size, 1)
    assert.deepEqual(peer.health.repairs, { identify: 1, dhtTable: 1, gossipLink: 0 })
    // A healthy node needs nothing.
    assert.deepEqual(await peer.health.check(), { identified: 0, offered: 0, reconnected: 0 })
  })

  it('reconnects to a peer that gossipsub has had no outbound stream to for two checks', async () => {
    const peer = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]], healthIntervalMs: 3_600_000 })
    nodes.push(peer)
    const outbound = (peer.libp2p.services.pubsub as unknown as { streamsOutbound: Map<string, { rawStream: { abort: (err: Error) => void } }> }).streamsOutbound
    await waitFor('an outbound gossip stream to the bootstrap node', () => outbound.has(boot.peerId), 30_000)
    // What a failed stream open leaves: gossipsub knows the peer but has no stream to send it anything.
    outbound.get(boot.peerId)!.rawStream.abort(new Error('test: the stream failed'))
    await waitFor('the stream gone', () => !outbound.has(boot.peerId), 10_000)
    const before = peer.libp2p.getConnections(boot.libp2p.peerId).map(c => c.id)

    assert.equal((await peer.health.check()).reconnected, 0, 'one check without a stream may be a stream still opening')
    assert.equal((await peer.health.check()).reconnected, 1, 'the second check reconnects')
    await waitFor('a new outbound gossip stream', () => outbound.has(boot.peerId), 30_000)
    const after = peer.libp2p.getConnections(boot.libp2p.peerId).map(c => c.id)
    assert.ok(after.length > 0 && after.every(id => !before.includes(id)), 'a new connection replaced the old one')
    // Gossip flows again: the bootstrap node hears this peer's presence.
    await waitFor('the bootstrap node sees the peer subscribed to the peers topic', () =>
      boot.libp2p.services.pubsub.getSubscribers('/nearai/peers/1').some(p => p.toString() === peer.peerId), 30_000)
    assert.equal(peer.health.repairs.gossipLink, 1)
  })
})
