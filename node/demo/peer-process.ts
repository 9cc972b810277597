/**
 * A `nearai node start` child process whose JSON log lines are parsed as they arrive: what the demo draws
 * its live view from, and what multi-process tests assert on.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const NEARAI_BIN = fileURLToPath(new URL('../cli/bin.mjs', import.meta.url))

export type LogLine = Record<string, any> & { msg?: string }

export class PeerProcess {
  readonly logs: LogLine[] = []
  readonly exited: Promise<number | null>
  private readonly child: ChildProcess
  private readonly listeners = new Set<(line: LogLine) => void>()
  private readonly waiters = new Set<() => void>()
  private stderrTail = ''

  /**
   * `logFile`: every line the process writes is also appended there (for a post-mortem). `prefix`: a command
   * that runs the node, e.g. `ip netns exec <namespace>` (it must exec the node, so the pid is the node's).
   */
  constructor (readonly name: string, args: string[], opts: { env?: NodeJS.ProcessEnv, logFile?: string, prefix?: string[] } = {}) {
    // stdin stays open as a lifeline: `--exit-with-stdin` peers shut down when this process ends, however it ends.
    const lifeline = args.includes('--exit-with-stdin')
    const command = [...(opts.prefix ?? []), process.execPath, NEARAI_BIN, '--log-format', 'json', ...args]
    this.child = spawn(command[0], command.slice(1), { env: { ...process.env, ...opts.env }, stdio: [lifeline ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    const file: WriteStream | undefined = opts.logFile != null ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined
    let buffered = ''
    const onData = (d: Buffer): void => {
      file?.write(d)
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const text of lines) {
        if (text.trim() === '') continue
        let line: LogLine
        try { line = JSON.parse(text) } catch { line = { msg: text, raw: true } }
        this.logs.push(line)
        if (line.raw === true) this.stderrTail = (this.stderrTail + text + '\n').slice(-4000)
        for (const l of this.listeners) l(line)
      }
      for (const w of [...this.waiters]) w()
    }
    this.child.stderr!.on('data', onData)
    this.child.stdout!.on('data', onData)
    // 'close' (the process ended and its pipes are read to the end), not 'exit': the last lines would be lost.
    this.exited = new Promise(resolve => this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => { for (const w of [...this.waiters]) w(); file?.end(); resolve(code ?? (signal != null ? -1 : null)) }))
  }

  get pid (): number | undefined { return this.child.pid }
  get running (): boolean { return this.child.exitCode == null && this.child.signalCode == null }

  onLog (listener: (line: LogLine) => void): void { this.listeners.add(listener) }

  /** Resolves with the first log line (already seen or yet to come) that `match` accepts. */
  async waitFor (match: (line: LogLine) => boolean, timeoutMs: number, what = 'log line'): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const hit = this.logs.find(match)
      if (hit != null) return hit
      if (!this.running) {
        // Its last lines may still be in the pipe when the exit is seen: read them to the end before judging.
        await this.exited
        const last = this.logs.find(match)
        if (last != null) return last
        throw new Error(`${this.name} exited before ${what}; last lines: ${JSON.stringify(this.logs.slice(-6))}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${timeoutMs} ms; last lines: ${JSON.stringify(this.logs.slice(-6))}`)
      await new Promise<void>(resolve => {
        const done = (): void => { clearTimeout(timer); this.waiters.delete(done); resolve() }
        const timer = setTimeout(done, Math.min(left, 1000))
        this.waiters.add(done)
      })
    }
  }

  rounds (): LogLine[] { return this.logs.filter(l => l.event === 'round') }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal)
  }
}
