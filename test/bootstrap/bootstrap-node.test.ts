import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { initHome } from '../../node/config/home.ts'
import { loadConfig } from '../../node/config/load.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { startBootstrapNode, type BootstrapNode } from '../../bootstrap/bootstrap-node.ts'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { removeDir } from '../helpers/temp-dir.ts'

function metricValue (text: string, name: string): number {
  const line = text.split('\n').find(l => l.startsWith(name + ' '))
  assert.ok(line != null, `metric ${name} is exported`)
  return Number(line.split(' ')[1])
}

describe('bootstrap node: relay, /metrics and /healthz', function () {
  this.timeout(120_000)
  let home: string
  let boot: BootstrapNode
  const peers: PeerNode[] = []

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'nearai-boot-'))
    await initHome(home)
    const config = await loadConfig({
      home,
      env: {},
      flags: { network: { listen: ['/ip4/127.0.0.1/tcp/0'], inboundConnectionsPerSecond: 1000 }, bootstrap: { metricsHost: '127.0.0.1', metricsPort: 0 } }
    })
    boot = await startBootstrapNode({ home, config, logger: silentLogger() })
  })

  after(async () => {
    await Promise.all(peers.map(async p => await p.stop()))
    await boot?.stop()
    await removeDir(home)
  })

  it('serves /healthz while running', async () => {
    const res = await fetch(`${boot.ops.url}/healthz`)
    assert.equal(res.status, 200)
    const body = await res.json() as { status: string, peerId: string }
    assert.equal(body.status, 'ok')
    assert.equal(body.peerId, boot.node.peerId)
    assert.equal((await fetch(`${boot.ops.url}/nope`)).status, 404)
  })

  it('relays a connection to a peer that cannot be dialled directly, and counts it in /metrics', async () => {
    const bootAddr = boot.node.multiaddrs.find(a => a.includes('/tcp/'))!
    // The hidden peer listens on no address of its own: only through a relay reservation on the bootstrap node.
    const hidden = await startTestNode('peer', { listen: [], relayClient: true, bootstrap: [bootAddr] })
    peers.push(hidden)
    await waitFor('a relay reservation', () => hidden.multiaddrs.some(a => a.includes('/p2p-circuit')), 30_000)
    const dialer = await startTestNode('peer', { bootstrap: [bootAddr] })
    peers.push(dialer)
    const circuitAddr = multiaddr(`${bootAddr}/p2p-circuit/p2p/${hidden.peerId}`)
    const conn = await dialer.libp2p.dial(circuitAddr, { signal: AbortSignal.timeout(20_000) })
    assert.equal(conn.remotePeer.toString(), hidden.peerId)
    assert.ok(conn.remoteAddr.toString().includes('/p2p-circuit'), 'the connection runs through the relay')
    const rtt = await dialer.libp2p.services.ping.ping(hidden.libp2p.peerId, { signal: AbortSignal.timeout(10_000) })
    assert.ok(rtt >= 0, 'ping answered through the relay')

    const scrape = async (): Promise<string> => await (await fetch(`${boot.ops.url}/metrics`)).text()
    // The routing table is filled by a background queue after identify; wait for it like a scraper would.
    await waitFor('the DHT routing table to fill', async () => metricValue(await scrape(), 'nearai_dht_routing_table_size') >= 1, 30_000)
    const text = await scrape()
    assert.ok(metricValue(text, 'nearai_peers_connected') >= 2, `peers connected: ${metricValue(text, 'nearai_peers_connected')}`)
    assert.ok(metricValue(text, 'nearai_dht_routing_table_size') >= 1, `routing table: ${metricValue(text, 'nearai_dht_routing_table_size')}`)
    assert.equal(metricValue(text, 'nearai_relay_reservations'), 1)
    assert.equal(metricValue(text, 'nearai_relayed_connections'), 1)
    assert.ok(text.includes('nearai_gossip_messages_in_total'), 'gossip counters are exported')
  })
})
