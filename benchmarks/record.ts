/**
 * Runs a benchmark and records the run: `benchmarks/results/<name>-<YYYY-MM-DD>.txt` gets a header (date,
 * machine, load, Node version, git commit, command) and the benchmark's whole output, stdout and stderr as
 * they came. Figures quoted in README.md and benchmarks/README.md are taken from such files only.
 *
 *   node --import tsx benchmarks/record.ts <name> -- <command> [args...]
 *   npm run bench:record -- allreduce -- node --import tsx benchmarks/allreduce.ts --sizes 16,64 --peers 2
 *
 * The output is also passed through to the terminal. The exit code is the benchmark's; a failed run is still
 * recorded (its last line says so), under the same name, so a bad run is never mistaken for a good one.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { cpus, freemem, loadavg, totalmem, release, type as osType } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const RESULTS = join(fileURLToPath(new URL('.', import.meta.url)), 'results')
const NAME = /^[a-z0-9][a-z0-9-]{0,63}$/

function usage (message: string): never {
  process.stderr.write(`record: ${message}\nusage: node --import tsx benchmarks/record.ts <name> -- <command> [args...]\n`)
  process.exit(2)
}

function gitCommit (): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== ''
    return dirty ? `${head} (with uncommitted changes)` : head
  } catch {
    return 'unknown (not a git checkout)'
  }
}

function osName (): string {
  try {
    const text = execFileSync('cat', ['/etc/os-release'], { encoding: 'utf8' })
    return /^PRETTY_NAME="?([^"\n]+)"?/m.exec(text)?.[1] ?? `${osType()} ${release()}`
  } catch {
    return `${osType()} ${release()}`
  }
}

export function header (name: string, command: string[], started: Date): string {
  const cpu = cpus()
  const gib = (n: number): string => (n / 2 ** 30).toFixed(1)
  return [
    `# benchmark: ${name}`,
    `# date: ${started.toISOString()}`,
    `# machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown cpu'}), ${gib(totalmem())} GiB memory (${gib(freemem())} free), ${osName()}`,
    `# load average at start (1, 5, 15 min): ${loadavg().map(l => l.toFixed(2)).join(', ')}`,
    `# node: ${process.version} (${process.execPath})`,
    `# commit: ${gitCommit()}`,
    `# command: ${command.join(' ')}`,
    ''
  ].join('\n')
}

/** `<base>.txt`, or `<base>-2.txt`, `-3`... when a run of the same name was already recorded that day: no run is overwritten. */
async function freshPath (base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const path = n === 1 ? `${base}.txt` : `${base}-${n}.txt`
    try { await access(path) } catch { return path }
  }
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const name = args[0]
  const sep = args.indexOf('--')
  if (name == null || name === '--') usage('missing the run\'s name')
  if (!NAME.test(name)) usage(`name "${name}" must be lowercase letters, digits and dashes`)
  if (sep !== 1 || args.length < 3) usage('the command follows "--"')
  const command = args.slice(2)
  const started = new Date()
  await mkdir(RESULTS, { recursive: true })
  const file = await freshPath(join(RESULTS, `${name}-${started.toISOString().slice(0, 10)}`))
  const out = createWriteStream(file, { flags: 'wx' })
  out.write(header(name, command, started))
  const child = spawn(command[0], command.slice(1), { stdio: ['inherit', 'pipe', 'pipe'] })
  child.stdout.on('data', (b: Buffer) => { process.stdout.write(b); out.write(b) })
  child.stderr.on('data', (b: Buffer) => { process.stderr.write(b); out.write(b) })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { child.kill(sig) })
  const code = await new Promise<number>((resolve) => {
    child.on('error', (err) => { out.write(`\nrecord: could not start ${command[0]}: ${err.message}\n`); resolve(127) })
    child.on('close', (c, signal) => { resolve(c ?? (signal != null ? 128 : 1)) })
  })
  const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(1)
  out.write(`\n# finished: ${new Date().toISOString()}, ${seconds} s, exit code ${code}${code === 0 ? '' : ' (FAILED RUN: do not quote its figures)'}\n`)
  await new Promise<void>(resolve => out.end(resolve))
  process.stderr.write(`record: ${file}\n`)
  process.exitCode = code
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
