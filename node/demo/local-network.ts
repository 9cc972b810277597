/**
 * A NearAI network on 127.0.0.1 for the demo and the multi-process tests: a bootstrap node in this process
 * that adds (and pins) the MNIST digits as a sharded training dataset plus a held-out one, a job spec that
 * names them, and peers that are separate `nearai node start --job` processes with their own homes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Logger } from 'pino'
import { PeerNode } from '../network/peer-node.ts'
import type { CID } from 'multiformats/cid'
import { addDataset } from '../storage/datasets.ts'
import { provideAll } from '../storage/pins.ts'
import { loadMnist } from '../training/data/mnist.ts'
import type { Samples } from '../training/local-trainer.ts'
import { parseJobSpec, type JobSpec } from '../training/job-spec.ts'
import { initHome, writeFileAtomic } from '../config/home.ts'
import { CONFIG_FILE } from '../config/load.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { DEFAULT_DEV_ACCOUNTS, defaultGenesis, openDevChain, startRpcServer, type DevChain } from '../chain/index.ts'
import { PeerProcess } from './peer-process.ts'
import { sleep } from '../time/clock.ts'

export interface MnistDatasets {
  train: string
  heldOut: string
  trainSamples: number
  heldOutSamples: number
  /** Every root to announce on the DHT once the node has DHT peers (a lone node has nobody to tell). */
  roots: CID[]
}

function toCsv (s: Samples): string {
  const per = s.featureShape.reduce((a, b) => a * b, 1)
  const rows = [['label', ...Array.from({ length: per }, (_, i) => `p${i}`)].join(',')]
  for (let i = 0; i < s.count; i++) rows.push([s.y[i], ...Array.from(s.x.subarray(i * per, (i + 1) * per), v => Math.round(v * 255))].join(','))
  return rows.join('\n') + '\n'
}

/** Adds `trainDigits` MNIST digits (sharded) and the other digits of the package (held out) to `node`'s IPFS. */
export async function addMnistDatasets (node: PeerNode, dir: string, opts: { trainDigits: number, shards: number, seed?: number }): Promise<MnistDatasets> {
  const { train, test } = loadMnist({ train: opts.trainDigits, seed: opts.seed ?? 7 })
  const csv = { label: 'label', numClasses: 10, featureScale: 1 / 255, shape: [784] }
  await writeFile(join(dir, 'mnist-train.csv'), toCsv(train))
  await writeFile(join(dir, 'mnist-heldout.csv'), toCsv(test))
  const trainSet = await addDataset(node.helia, join(dir, 'mnist-train.csv'), { name: 'mnist-train', license: 'CC-BY-SA-3.0', shards: opts.shards, csv, provide: false })
  const heldOut = await addDataset(node.helia, join(dir, 'mnist-heldout.csv'), { name: 'mnist-heldout', license: 'CC-BY-SA-3.0', shards: 1, csv, provide: false })
  const roots = [trainSet, heldOut].flatMap(d => [d.cid, ...d.manifest.shards.map(s => s.cid)]) as CID[]
  return { train: trainSet.cid.toString(), heldOut: heldOut.cid.toString(), trainSamples: train.count, heldOutSamples: test.count, roots }
}

/** Announces the datasets on the DHT once `node` has DHT peers (waits up to `timeoutMs` for the first). */
export async function provideWhenPeered (node: PeerNode, roots: CID[], timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (node.libp2p.services.dht.routingTable.size === 0) {
    if (Date.now() > deadline) return 0
    await sleep(250)
  }
  const r = await provideAll(node.helia, roots, { signal: AbortSignal.timeout(timeoutMs) })
  return r.provided.length
}

/** The demo's job: an MNIST MLP, DiLoCo with H inner AdamW steps and a Nesterov outer step, fp16 updates. */
export function mnistJobSpec (data: MnistDatasets, overrides: Partial<JobSpec> = {}): JobSpec {
  return parseJobSpec({
    id: 'mnist-mlp',
    model: { kind: 'mlp', inputs: 784, hidden: [256, 128], activation: 'relu', classes: 10 },
    dataset: data.train,
    evalDataset: data.heldOut,
    rounds: 10,
    inner: { steps: 50, lr: 1e-3, weightDecay: 0.01, batchSize: 64 },
    outer: { lr: 0.7, momentum: 0.9, nesterov: true },
    codec: 'fp16',
    checkpointEvery: 5,
    minPeers: 2,
    seed: 1,
    eval: { every: 1, maxSamples: 2000 },
    ...overrides
  })
}

