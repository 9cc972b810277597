/** A local NearAI network for multi-process training tests: bootstrap node, MNIST datasets, a job spec, peer processes. */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { PeerNode } from '../../node/network/peer-node.ts'
import type { JobSpec } from '../../node/training/job-spec.ts'
import { addMnistDatasets, initPeerHome, mnistJobSpec, provideWhenPeered, startLocalBootstrap, startPeerProcess, type MnistDatasets } from '../../node/demo/local-network.ts'
import type { PeerProcess } from '../../node/demo/peer-process.ts'
import { removeDir } from '../helpers/temp-dir.ts'

export interface TestNetwork {
  dir: string
  boot: PeerNode
  data: MnistDatasets
  spec: JobSpec
  specPath: string
  homes: string[]
  peerIds: string[]
  peers: PeerProcess[]
  start: (i: number, args?: string[], env?: NodeJS.ProcessEnv) => PeerProcess
  /** Kills the peers and stops the bootstrap node; the folder (homes with each peer's node.log) is kept when `keep`. */
  stop: (keep?: boolean) => Promise<void>
}

export async function startTestNetwork (opts: { peers: number, job: Partial<JobSpec>, trainDigits?: number }): Promise<TestNetwork> {
  const dir = await mkdtemp(join(tmpdir(), 'nearai-job-test-'))
  const boot = await startLocalBootstrap(dir, pino({ level: 'silent' }))
  const data = await addMnistDatasets(boot, dir, { trainDigits: opts.trainDigits ?? 8000, shards: 8 })
  const spec = mnistJobSpec(data, opts.job)
  const specPath = join(dir, 'job.json')
  await writeFile(specPath, JSON.stringify(spec))
  const homes: string[] = []
  const peerIds: string[] = []
  for (let i = 0; i < opts.peers; i++) {
    homes.push(join(dir, `peer-${i}`))
    peerIds.push(await initPeerHome(homes[i], boot.multiaddrs[0]))
  }
  const peers: PeerProcess[] = []
  const provided = provideWhenPeered(boot, data.roots).catch(() => 0)
  const net: TestNetwork = {
    dir, boot, data, spec, specPath, homes, peerIds, peers,
    start: (i, args = [], env) => {
      const p = startPeerProcess(`peer-${i}`, homes[i], specPath, ['--join-wait', '3', '--linger', '20', ...args], env)
      peers[i] = p
      return p
    },
    stop: async (keep = false) => {
      for (const p of peers) p?.kill('SIGKILL')
      await Promise.all(peers.map(async p => await p?.exited))
      await provided
      await boot.stop()
      if (keep) console.log(`      kept ${dir} (each peer's log: peer-*/node.log)`)
      else await removeDir(dir)
    }
  }
  return net
}
