/**
 * The relay limits an operator sets in `bootstrap.*` config reach the bootstrap node's relay, and a relayed
 * connection that uses up its data limit is closed by the relay: the transfer on it fails within seconds (no
 * hang) and the peer's log says which limit did it.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { initHome } from '../../node/config/home.ts'
import { envName, loadConfig } from '../../node/config/load.ts'
import { NodeConfig } from '../../node/config/schema.ts'
import { DEFAULT_RELAY_LIMITS, relayServerInit } from '../../node/network/relay-limits.ts'
import { startBootstrapNode, type BootstrapNode } from '../../bootstrap/bootstrap-node.ts'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const SINK = '/nearai-test/sink/1.0.0'
const MiB = 1024 * 1024

function capturingLogger (lines: Array<Record<string, unknown>>): Logger {
  return pino({ level: 'debug' }, new Writable({
    write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString())); done() }
  }))
}

/** Sends `bytes` on `stream` (waiting for drain), closes its end, and reads the receiver's byte count back. */
async function transfer (stream: Stream, bytes: number): Promise<number> {
  const chunk = new Uint8Array(64 * 1024).fill(7)
  for (let sent = 0; sent < bytes; sent += chunk.byteLength) {
    if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(20_000) })
  }
  await stream.close({ signal: AbortSignal.timeout(20_000) })
  let reply = ''
  for await (const part of stream) reply += new TextDecoder().decode(part.subarray())
  if (reply === '') throw new Error('the stream ended without the receiver\'s answer')
  return Number(reply)
}

