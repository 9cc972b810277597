import assert from 'node:assert/strict'
import { readFile, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import * as dagCbor from '@ipld/dag-cbor'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { initHome } from '../../node/config/home.ts'
import { ConfigError, loadConfig } from '../../node/config/load.ts'
import { silentLogger, type Logger } from '../../node/log/logger.ts'
import { addDataset, getDataset } from '../../node/storage/datasets.ts'
import { dagSize } from '../../node/storage/dag.ts'
import { pinRm, provideAll } from '../../node/storage/pins.ts'
import { PublicDatasetKeeper } from '../../node/storage/public-datasets.ts'
import { parsePinnedDatasets, startBootstrapNode, type BootstrapNode } from '../../bootstrap/bootstrap-node.ts'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/** The value of one sample in Prometheus text, e.g. `nearai_pinned_datasets{state="pinned"}`. */
function metricValue (text: string, sample: string): number {
  const line = text.split('\n').find(l => l.startsWith(sample + ' '))
  assert.ok(line != null, `metric ${sample} is exported`)
  return Number(line.slice(sample.length + 1))
}

/** A dataset manifest CID nobody holds. */
async function unfetchableManifest (): Promise<CID> {
  return CID.createV1(dagCbor.code, await sha256.digest(dagCbor.encode({ nobody: 'has this', at: Date.now() })))
}

/** JSON log lines of a logger, kept in memory. */
function capturingLogger (): { logger: Logger, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l))
      cb()
    }
  })
  return { logger: pino({ level: 'debug' }, sink), lines }
}

