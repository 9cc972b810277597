/** Runs the real `nearai` program in a child process, as a user would, and reads its JSON logs. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../node/cli/bin.mjs', import.meta.url))

export interface RunningCli {
  child: ChildProcess
  logs: Array<Record<string, any>>
  stdout: () => string
  /** Resolves with the first log line whose `msg` equals `msg`. */
  waitForLog: (msg: string, timeoutMs?: number) => Promise<Record<string, any>>
  exited: Promise<number | null>
}

export function startCli (args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, '--log-format', 'json', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: Array<Record<string, any>> = []
  let out = ''
  let buffered = ''
  const waiters: Array<() => void> = []
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString()
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      try { logs.push(JSON.parse(line)) } catch { logs.push({ msg: line, raw: true }) }
    }
    waiters.splice(0).forEach(w => { w() })
  })
  const exited = new Promise<number | null>(resolve => child.once('close', (code: number | null) => { resolve(code) }))
  const waitForLog = async (msg: string, timeoutMs = 60_000): Promise<Record<string, any>> => {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const hit = logs.find(l => l.msg === msg)
      if (hit != null) return hit
      if (Date.now() > deadline || child.exitCode != null) throw new Error(`no "${msg}" log within ${timeoutMs} ms; logs: ${JSON.stringify(logs.slice(-5))}`)
      await new Promise<void>(resolve => { waiters.push(resolve); setTimeout(resolve, 200) })
    }
  }
  return { child, logs, stdout: () => out, waitForLog, exited }
}

export interface CliResult { code: number | null, stdout: string, stderr: string }

export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return await runCliWith(process.execPath, args, { env })
}

/** Runs `bin` (the nearai launcher by default) with the Node.js binary `node`, from `cwd`. */
export async function runCliWith (node: string, args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string, bin?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  // A variable set to undefined is removed (the child does not inherit it), not passed as "undefined".
  const env = Object.fromEntries(Object.entries({ ...process.env, ...opts.env }).filter(([, v]) => v !== undefined))
  const child = spawn(node, [opts.bin ?? BIN, ...args], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // A command that hangs is a failure to report, not a test that never ends.
  const timer = opts.timeoutMs != null ? setTimeout(() => { stderr += `\n[killed after ${opts.timeoutMs} ms]`; child.kill('SIGKILL') }, opts.timeoutMs) : undefined
  // 'close', not 'exit': a process can exit before its pipes are read to the end, and the last line on
  // stderr (often the one a test checks) would be lost.
  const code = await new Promise<number | null>(resolve => child.once('close', (c: number | null) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}