describe('bootstrap node: relay limits from bootstrap.* config', function () {
  this.timeout(90_000)
  let home: string
  let boot: BootstrapNode
  const peers: PeerNode[] = []

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'nearai-relay-limits-'))
    await initHome(home)
    const env = {
      [envName(['bootstrap', 'relayDataLimitBytes'])]: String(MiB),
      [envName(['bootstrap', 'relayDurationLimitSeconds'])]: '600',
      [envName(['bootstrap', 'relayReservationTtlSeconds'])]: '900',
      [envName(['bootstrap', 'relayMaxCircuitsPerPeer'])]: '4'
    }
    assert.deepEqual(Object.keys(env), ['NEARAI_BOOTSTRAP_RELAY_DATA_LIMIT_BYTES', 'NEARAI_BOOTSTRAP_RELAY_DURATION_LIMIT_SECONDS', 'NEARAI_BOOTSTRAP_RELAY_RESERVATION_TTL_SECONDS', 'NEARAI_BOOTSTRAP_RELAY_MAX_CIRCUITS_PER_PEER'])
    const config = await loadConfig({
      home,
      env,
      flags: { network: { listen: ['/ip4/127.0.0.1/tcp/0'], inboundConnectionsPerSecond: 1000 }, bootstrap: { metricsHost: '127.0.0.1', metricsPort: 0 } }
    })
    boot = await startBootstrapNode({ home, config, logger: pino({ level: 'silent' }) })
  })

  after(async () => {
    await Promise.all(peers.map(async p => await p.stop()))
    await boot?.stop()
    await removeDir(home)
  })

  it('the defaults are the documented ones, and a bad value is refused with the field named', async () => {
    const defaults = NodeConfig.parse({}).bootstrap
    assert.deepEqual(
      [defaults.maxRelayReservations, defaults.relayReservationTtlSeconds, defaults.relayDurationLimitSeconds, defaults.relayDataLimitBytes, defaults.relayMaxCircuitsPerPeer],
      [128, 3600, 3600, 64 * MiB, 16])
    assert.deepEqual(DEFAULT_RELAY_LIMITS, { maxReservations: 128, reservationTtlSeconds: 3600, durationLimitSeconds: 3600, dataLimitBytes: 64 * MiB, maxCircuitsPerPeer: 16 })
    // libp2p's relay times the duration in milliseconds and counts data in a bigint.
    const init = relayServerInit({ durationLimitSeconds: 60, dataLimitBytes: 5 })
    assert.equal(init.reservations?.defaultDurationLimit, 60_000)
    assert.equal(init.reservations?.defaultDataLimit, 5n)
    assert.equal(init.reservations?.applyDefaultLimit, true)
    // A bad value is named by where it came from (here the environment variable of the field).
    await assert.rejects(loadConfig({ home, env: { NEARAI_BOOTSTRAP_RELAY_DATA_LIMIT_BYTES: '-1' } }), /NEARAI_BOOTSTRAP_RELAY_DATA_LIMIT_BYTES: Too small/)
    await assert.rejects(loadConfig({ home, env: { NEARAI_BOOTSTRAP_RELAY_DURATION_LIMIT_SECONDS: '9999999' } }), /NEARAI_BOOTSTRAP_RELAY_DURATION_LIMIT_SECONDS: Too big/)
  })

  it('a reservation carries the configured limits; a relayed connection past its data limit is closed, its transfer fails and the log names the limit', async () => {
    const bootAddr = boot.node.multiaddrs.find(a => a.includes('/tcp/'))!
    const hiddenLog: Array<Record<string, unknown>> = []
    const dialerLog: Array<Record<string, unknown>> = []
    const hidden = await startTestNode('peer', { listen: [], relayClient: true, bootstrap: [bootAddr], logger: capturingLogger(hiddenLog) })
    peers.push(hidden)
    const received: number[] = []
    await hidden.libp2p.handle(SINK, async (stream: Stream) => {
      let n = 0
      for await (const part of stream) n += part.byteLength
      received.push(n)
      stream.send(new TextEncoder().encode(String(n)))
      await stream.close()
    }, { runOnLimitedConnection: true })
    await waitFor('a relay reservation', () => hidden.multiaddrs.some(a => a.includes('/p2p-circuit')), 30_000)

    const reservation = boot.node.libp2p.services.relay!.reservations.get(hidden.libp2p.peerId)
    assert.ok(reservation != null)
    assert.deepEqual(reservation.limit, { data: BigInt(MiB), duration: 600_000 })
    const ttl = reservation.expiry.getTime() - Date.now()
    assert.ok(ttl > 850_000 && ttl <= 900_000, `reservation expires in ${ttl} ms`)

    const dialer = await startTestNode('peer', { bootstrap: [bootAddr], logger: capturingLogger(dialerLog) })
    peers.push(dialer)
    const relayed = await dialer.libp2p.dial(multiaddr(`${bootAddr}/p2p-circuit/p2p/${hidden.peerId}`), { signal: AbortSignal.timeout(20_000) })
    assert.ok(relayed.limits?.bytes != null && relayed.limits.bytes <= BigInt(MiB), `limits ${String(relayed.limits?.bytes)}`)

    // Half the allowance goes through.
    const small = await dialer.libp2p.dialProtocol(hidden.libp2p.peerId, SINK, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
    assert.equal(await transfer(small, MiB / 2), MiB / 2)
    // Four times the allowance does not: the relay cuts the connection, and the transfer fails fast.
    const big = await dialer.libp2p.dialProtocol(hidden.libp2p.peerId, SINK, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
    const started = Date.now()
    await assert.rejects(transfer(big, 4 * MiB))
    assert.ok(Date.now() - started < 20_000, `the failed transfer took ${Date.now() - started} ms`)
    assert.equal(relayed.status !== 'open', true, 'the relayed connection was closed')
    await waitFor('the close to be logged', () => dialerLog.some(l => l.dataLimitReached === true), 10_000)
    const line = dialerLog.find(l => l.dataLimitReached === true)!
    assert.equal(line.level, 40, 'a warning')
    assert.equal(line.component, 'relay')
    assert.match(String(line.msg), /data limit was used up.*bootstrap\.relayDataLimitBytes/)
    assert.equal(line.peer, hidden.peerId)
    assert.ok(Number(line.bytesUsed) > MiB / 2 && Number(line.bytesUsed) <= MiB, `bytes used ${String(line.bytesUsed)}`)
    assert.ok(received.every(n => n < 4 * MiB), 'the receiver never got the whole transfer')
  })
})
