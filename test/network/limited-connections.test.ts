/**
 * Relayed (limited) connections between real nodes on 127.0.0.1: a stream to a peer whose only connection is
 * relayed opens on that connection (libp2p alone re-dials, and fails when the peer has no relay address), and
 * what becomes of a relayed connection between loopback peers that could dial each other: DCUtR runs over it and
 * refuses to upgrade (it exchanges public addresses only, and 127.0.0.1 is not one), so hole punching cannot be
 * shown here; once a direct connection exists, streams take it rather than the relayed one.
 */
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { announcedAddrs, type PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { startNattedPeer } from './nat.ts'

const ECHO = '/nearai-test/echo/1.0.0'

async function echo (libp2p: Libp2p<any>): Promise<void> {
  await libp2p.handle(ECHO, async (stream: Stream) => {
    for await (const chunk of stream) stream.send(chunk)
    await stream.close()
  }, { runOnLimitedConnection: true })
}

async function roundTrip (stream: Stream, text: string): Promise<string> {
  stream.send(new TextEncoder().encode(text))
  await stream.close()
  let out = ''
  for await (const chunk of stream) out += new TextDecoder().decode(chunk.subarray())
  return out
}

describe('relayed (limited) connections', function () {
  this.timeout(60_000)
  const nodes: PeerNode[] = []
  let boot: PeerNode
  let bootAddr: string

  before(async () => {
    boot = await startTestNode('bootstrap')
    nodes.push(boot)
    bootAddr = boot.multiaddrs[0]
  })

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
  })

  it('presence names relay addresses after the direct ones, 16 at most', () => {
    const relay = '/ip4/203.0.113.7/tcp/4010/p2p/12D3KooWRelay/p2p-circuit'
    const direct = Array.from({ length: 15 }, (_, i) => `/ip4/10.0.0.${i + 1}/tcp/4010`)
    assert.deepEqual(announcedAddrs([relay, ...direct.slice(0, 2)]), [...direct.slice(0, 2), relay])
    assert.deepEqual(announcedAddrs([relay, `${relay}2`, ...direct]), [...direct, relay])
    assert.deepEqual(announcedAddrs([relay]), [relay])
  })

  it('a stream to a peer reachable only over a relayed connection opens on that connection, without a new dial', async () => {
    const natted = await startNattedPeer(bootAddr, boot.peerId)
    // A peer with no relay address of its own: the NATed peer cannot dial it, only be dialled by it.
    const direct = await startTestNode('peer', { bootstrap: [bootAddr], relayClient: false })
    nodes.push(natted, direct)
    await echo(direct.libp2p)
    await waitFor('a relay reservation', () => natted.multiaddrs.some(a => a.includes('/p2p-circuit')), 30_000)
    await direct.libp2p.dial(multiaddr(`${bootAddr}/p2p-circuit/p2p/${natted.peerId}`), { signal: AbortSignal.timeout(20_000) })
    await waitFor('the relayed connection at the NATed peer', () => natted.libp2p.getConnections(direct.libp2p.peerId).length === 1)
    const [relayed] = natted.libp2p.getConnections(direct.libp2p.peerId)
    assert.ok(relayed.limits != null && relayed.remoteAddr.toString().includes('/p2p-circuit'))

    // libp2p 3.3 by itself skips the limited connection, dials the peer again, and its gater refuses every address.
    const libp2pDialProtocol = Object.getPrototypeOf(natted.libp2p).dialProtocol as Libp2p['dialProtocol']
    await assert.rejects(libp2pDialProtocol.call(natted.libp2p, direct.libp2p.peerId, ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) }),
      (err: Error) => ['DialDeniedError', 'NoValidAddressesError'].includes(err.name))

    // The node's dialProtocol opens the stream on the relayed connection.
    const stream = await natted.libp2p.dialProtocol(direct.libp2p.peerId, ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
    assert.ok(relayed.streams.includes(stream), 'the stream runs on the relayed connection')
    assert.equal(await roundTrip(stream, 'through the relay'), 'through the relay')
    assert.deepEqual(natted.libp2p.getConnections(direct.libp2p.peerId).map(c => c.id), [relayed.id], 'no second connection was opened')
    // A caller that does not accept limited connections still gets none.
    await assert.rejects(natted.libp2p.dialProtocol(direct.libp2p.peerId, ECHO, { signal: AbortSignal.timeout(10_000) }))
  })

  it('between loopback peers DCUtR refuses to upgrade a relayed connection (no public address) though a direct dial works, and streams take a direct connection once there is one', async () => {
    // Both peers listen on 127.0.0.1, so a direct connection is possible; they first meet through the relay.
    const listener = await startTestNode('peer', { bootstrap: [bootAddr], relayClient: true })
    const dialler = await startTestNode('peer', { bootstrap: [bootAddr], relayClient: false })
    nodes.push(listener, dialler)
    await echo(listener.libp2p)
    // The relayed connection's outbound side answers the hole-punch request; record what its DCUtR handler saw.
    const dcutr = dialler.libp2p.services.dcutr as { handleIncomingUpgrade: (stream: Stream, connection: Connection) => Promise<void> }
    const attempts: Array<{ limited: boolean, error?: string }> = []
    await dialler.libp2p.unhandle('/libp2p/dcutr')
    await dialler.libp2p.handle('/libp2p/dcutr', async (stream, connection) => {
      const attempt: { limited: boolean, error?: string } = { limited: connection.limits != null }
      attempts.push(attempt)
      try {
        await dcutr.handleIncomingUpgrade(stream, connection)
      } catch (err) {
        attempt.error = (err as Error).message
        throw err
      }
    }, { runOnLimitedConnection: true, maxInboundStreams: 1, maxOutboundStreams: 1 })

    await waitFor('a relay reservation', () => listener.multiaddrs.some(a => a.includes('/p2p-circuit')), 30_000)
    const relayed = await dialler.libp2p.dial(multiaddr(`${bootAddr}/p2p-circuit/p2p/${listener.peerId}`), { signal: AbortSignal.timeout(20_000) })
    assert.ok(relayed.limits != null)
    // DCUtR ran over the relayed connection and refused: the listener sent only loopback (private) and relay
    // addresses, and DCUtR dials public addresses only. So hole punching cannot be shown on 127.0.0.1.
    await waitFor('a DCUtR attempt and its outcome', () => attempts.some(a => a.error != null), 20_000)
    assert.ok(attempts.every(a => a.limited), 'DCUtR ran over the relayed connection')
    assert.match(attempts.find(a => a.error != null)!.error!, /no dialable multiaddrs/)
    // Identify ran over the relayed connection: both sides know the other speaks DCUtR and AutoNAT.
    const protocols = (await dialler.libp2p.peerStore.get(listener.libp2p.peerId)).protocols
    assert.ok(protocols.includes('/libp2p/dcutr') && protocols.includes('/libp2p/autonat/1.0.0'), protocols.join(', '))
    // A direct connection is possible: what stopped DCUtR is its rule, not reachability. (libp2p dials one itself
    // when a protocol that refuses limited connections, the DHT's for one, wants this peer.)
    const directAddr = listener.multiaddrs.find(a => !a.includes('/p2p-circuit'))!
    const direct = await dialler.libp2p.dial(multiaddr(directAddr), { signal: AbortSignal.timeout(10_000) })
    assert.equal(direct.limits, undefined)
    // A stream that accepts limited connections now runs on the direct one.
    const stream = await dialler.libp2p.dialProtocol(listener.libp2p.peerId, ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
    const on = dialler.libp2p.getConnections(listener.libp2p.peerId).find(c => c.streams.includes(stream))
    assert.ok(on != null && on.limits == null && !on.remoteAddr.toString().includes('/p2p-circuit'), `the stream ran on ${on?.remoteAddr.toString()}`)
    assert.equal(await roundTrip(stream, 'direct'), 'direct')
  })
})
