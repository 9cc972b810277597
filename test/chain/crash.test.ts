import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ChainLockedError, DevChain, JournalCorruptError } from '../../node/chain/index.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { devGenesis, tempDir } from './helpers.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const nodeBin = join(root, 'node_modules', '.bin', 'node')

describe('dev chain durability', function () {
  this.timeout(60_000)

  it('survives kill -9 mid-stream with every reported transaction committed, and replays', async () => {
    await ensureContractBuilt()
    const tmp = tempDir()
    try {
      const child = spawn(nodeBin, ['--import', 'tsx', join(root, 'test/chain/fixtures/commit-loop.ts'), tmp.dir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
      const reported: string[] = []
      let buf = ''
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString()
          const lines = buf.split('\n'); buf = lines.pop()!
          reported.push(...lines)
          if (reported.length >= 40 && child.exitCode == null && !child.killed) child.kill('SIGKILL')
        })
        child.on('exit', (_code, signal) => { signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited early: ${_code}`)) })
      })
      assert.ok(reported.length >= 40)
      const chain = await DevChain.open({ dir: tmp.dir, genesis: await devGenesis() })
      try {
        for (const h of reported) assert.ok(chain.transaction(h) != null, `committed tx ${h} lost`)
        // Replay re-executed every block: the storage deposit from the first transaction is there.
        const bal = JSON.parse(Buffer.from((await chain.view('nearai.test', 'storage_balance_of', Buffer.from('{"account_id":"alice.test"}'))).result).toString())
        assert.equal(bal.total, (10n ** 23n).toString())
        assert.ok(chain.head.height >= BigInt(reported.length))
      } finally { chain.close() }
    } finally { tmp.remove() }
  })

  it('truncates a torn tail record and refuses a corrupted middle record', async () => {
    const tmp = tempDir()
    try {
      const genesis = await devGenesis()
      const chain = await DevChain.open({ dir: tmp.dir, genesis })
      chain.close()
      const path = join(tmp.dir, 'journal.bin')
      const clean = statSync(path).size
      appendFileSync(path, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5])) // header promising 200 bytes, 1 given
      const reopened = await DevChain.open({ dir: tmp.dir, genesis })
      assert.equal(reopened.truncatedBytes, 9)
      reopened.close()
      assert.equal(statSync(path).size, clean)

      // a second complete record after a damaged first one: corruption, not a torn tail
      const data = readFileSync(path)
      const frame = Buffer.alloc(8 + 2); frame.writeUInt32LE(2, 0); frame.writeUInt32LE(0, 4)
      const damaged = Buffer.from(data); damaged[20] ^= 0xff
      writeFileSync(path, Buffer.concat([damaged, frame]))
      await assert.rejects(DevChain.open({ dir: tmp.dir, genesis }), JournalCorruptError)
    } finally { tmp.remove() }
  })

  it('lets one process at a time own a chain directory', async () => {
    const tmp = tempDir()
    try {
      const genesis = await devGenesis()
      const first = await DevChain.open({ dir: tmp.dir, genesis })
      await assert.rejects(DevChain.open({ dir: tmp.dir, genesis }), ChainLockedError)
      first.close()
      const second = await DevChain.open({ dir: tmp.dir, genesis })
      second.close()
    } finally { tmp.remove() }
  })
})
