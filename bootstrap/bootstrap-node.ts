/**
 * The always-on node a bootstrap operator runs: a DHT server and circuit relay v2 server that lets peers find
 * each other and reach peers behind NAT; it does no training. It keeps the public datasets named in
 * `bootstrap.pin` pinned and announced, and serves `/metrics` and `/healthz`.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { ConfigError } from '../node/config/load.ts'
import type { NodeConfig } from '../node/config/schema.ts'
import type { PeerNode } from '../node/network/peer-node.ts'
import { relayLimitsFromConfig, startNodeFromHome } from '../node/peer/start-peer.ts'
import { pinnedBytesMeter } from '../node/storage/pins.ts'
import { PublicDatasetKeeper, type PinPublicDatasetsProgressEvents, type PublicDatasetKeeperInit } from '../node/storage/public-datasets.ts'
import { createMetricsRegistry } from './metrics.ts'
import { startOpsServer, type OpsServer } from './http-server.ts'

export interface BootstrapNode {
  node: PeerNode
  ops: OpsServer
  /** The public datasets this node keeps pinned, and how each is doing. */
  datasets: PublicDatasetKeeper
  stop: () => Promise<void>
}

export interface StartBootstrapOptions {
  home: string
  config: NodeConfig
  logger: Logger
  /** Replaces how `nearai_pinned_bytes` is measured (default: every pin's recorded size, walked once if none). */
  pinnedBytes?: (node: PeerNode) => Promise<number>
  /** Deadlines, backoff and intervals of dataset pinning (defaults suit a public node; tests shorten them). */
  pinning?: Omit<PublicDatasetKeeperInit, 'helia' | 'cids' | 'onProgress'>
}

/**
 * Parses `bootstrap.pin`: each entry must be a dataset manifest CID (dag-cbor), as `nearai dataset add`
 * prints it. Every bad entry is named in one ConfigError; duplicates are kept once.
 */
export function parsePinnedDatasets (list: string[]): CID[] {
  const problems: string[] = []
  const cids = new Map<string, CID>()
  list.forEach((text, i) => {
    let cid: CID
    try {
      cid = CID.parse(text.trim())
    } catch (err) {
      problems.push(`bootstrap.pin[${i}] "${text}" is not a CID (${(err as Error).message})`)
      return
    }
    if (cid.code !== dagCbor.code) {
      problems.push(`bootstrap.pin[${i}] ${text} is not a dataset manifest (codec 0x${cid.code.toString(16)}, a manifest is dag-cbor): pin the CID that \`nearai dataset add\` prints`)
      return
    }
    cids.set(cid.toString(), cid)
  })
  if (problems.length > 0) throw new ConfigError(problems.join('; '))
  return [...cids.values()]
}

export async function startBootstrapNode ({ home, config, logger, pinnedBytes, pinning }: StartBootstrapOptions): Promise<BootstrapNode> {
  const pins = parsePinnedDatasets(config.bootstrap.pin)
  const node = await startNodeFromHome({ home, config, logger, role: 'bootstrap' })
  logger.info({ ...relayLimitsFromConfig(config) }, 'circuit relay serving peers behind NAT with these limits (bootstrap.* config)')
  const log = logger.child({ component: 'pinning' })
  const datasets = new PublicDatasetKeeper({ ...pinning, helia: node.helia, cids: pins, onProgress: evt => { logPinning(log, evt) } })
  if (pins.length > 0) log.info({ datasets: pins.map(String) }, 'pinning public datasets')
  // In the background: the node serves the DHT and relays while datasets arrive.
  datasets.start()
  const meter = pinnedBytesMeter(node.helia, { onError: (cid, err) => { log.warn({ cid: cid.toString(), err: err.message }, 'cannot size a pin') } })
  const registry = createMetricsRegistry({
    node,
    pinnedBytes: pinnedBytes != null ? async () => await pinnedBytes(node) : async () => await meter.read(),
    pinnedDatasets: () => datasets.counts()
  })
  let ops: OpsServer
  try {
    ops = await startOpsServer(node, registry, config.bootstrap.metricsHost, config.bootstrap.metricsPort)
  } catch (err) {
    await datasets.stop()
    await node.stop()
    throw err
  }
  logger.info({ metrics: `${ops.url}/metrics`, healthz: `${ops.url}/healthz` }, 'bootstrap node serving metrics')
  return {
    node,
    ops,
    datasets,
    stop: async () => {
      await ops.close()
      await datasets.stop()
      await node.stop()
    }
  }
}

function logPinning (log: Logger, evt: PinPublicDatasetsProgressEvents): void {
  const cid = evt.detail.cid.toString()
  switch (evt.type) {
    case 'nearai:public-datasets:fetching':
      log.info({ cid, attempt: evt.detail.attempt }, 'fetching public dataset')
      break
    case 'nearai:public-datasets:shard':
      log.debug({ cid, shard: evt.detail.shard, shards: evt.detail.shards }, 'public dataset shard fetched')
      break
    case 'nearai:public-datasets:pinned':
      log.info({ cid, name: evt.detail.name, bytes: evt.detail.bytes, shards: evt.detail.shards, alreadyPinned: evt.detail.alreadyPinned }, 'public dataset pinned')
      break
    case 'nearai:public-datasets:provided':
      if (evt.detail.failed > 0) log.warn({ cid, provided: evt.detail.provided, failed: evt.detail.failed, err: evt.detail.error?.message }, 'public dataset not fully announced on the DHT; will retry at the next re-check')
      else log.debug({ cid, provided: evt.detail.provided }, 'public dataset announced')
      break
    case 'nearai:public-datasets:unpinned':
      log.warn({ cid }, 'public dataset no longer pinned: pinning it again')
      break
    case 'nearai:public-datasets:failed':
      log.warn({ cid, err: evt.detail.error.message, attempt: evt.detail.attempt, retryInMs: evt.detail.retryInMs }, 'cannot pin public dataset yet; will retry')
      break
  }
}
