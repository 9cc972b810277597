/**
 * Must-show of crash safety (issue 11, §5): kill -9 at seeded random moments of a peer node and a bootstrap
 * node pinning datasets, a validator attesting on its embedded dev chain, and the dev chain committing
 * transactions. After every kill the home is opened again and checked:
 * - every dataset the node reported pinned is still pinned and every shard verifies against its SHA-256;
 * - the job state pointer (written after each pin) parses and is at least as new as the last report;
 * - every attestation and every transaction reported committed is on chain (the journal replays);
 * - the node's PeerId is the one it had;
 * - no partial file is left after the next owner takes the home, including torn ones planted in the job
 *   folder and the blockstore (a kill can leave them; planting makes every run check the clean-up);
 * then the child is restarted and killed again.
 *
 * The seed is printed; `FAULT_SEED=<n>` reproduces the kill moments and the data, `FAULT_KILLS=<n>` sets the
 * kills per role (default 3, within CI's time; `npm run test:faults` runs a longer series).
 */
import assert from 'node:assert/strict'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadIdentity } from '../../node/config/home.ts'
import { isPartialFile } from '../../node/config/durable-file.ts'
import { lockHome } from '../../node/peer/home-lock.ts'
import { homeDataDir, openHomeStore } from '../../node/peer/home-store.ts'
import { getDataset } from '../../node/storage/datasets.ts'
import { isPinRoot } from '../../node/storage/pins.ts'
import { loadStatePointer } from '../../node/job/job-store.ts'
import { DevChain, DevChainLedger, openDevChain } from '../../node/chain/index.ts'
import { seededRandom } from '../../node/training/local-trainer.ts'
import { sleep } from '../../node/time/clock.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { devGenesis, tempDir } from '../chain/helpers.ts'
import { ReportingChild, type ChildEvent } from './child.ts'
import { FAULT_JOB, FAULT_VALIDATOR } from './fixtures/fault-job.ts'

const SEED = process.env.FAULT_SEED != null ? Number(process.env.FAULT_SEED) : Math.floor(Math.random() * 2 ** 31)
const KILLS = Number(process.env.FAULT_KILLS ?? 3)

/** Every partial file under `dir`, at any depth. */
async function partialFiles (dir: string): Promise<string[]> {
  const found: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && isPartialFile(e.name)) found.push(join(e.parentPath, e.name))
  }
  return found
}

/** Plants what a writer killed mid-write leaves: a torn partial state pointer and a torn block temp file. */
async function plantTornFiles (home: string): Promise<void> {
  const jobFolder = join(home, 'jobs', FAULT_JOB)
  await mkdir(jobFolder, { recursive: true })
  await writeFile(join(jobFolder, '.state.json.partial-4000000-0'), '{"round": 9')
  const blocks = join(homeDataDir(home), 'blocks')
  const shard = existsSync(blocks) ? (await readdir(blocks)).find(n => !n.startsWith('.')) : undefined
  if (shard != null) await writeFile(join(blocks, shard, '.CIQTORNBLOCK.data.tmp'), new Uint8Array(100))
}

interface RoleStats { role: string, kills: number, reported: number, leftPartial: number, readyMs: number[], killAfterMs: number[], checkMs: number[] }

function summary (s: RoleStats): string {
  const avg = (xs: number[]): number => Math.round(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length))
  return `${s.role}: ${s.kills} kills, ${s.reported} reported ops kept, ${s.leftPartial} partial files left by kills (cleared), ready after ${avg(s.readyMs)} ms on average, killed ${s.killAfterMs.join('/')} ms after ready, check ${avg(s.checkMs)} ms`
}