export async function startLocalBootstrap (dir: string, logger: Logger): Promise<PeerNode> {
  return await PeerNode.start({
    privateKey: await generateKeyPair('Ed25519'),
    role: 'bootstrap',
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dhtServer: true,
    relayClient: false,
    relayServer: { maxReservations: 64 },
    maxConnections: 300,
    inboundConnectionsPerSecond: 1000,
    ipColocationThreshold: 100,
    dataDir: join(dir, 'bootstrap-data'),
    logger
  })
}

/** A peer's home on loopback: its own identity, listening on 127.0.0.1, dialling the bootstrap node. */
export async function initPeerHome (home: string, bootstrap: string): Promise<string> {
  await mkdir(home, { recursive: true })
  const r = await initHome(home, {
    network: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootstrap], relayClient: false, inboundConnectionsPerSecond: 1000, ipColocationThreshold: 100 }
  })
  return r.peerId
}

/** `nearai node start --job` on `home`; its log lines are also appended to `<home>/node.log`. */
export function startPeerProcess (name: string, home: string, specPath: string, args: string[] = [], env?: NodeJS.ProcessEnv): PeerProcess {
  return new PeerProcess(name, ['--home', home, 'node', 'start', '--job', specPath, '--exit-with-stdin', ...args], { logFile: join(home, 'node.log'), env })
}

/**
 * `nearai validator start --job <job>` on `home` (a home with a chain account: setPeerChainAccount); its log
 * lines are also appended to `<home>/node.log`.
 */
export function startValidatorProcess (name: string, home: string, job: string, args: string[] = []): PeerProcess {
  return new PeerProcess(name, ['--home', home, 'validator', 'start', '--job', job, '--exit-with-stdin', ...args], { logFile: join(home, 'node.log') })
}

export interface PeerChainAccount {
  /** A served dev chain (`nearai chain serve`, or serveChain) or any NEAR JSON-RPC. */
  rpcUrl: string
  accountId: string
  contractId: string
  /** The account's key (`ed25519:...`); written as a near-cli credentials file in the home (0600). */
  secretKey: string
  publicKey?: string
}

/**
 * Points a peer's home at a NEAR JSON-RPC as `account`, attesting the job's checkpoints (chain.network
 * "custom": several peer processes share one served dev chain). Merges into the home's config.json.
 */
export async function setPeerChainAccount (home: string, account: PeerChainAccount): Promise<void> {
  const credentialsFile = join(home, 'near-credentials', `${account.accountId}.json`)
  await mkdir(join(home, 'near-credentials'), { recursive: true, mode: 0o700 })
  await writeFileAtomic(credentialsFile, JSON.stringify({ account_id: account.accountId, public_key: account.publicKey, private_key: account.secretKey }) + '\n', 0o600)
  const configPath = join(home, CONFIG_FILE)
  let config: Record<string, unknown> = {}
  try { config = JSON.parse(await readFile(configPath, 'utf8')) } catch { /* a home without config.json yet */ }
  config.chain = { network: 'custom', rpcUrl: account.rpcUrl, accountId: account.accountId, contractId: account.contractId, credentialsFile, attest: true }
  await writeFileAtomic(configPath, JSON.stringify(config, null, 2) + '\n')
}

export interface LocalChain { url: string, chain: DevChain, close: () => Promise<void> }

/**
 * A fresh dev chain under `<dir>/chain-home` served as NEAR JSON-RPC on 127.0.0.1 (a free port), as
 * `nearai chain serve` does, with `accounts` (beside the default dev accounts) funded at genesis; every
 * account's key is `devSecretKey(account)`.
 */
export async function startLocalChain (dir: string, accounts: string[] = []): Promise<LocalChain> {
  const contractCode = readFileSync(await ensureContractBuilt())
  const genesis = defaultGenesis({ contractCode, accounts: [...new Set([...DEFAULT_DEV_ACCOUNTS, ...accounts])], genesisTimeMs: Date.now() })
  const chain = await openDevChain({ home: join(dir, 'chain-home'), genesis })
  try {
    const server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
    return { url: server.url, chain, close: async () => { await server.close(); chain.close() } }
  } catch (err) {
    chain.close()
    throw err
  }
}
