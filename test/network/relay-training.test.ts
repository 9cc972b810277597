/**
 * Must-show of section 1 of issue 9: a peer behind NAT trains. Three peers train one job together on 127.0.0.1
 * with the bootstrap node's relay at its default limits (the `bootstrap.*` defaults an operator gets): two peers
 * that dial each other directly, and one that listens on no dialable address (only its `/p2p-circuit` address
 * through the bootstrap node) and whose connection gater, playing its NAT, lets it make no direct connection but
 * the one to the bootstrap node. The dataset lives on one of the direct peers only, so the NATed peer's shards
 * can come from nowhere but over a relayed connection. The test checks what ran where, not only the outcome:
 * every all-reduce and bitswap stream the NATed peer exchanged with the others ran on a limited, relayed
 * connection; the bytes those connections carried cover the shards it trained on; it contributed to every round;
 * and all three end with the same weights hash.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Connection } from '@libp2p/interface'
import { NodeConfig } from '../../node/config/schema.ts'
import { relayLimitsFromConfig } from '../../node/peer/start-peer.ts'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { watchRelayedConnections, type RelayedConnectionClose } from '../../node/network/limited-connections.ts'
import { addDataset } from '../../node/storage/datasets.ts'
import { provideAll } from '../../node/storage/pins.ts'
import { runJob, type JobOutcome } from '../../node/job/run-job.ts'
import type { RoundResult } from '../../node/round/steps.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'
import { selectBackend, type BackendName } from '../../node/training/backend.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { ALLREDUCE_PROTOCOL } from '../../protocol/allreduce.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { recordStreams, startNattedPeer, type StreamRecord } from './nat.ts'

const BITSWAP_PROTOCOL = '/ipfs/bitswap/1.2.0'
const ROUNDS = 3

describe('a peer behind NAT trains through the bootstrap node\'s relay', function () {
  this.timeout(240_000)
  const relayLimits = relayLimitsFromConfig(NodeConfig.parse({}))
  let dir: string
  let previousBackend: string
  let boot: PeerNode
  let a: PeerNode
  let b: PeerNode
  let natted: PeerNode
  const nodes: PeerNode[] = []
  const streams: StreamRecord[] = []
  /** Every connection the NATed peer had, with the data allowance it had when it opened. */
  const nattedConnections: Array<{ conn: Connection, startBytes?: bigint }> = []
  const relayedCloses: RelayedConnectionClose[] = []

  before(async () => {
    previousBackend = tf.getBackend()
    await selectBackend({ force: 'wasm' })
    dir = await mkdtemp(join(tmpdir(), 'nearai-relay-training-'))
    boot = await startTestNode('bootstrap', { relayServer: relayLimits })
    nodes.push(boot)
    const bootAddr = boot.multiaddrs[0]
    // The direct peers keep the production default of reserving a relay slot too.
    a = await startTestNode('peer', { bootstrap: [bootAddr], relayClient: true })
    b = await startTestNode('peer', { bootstrap: [bootAddr], relayClient: true })
    natted = await startNattedPeer(bootAddr, boot.peerId)
    nodes.push(a, b, natted)
    natted.libp2p.addEventListener('connection:open', (evt) => { nattedConnections.push({ conn: evt.detail, startBytes: evt.detail.limits?.bytes }) })
    watchRelayedConnections(natted.libp2p, silentLogger(), info => relayedCloses.push(info))
    for (const node of [a, b, natted]) recordStreams(node, streams)
    await waitFor('the NATed peer\'s relay reservation', () => natted.multiaddrs.some(m => m.includes('/p2p-circuit')), 30_000)
    assert.ok(natted.multiaddrs.every(m => m.includes('/p2p-circuit')), `the NATed peer has a dialable address: ${natted.multiaddrs.join(', ')}`)
  })

  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await selectBackend({ force: previousBackend as BackendName })
    if (dir != null) await removeDir(dir)
  })

  it('ends with the direct peers\' weights hash, its all-reduce and shard downloads running over relayed connections', async () => {
    // The dataset is on peer a only: not on the bootstrap node, not on the NATed peer.
    const dataset = await addDataset(a.helia, 'mnist:1800', { name: 'mnist-1800', license: 'CC-BY-SA-3.0', shards: 6, provide: false })
    const shardCids = dataset.manifest.shards.map(s => CID.parse(String(s.cid)))
    await waitFor('peer a to have DHT peers', () => a.libp2p.services.dht.routingTable.size > 0, 30_000)
    const provided = await provideAll(a.helia, [dataset.cid, ...shardCids], { signal: AbortSignal.timeout(180_000) })
    assert.equal(provided.failed.length, 0)

    const spec = parseJobSpec({
      id: 'nat-mnist',
      dataset: dataset.cid.toString(),
      model: { kind: 'mlp', inputs: 784, hidden: [64], activation: 'relu', classes: 10 },
      rounds: ROUNDS,
      inner: { steps: 10, lr: 1e-3, weightDecay: 0.01, batchSize: 32 },
      outer: { lr: 0.7, momentum: 0.9, nesterov: true },
      codec: 'fp16',
      checkpointEvery: ROUNDS,
      // Every round's group must hold all three: a round without the NATed peer fails and is retried.
      minPeers: 3,
      seed: 1
    })
    const specCid = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(JSON.stringify(spec)))).toString()
    const rounds = new Map<string, RoundResult[]>()
    const peers = [a, b, natted]
    const outcomes: JobOutcome[] = await Promise.all(peers.map(async (peer, i) => {
      rounds.set(peer.peerId, [])
      return await runJob({
        peer,
        home: join(dir, `peer-${i}`),
        job: { spec, specCid },
        logger: silentLogger(),
        signal: AbortSignal.timeout(180_000),
        joinWaitMs: 1000,
        onRound: (event) => { rounds.get(peer.peerId)!.push(event) }
      })
    }))

    // Every peer ran every round and holds the same final weights.
    assert.deepEqual(outcomes.map(o => o.state.round), [ROUNDS - 1, ROUNDS - 1, ROUNDS - 1])
    const hashes = outcomes.map(o => o.weightsSha256)
    assert.equal(new Set(hashes).size, 1, `final weights differ: ${hashes.join(', ')}`)

    // The NATed peer was in every round's group and its update was counted.
    for (const peer of peers) {
      const done = rounds.get(peer.peerId)!
      assert.deepEqual(done.map(r => r.round), Array.from({ length: ROUNDS }, (_, r) => r), `rounds completed by ${peer.peerId}`)
      for (const r of done) {
        const contributors = r.contributions.map(c => c.peer)
        assert.ok(contributors.includes(natted.peerId), `round ${r.round} at ${peer.peerId} left the NATed peer out: ${contributors.join(', ')}`)
        assert.ok(r.contributions.find(c => c.peer === natted.peerId)!.samples > 0, `round ${r.round}: the NATed peer contributed no samples`)
      }
    }

    // Every all-reduce and bitswap stream between the NATed peer and a direct peer ran on a limited, relayed
    // connection, and there were such streams in both directions; a and b talked over a direct connection.
    const withNatted = streams.filter(s => (s.from === natted.peerId) !== (s.to === natted.peerId) && s.to !== boot.peerId && s.from !== boot.peerId)
    for (const protocol of [ALLREDUCE_PROTOCOL, BITSWAP_PROTOCOL]) {
      const used = withNatted.filter(s => s.protocol === protocol)
      assert.ok(used.some(s => s.from === natted.peerId), `the NATed peer opened no ${protocol} stream`)
      for (const s of used) {
        assert.ok(s.limited && s.remoteAddr.includes('/p2p-circuit'), `${protocol} stream ${s.from} -> ${s.to} ran on ${s.remoteAddr} (limited: ${String(s.limited)})`)
      }
    }
    assert.ok(withNatted.filter(s => s.protocol === ALLREDUCE_PROTOCOL && s.from !== natted.peerId).length > 0, 'no direct peer opened an all-reduce stream to the NATed peer')
    assert.ok(withNatted.filter(s => s.protocol === ALLREDUCE_PROTOCOL && s.from === natted.peerId).length >= ROUNDS * 2, 'the NATed peer did not send its parts to both others every round')
    const betweenDirect = streams.filter(s => s.protocol === ALLREDUCE_PROTOCOL && [a.peerId, b.peerId].includes(s.from) && [a.peerId, b.peerId].includes(s.to))
    assert.ok(betweenDirect.length > 0 && betweenDirect.every(s => !s.limited), 'a and b should average over their direct connection')

    // It never had a direct connection to anyone but the bootstrap node.
    for (const { conn } of nattedConnections) {
      if (conn.remotePeer.toString() === boot.peerId) continue
      assert.ok(conn.limits != null && conn.remoteAddr.toString().includes('/p2p-circuit'), `the NATed peer had a direct connection to ${conn.remotePeer.toString()} at ${conn.remoteAddr.toString()}`)
    }

    // Its shards came over those relayed connections: no one else held them (the bootstrap node never had the
    // dataset), it holds the shards it trained on, and its relayed connections carried at least their bytes.
    const held: number[] = []
    for (const [i, cid] of shardCids.entries()) {
      assert.equal(await boot.helia.blockstore.has(cid), false, `the bootstrap node holds shard ${i}`)
      if (await natted.helia.blockstore.has(cid)) held.push(i)
    }
    assert.ok(held.length >= 2, `the NATed peer holds shards ${held.join(', ')}`)
    const shardBytes = held.reduce((sum, i) => sum + dataset.manifest.shards[i].bytes, 0)
    const relayedBytes = nattedConnections
      .filter(({ conn }) => conn.limits != null && conn.remotePeer.toString() !== boot.peerId)
      .reduce((sum, { conn, startBytes }) => sum + Number((startBytes ?? 0n) - (conn.limits?.bytes ?? 0n)), 0)
    assert.ok(relayedBytes >= shardBytes, `relayed connections carried ${relayedBytes} bytes, less than the ${shardBytes} bytes of the shards it holds`)
    console.log(`      the NATed peer's relayed connections carried ${(relayedBytes / 1e6).toFixed(2)} MB (shards it holds: ${held.join(', ')}, ${(shardBytes / 1e6).toFixed(2)} MB)`)

    // Within the relay's default limits: no relayed connection was cut by its data limit.
    assert.deepEqual(relayedCloses.filter(c => c.dataLimitReached), [])
    assert.ok(relayedBytes < relayLimits.dataLimitBytes)
  })
})