describe('crash safety: seeded kill -9 of a peer, a bootstrap node, a validator and the dev chain', function () {
  this.timeout(300_000)
  const stats: RoleStats[] = []

  before(async function () {
    console.log(`      FAULT_SEED=${SEED} FAULT_KILLS=${KILLS}`)
    await ensureContractBuilt()
  })
  after(() => { for (const s of stats) console.log(`      ${summary(s)}`) })

  for (const role of ['peer', 'bootstrap'] as const) {
    it(`a ${role} node keeps every pinned dataset, its state pointer and its PeerId, and leaves no partial file`, async () => {
      const rnd = seededRandom(SEED + (role === 'peer' ? 1 : 2))
      const tmp = tempDir()
      const home = join(tmp.dir, role)
      const s: RoleStats = { role, kills: 0, reported: 0, leftPartial: 0, readyMs: [], killAfterMs: [], checkMs: [] }
      stats.push(s)
      try {
        const pinned: string[] = []
        let peerId: string | undefined
        let lastRound = -1
        for (let k = 0; k < KILLS; k++) {
          const child = new ReportingChild('test/faults/fixtures/pin-loop.ts', [home, role, String(SEED * 31 + k)])
          try {
            const ready = await child.waitFor('started', 90_000)
            s.readyMs.push(ready.afterMs)
            if (peerId == null) peerId = ready.event.peerId
            assert.equal(ready.event.peerId, peerId, `restart ${k}: the ${role} came back with another PeerId`)
            const delay = Math.floor(rnd() * 3000)
            await sleep(delay)
            await child.kill9()
            s.killAfterMs.push(delay)
          } finally {
            if (child.running) await child.kill9().catch(() => {})
          }
          s.kills++
          const reports = child.events.filter((e: ChildEvent) => e.event === 'pinned')
          pinned.push(...reports.map(e => e.cid as string))
          if (reports.length > 0) lastRound = reports.at(-1)!.round

          const t0 = Date.now()
          s.leftPartial += (await partialFiles(home)).length
          await plantTornFiles(home)
          const lock = await lockHome(home, 'kill -9 check') // the killed owner's lock is stale
          try {
            assert.deepEqual(await partialFiles(home), [], 'partial files left after the home was taken again')
            assert.equal(peerIdFromPrivateKey(await loadIdentity(home)).toString(), peerId)
            const store = await openHomeStore(home)
            try {
              for (const cid of pinned) {
                const c = CID.parse(cid)
                assert.ok(await isPinRoot(store.helia, c), `dataset ${cid}, reported pinned, is no longer pinned`)
                const ds = await getDataset(store.helia, c, { offline: true }) // every shard against its SHA-256
                assert.ok(ds.shards.length >= 1)
              }
              const pointer = await loadStatePointer(home, FAULT_JOB)
              if (lastRound >= 0) {
                assert.ok(pointer != null && pointer.round >= lastRound, `state pointer ${JSON.stringify(pointer)} older than round ${lastRound}`)
                assert.ok(await isPinRoot(store.helia, CID.parse(pointer.cid)), 'the state pointer names an unpinned dataset')
              }
            } finally { await store.close() }
          } finally { await lock.release() }
          s.checkMs.push(Date.now() - t0)
        }
        s.reported = pinned.length
        assert.ok(pinned.length > 0, `no dataset was pinned before any of the ${KILLS} kills (seed ${SEED})`)
      } finally { tmp.remove() }
    })
  }

  it('a validator keeps every attestation it reported and its PeerId', async () => {
    const rnd = seededRandom(SEED + 3)
    const tmp = tempDir()
    const home = join(tmp.dir, 'validator')
    const s: RoleStats = { role: 'validator', kills: 0, reported: 0, leftPartial: 0, readyMs: [], killAfterMs: [], checkMs: [] }
    stats.push(s)
    try {
      const attested: number[] = []
      let peerId: string | undefined
      const genesis = await devGenesis()
      for (let k = 0; k < KILLS; k++) {
        const child = new ReportingChild('test/faults/fixtures/attest-loop.ts', [home, String(attested.length === 0 ? 0 : Math.max(...attested) + 1)])
        try {
          const ready = await child.waitFor('started', 90_000)
          s.readyMs.push(ready.afterMs)
          peerId ??= ready.event.peerId
          assert.equal(ready.event.peerId, peerId, `restart ${k}: the validator came back with another PeerId`)
          const delay = Math.floor(rnd() * 2000)
          await sleep(delay)
          await child.kill9()
          s.killAfterMs.push(delay)
        } finally {
          if (child.running) await child.kill9().catch(() => {})
        }
        s.kills++
        attested.push(...child.events.filter(e => e.event === 'attested').map(e => e.round as number))

        const t0 = Date.now()
        s.leftPartial += (await partialFiles(home)).length
        const lock = await lockHome(home, 'kill -9 check')
        try {
          assert.equal(peerIdFromPrivateKey(await loadIdentity(home)).toString(), peerId)
          const chain = await openDevChain({ home, genesis }) // the journal replays; a torn tail is cut
          try {
            const ledger = new DevChainLedger({ chain, accountId: FAULT_VALIDATOR })
            for (const round of attested) {
              const atts = await ledger.getAttestations(FAULT_JOB, round)
              assert.ok(atts.some(a => a.validator === FAULT_VALIDATOR), `round ${round}: the attestation reported committed is gone`)
              assert.equal((await ledger.getAnchor(FAULT_JOB, round))?.final != null, true, `round ${round}: no final anchor`)
            }
          } finally { chain.close() }
        } finally { await lock.release() }
        s.checkMs.push(Date.now() - t0)
      }
      s.reported = attested.length
      assert.ok(attested.length > 0, `nothing was attested before any of the ${KILLS} kills (seed ${SEED})`)
    } finally { tmp.remove() }
  })

  it('the dev chain keeps every transaction it acknowledged across repeated kills (journal replay)', async () => {
    const rnd = seededRandom(SEED + 4)
    const tmp = tempDir()
    const s: RoleStats = { role: 'dev chain', kills: 0, reported: 0, leftPartial: 0, readyMs: [], killAfterMs: [], checkMs: [] }
    stats.push(s)
    try {
      const acknowledged: string[] = []
      let height = 0n
      const genesis = await devGenesis()
      for (let k = 0; k < KILLS; k++) {
        // The chain's own crash fixture: commits forever, printing each tx hash once submit() returned.
        const child = new ReportingChild('test/chain/fixtures/commit-loop.ts', [tmp.dir], true)
        try {
          const ready = await child.waitFor('line', 90_000)
          s.readyMs.push(ready.afterMs)
          const delay = Math.floor(rnd() * 1500)
          await sleep(delay)
          await child.kill9()
          s.killAfterMs.push(delay)
        } finally {
          if (child.running) await child.kill9().catch(() => {})
        }
        s.kills++
        acknowledged.push(...child.events.map(e => e.text as string))
        const t0 = Date.now()
        const chain = await DevChain.open({ dir: tmp.dir, genesis })
        try {
          for (const h of acknowledged) assert.ok(chain.transaction(h) != null, `acknowledged transaction ${h} lost`)
          assert.ok(chain.head.height >= height, 'the chain went back in height')
          height = chain.head.height
        } finally { chain.close() }
        s.checkMs.push(Date.now() - t0)
      }
      s.reported = acknowledged.length
      assert.ok(acknowledged.length > 0)
    } finally { tmp.remove() }
  })
})
