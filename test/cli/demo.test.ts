import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('nearai demo', function () {
  this.timeout(300_000)
  let logs: string

  before(async () => { logs = await mkdtemp(join(tmpdir(), 'nearai-demo-test-')) })
  after(async () => { await removeDir(logs) })

  it('trains with 4 peer processes, ends with identical weights and a checkpoint verified on chain, and cleans up', async () => {
    const r = await runCli(['--log-format', 'json', 'demo', '--rounds', '2', '--inner-steps', '10', '--keep-logs', logs])
    const peerTails = async (): Promise<string> => {
      const files = await readdir(logs).catch(() => [])
      const out = await Promise.all(files.map(async f => `== ${f}\n${(await readFile(join(logs, f), 'utf8')).split('\n').slice(-8).join('\n')}`))
      return out.join('\n')
    }
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr.slice(-3000)}\n${await peerTails()}`)
    assert.match(r.stdout, /weights hash of every peer: identical \([0-9a-f]{64}\)/)
    assert.match(r.stdout, /final checkpoint CID: bafy\S+/)
    assert.match(r.stdout, /checkpoint verify: OK, matches the final anchor of job mnist-mlp round 2 on chain/)
    assert.match(r.stdout, /held-out accuracy \(2,000 digits no peer trained on\): \d+\.\d\d%/)

    const lines = r.stderr.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, any>)
    const rounds = lines.filter(l => l.event === 'round')
    assert.deepEqual(rounds.map(l => l.round), [0, 1], 'a log line per round when not on a terminal')
    assert.ok(lines.some(l => l.event === 'anchor' && l.round === 1), 'the final round becomes final on chain')
    const dir = lines.find(l => typeof l.dir === 'string')?.dir as string
    assert.ok(dir != null && !existsSync(dir), 'the temporary folder is removed')
    assert.equal((await readdir(logs)).length, 4, 'one log per peer')
  })
})
