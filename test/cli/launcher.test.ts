import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, runCliWith } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/**
 * `nearai` started by a Node.js older than 22.12 (the system Node of many machines, after `npm link`) must
 * re-execute itself on the project's own Node 22. The machines this project is tested on have Node 20 as
 * /usr/bin/node; where the system Node is recent there is no old Node to start it with, and the launcher
 * runs in place (asserted instead).
 */
const SYSTEM_NODE = '/usr/bin/node'
const systemVersion = existsSync(SYSTEM_NODE) ? execFileSync(SYSTEM_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim() : undefined
const [major, minor] = (systemVersion ?? '0.0').split('.').map(Number)
const oldNode = systemVersion != null && (major < 22 || (major === 22 && minor < 12)) ? SYSTEM_NODE : undefined

describe('the nearai launcher (node/cli/bin.mjs)', function () {
  this.timeout(120_000)
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'nearai-launcher-')) })
  after(async () => { await removeDir(dir) })

  it(`runs on the project's Node 22 when started by an older Node (${oldNode != null ? `system Node ${systemVersion}` : 'none here: runs in place'})`, async () => {
    const node = oldNode ?? process.execPath
    // From another working directory: the Node 22 binary is found from the package, not the cwd.
    const r = await runCliWith(node, ['--version'], { cwd: dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, '0.1.0\n')
    assert.equal(r.stderr, '')
    const v = await runCliWith(node, ['config', 'show', '--json', '--home', join(dir, 'h')], { cwd: dir, env: { NEARAI_LOG_LEVEL: 'warn' } })
    assert.equal(v.code, 0, v.stderr)
    assert.equal(JSON.parse(v.stdout).log.level, 'warn', 'arguments and environment reach the re-executed program')
  })

  it('passes the exit code and stderr of a failed command through', async () => {
    const r = await runCliWith(oldNode ?? process.execPath, ['--home', join(dir, 'nohome'), 'dataset', 'ls'], { cwd: dir })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /^nearai: no identity key at .*: run `nearai init --home .*` first\n$/)
    assert.equal(r.stdout, '')
  })

  it('passes SIGTERM on to the re-executed node, which stops cleanly, and leaves no process behind', async () => {
    const home = join(dir, 'signal-home')
    await runCliWith(process.execPath, ['--home', home, 'init'])
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/0'], relayClient: false } }))
    const child = spawn(oldNode ?? process.execPath, [BIN, '--home', home, '--log-format', 'json', 'node', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    const started = new Promise<Record<string, any>>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
        const line = stderr.split('\n').find(l => l.includes('"node started"'))
        if (line != null) resolve(JSON.parse(line))
      })
      child.once('exit', () => { reject(new Error(`exited before starting: ${stderr}`)) })
    })
    const log = await started
    const nodePid = log.pid as number
    if (oldNode != null) assert.notEqual(nodePid, child.pid, 'the node runs in a re-executed child process')
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.once('exit', (code, signal) => { resolve({ code, signal }) }))
    child.kill('SIGTERM')
    const { code } = await exited
    assert.equal(code, 0, stderr.slice(-2000))
    assert.match(stderr, /"stopped cleanly"/)
    assert.throws(() => process.kill(nodePid, 0), /ESRCH/, 'the node process is gone')
    assert.ok(!existsSync(join(home, 'node.lock')), 'the home is unlocked')
  })

  it('says what to do, in one line, when the older Node finds no Node 22 beside the package', async function () {
    // A copy of the launcher outside the package: there is no node_modules/node to re-execute with.
    const copy = join(dir, 'pkg', 'node', 'cli', 'bin.mjs')
    await mkdir(join(dir, 'pkg', 'node', 'cli'), { recursive: true })
    await copyFile(BIN, copy)
    const node = oldNode ?? process.execPath
    const r = await runCliWith(node, ['--version'], { cwd: dir, bin: copy })
    if (oldNode != null) {
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^nearai: needs Node\.js 22\.12 or newer, this is v\d+\.\d+\.\d+; run `npm install` in the nearai folder .* or install Node\.js 22 LTS\n$/)
      assert.equal(r.stdout, '')
    } else {
      // A recent Node runs the copy in place; it fails only because the sources are not beside it.
      assert.notEqual(r.code, 0)
      assert.doesNotMatch(r.stderr, /needs Node\.js/)
    }
  })
})