describe('bootstrap node: pinning public datasets', function () {
  this.timeout(60_000)
  let dir: string
  const nodes: PeerNode[] = []
  const boots: BootstrapNode[] = []

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'nearai-boot-pin-')) })
  after(async () => {
    await Promise.all(nodes.map(async n => await n.stop().catch(() => {})))
    await Promise.all(boots.map(async b => await b.stop().catch(() => {})))
    await removeDir(dir)
  })

  async function bootstrapConfig (home: string, pin: string[]): Promise<Awaited<ReturnType<typeof loadConfig>>> {
    await initHome(home)
    return await loadConfig({
      home,
      env: {},
      flags: { network: { listen: ['/ip4/127.0.0.1/tcp/0'], inboundConnectionsPerSecond: 1000 }, bootstrap: { metricsHost: '127.0.0.1', metricsPort: 0, pin } }
    })
  }

  it('refuses bad CIDs in bootstrap.pin with an error naming each, before starting anything', async () => {
    const rawCid = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1, 2, 3])))
    const good = await unfetchableManifest()
    assert.throws(() => parsePinnedDatasets([good.toString(), 'not-a-cid', rawCid.toString()]), (err: Error) => {
      assert.ok(err instanceof ConfigError, err.name)
      assert.match(err.message, /bootstrap\.pin\[1\] "not-a-cid" is not a CID/)
      assert.match(err.message, /bootstrap\.pin\[2\] \S+ is not a dataset manifest/)
      assert.doesNotMatch(err.message, /bootstrap\.pin\[0\]/)
      return true
    })
    assert.deepEqual(parsePinnedDatasets([good.toString(), ` ${good.toString()} `]).map(String), [good.toString()], 'duplicates are kept once')
    const home = join(dir, 'bad-home')
    const config = await bootstrapConfig(home, ['bafy-nope'])
    await assert.rejects(startBootstrapNode({ home, config, logger: silentLogger() }), ConfigError)
  })

  it('fetches and pins a configured dataset in the background, reports it in /metrics, and serves it after its adder leaves', async () => {
    // The adder: a peer that imports a small dataset of 3 shards, with no network yet.
    const adder = await startTestNode('peer')
    nodes.push(adder)
    const source = join(dir, 'lines.txt')
    await writeFile(source, Array.from({ length: 2000 }, (_, i) => `sample ${i}: ${'y'.repeat(i % 89)}`).join('\n') + '\n')
    const added = await addDataset(adder.helia, source, { name: 'lines', license: 'CC0-1.0', shards: 3, provide: false })
    const dagBytes = await dagSize(adder.helia, added.cid, { offline: true })
    const shardBytes = added.manifest.shards.reduce((s, x) => s + x.bytes, 0)
    assert.ok(dagBytes >= shardBytes && shardBytes > 0)
    const missing = await unfetchableManifest()

    // The bootstrap node starts with the dataset (and one CID nobody has) in its config, before anyone holds
    // them for it: it must come up and serve at once, and keep retrying.
    const home = join(dir, 'boot')
    const config = await bootstrapConfig(home, [added.cid.toString(), missing.toString()])
    const { logger, lines } = capturingLogger()
    const boot = await startBootstrapNode({
      home,
      config,
      logger,
      pinning: { timeoutMs: 1500, retryMinMs: 200, retryMaxMs: 800, recheckIntervalMs: 1000, provideTimeoutMs: 5000 }
    })
    boots.push(boot)
    assert.equal((await fetch(`${boot.ops.url}/healthz`)).status, 200, 'serving while the datasets are missing')
    const scrape = async (): Promise<string> => await (await fetch(`${boot.ops.url}/metrics`)).text()
    await waitFor('a failed attempt to be logged for the dataset', () => lines.some(l => l.cid === added.cid.toString() && l.msg === 'cannot pin public dataset yet; will retry'), 15_000)
    assert.equal(metricValue(await scrape(), 'nearai_pinned_datasets{state="pinned"}'), 0)
    assert.equal(metricValue(await scrape(), 'nearai_pinned_bytes'), 0)

    // The adder joins and announces; the next retry gets every shard.
    const bootAddr = boot.node.multiaddrs.find(a => a.includes('/tcp/')) as string
    await adder.libp2p.dial(multiaddr(bootAddr))
    await provideAll(adder.helia, [added.cid, ...added.manifest.shards.map(s => s.cid)], { signal: AbortSignal.timeout(10_000) })
    await waitFor('the dataset to be pinned', () => boot.datasets.status().find(s => s.cid.equals(added.cid))?.state === 'pinned', 20_000)

    assert.ok(await boot.node.helia.pins.isPinned(added.cid), 'the manifest is pinned (recursively)')
    for (const shard of added.manifest.shards) assert.ok(await boot.node.helia.pins.isPinned(shard.cid), `shard ${shard.cid.toString()} is pinned`)
    const local = await getDataset(boot.node.helia, added.cid, { offline: true })
    assert.equal(local.shards.length, 3)
    assert.deepEqual(Buffer.concat(local.shards.map(s => s.bytes)), await readFile(source), 'every shard is held locally, byte for byte')
    assert.equal(await dagSize(boot.node.helia, added.cid, { offline: true }), dagBytes, 'every block of the DAG is local')

    const text = await scrape()
    assert.equal(metricValue(text, 'nearai_pinned_bytes'), dagBytes)
    assert.equal(metricValue(text, 'nearai_pinned_datasets{state="pinned"}'), 1)
    const unsettled = ['pending', 'fetching', 'failed'].reduce((s, state) => s + metricValue(text, `nearai_pinned_datasets{state="${state}"}`), 0)
    assert.equal(unsettled, 1, 'the CID nobody has is still being tried')
    assert.ok(lines.some(l => l.cid === added.cid.toString() && l.msg === 'public dataset pinned' && l.bytes === dagBytes), 'the pin is logged')
    const missingFailures = (): Array<Record<string, any>> => lines.filter(l => l.cid === missing.toString() && l.msg === 'cannot pin public dataset yet; will retry')
    await waitFor('the missing one to be retried', () => missingFailures().length >= 2, 10_000)
    assert.deepEqual(missingFailures().slice(0, 2).map(l => l.attempt), [1, 2])
    assert.ok(missingFailures()[1].retryInMs > missingFailures()[0].retryInMs, 'with growing delays')

    // The adder leaves; a newcomer that knows only the bootstrap node still gets a shard.
    await adder.stop()
    const newcomer = await startTestNode('peer', { bootstrap: [bootAddr] })
    nodes.push(newcomer)
    assert.deepEqual(newcomer.connectedPeers(), [boot.node.peerId])
    const got = await getDataset(newcomer.helia, added.cid, { shard: 2, timeoutMs: 15_000 })
    assert.deepEqual(got.shards[0].bytes, local.shards[2].bytes)
    assert.deepEqual(newcomer.connectedPeers(), [boot.node.peerId])

    // Someone removes the pin: the periodic re-check pins it again, and the dataset is announced again.
    const announced = (): number => lines.filter(l => l.cid === added.cid.toString() && l.msg === 'public dataset announced').length
    const before = announced()
    await pinRm(boot.node.helia, added.cid)
    assert.equal(await boot.node.helia.pins.isPinned(added.cid), false)
    await waitFor('the re-check to pin the dataset again', async () => await boot.node.helia.pins.isPinned(added.cid), 10_000)
    assert.ok(lines.some(l => l.cid === added.cid.toString() && l.msg === 'public dataset no longer pinned: pinning it again'))
    await waitFor('a re-announcement', () => announced() > before, 10_000)
    assert.equal(metricValue(await scrape(), 'nearai_pinned_bytes'), dagBytes)

    // A restart, with no one else on the network, finds the pin in its home and fetches nothing.
    await newcomer.stop()
    await boot.stop()
    const again = capturingLogger()
    const restarted = await startBootstrapNode({ home, config, logger: again.logger, pinning: { timeoutMs: 1500, retryMinMs: 200, retryMaxMs: 800 } })
    boots.push(restarted)
    assert.deepEqual(restarted.node.connectedPeers(), [])
    await waitFor('the pin to be found after the restart', () => restarted.datasets.status().find(s => s.cid.equals(added.cid))?.state === 'pinned', 10_000)
    const pinnedLine = again.lines.find(l => l.cid === added.cid.toString() && l.msg === 'public dataset pinned')
    assert.equal(pinnedLine?.alreadyPinned, true)
    assert.equal(again.lines.filter(l => l.cid === added.cid.toString() && l.msg === 'public dataset shard fetched').length, 0)
    assert.equal(metricValue(await (await fetch(`${restarted.ops.url}/metrics`)).text(), 'nearai_pinned_bytes'), dagBytes)
  })

  it('stops at once while a fetch is in flight', async () => {
    const node = await startTestNode('peer')
    nodes.push(node)
    const keeper = new PublicDatasetKeeper({ helia: node.helia, cids: [await unfetchableManifest()], timeoutMs: 60_000 })
    keeper.start()
    await new Promise(resolve => setTimeout(resolve, 500))
    assert.equal(keeper.status()[0].state, 'fetching')
    const t0 = Date.now()
    await keeper.stop()
    assert.ok(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`)
    assert.equal(keeper.status()[0].failures, 0, 'an abort is not counted as a failure')
  })
})
