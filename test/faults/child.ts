/**
 * A child process of the fault tests that reports what it did as JSON lines on stdout, and the seeded kill
 * -9 that ends it: the kill lands a seeded random time after the child said it was ready.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sleep } from '../../node/time/clock.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const nodeBin = join(root, 'node_modules', '.bin', 'node')

export type ChildEvent = Record<string, any> & { event: string }

export class ReportingChild {
  readonly events: ChildEvent[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private readonly child: ChildProcess
  private stderr = ''
  private readonly startedAt = Date.now()

  /**
   * `script`: a file under test/ run with tsx; `raw`: stdout lines are plain text, each one `{ event: 'line', text }`;
   * `prefix`: a command that execs the node (`ip netns exec <ns>`); `stdin`: keep a pipe open for `send`.
   */
  constructor (script: string, args: string[], private readonly raw = false, opts: { prefix?: string[], stdin?: boolean } = {}) {
    const command = [...(opts.prefix ?? []), nodeBin, '--import', 'tsx', join(root, script), ...args]
    this.child = spawn(command[0], command.slice(1), { cwd: root, stdio: [opts.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    let buf = ''
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n'); buf = lines.pop()!
      for (const l of lines) if (l.trim() !== '') this.events.push(this.raw ? { event: 'line', text: l } : JSON.parse(l))
    })
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000) })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  /** Writes a line to the child's stdin (started with `stdin: true`). */
  send (line: string): void { this.child.stdin?.write(line + '\n') }

  /** Closes the child's stdin (a child that exits on end of input then exits). */
  endInput (): void { this.child.stdin?.end() }

  get running (): boolean { return this.child.exitCode == null && this.child.signalCode == null }

  /** Waits for the first event named `event`; fails if the child exits first. Returns it and the ms since spawn. */
  async waitFor (event: string, timeoutMs: number): Promise<{ event: ChildEvent, afterMs: number }> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const hit = this.events.find(e => e.event === event)
      if (hit != null) return { event: hit, afterMs: Date.now() - this.startedAt }
      if (!this.running) throw new Error(`child exited before "${event}": ${this.stderr}`)
      if (Date.now() > deadline) throw new Error(`no "${event}" within ${timeoutMs} ms: ${this.stderr}`)
      await sleep(20)
    }
  }

  /** SIGKILL now; fails if the child had already ended by itself (a crash of its own is a finding). */
  async kill9 (): Promise<void> {
    if (!this.running) throw new Error(`child ended before its kill: ${this.stderr}`)
    this.child.kill('SIGKILL')
    const { signal } = await this.exited
    if (signal !== 'SIGKILL') throw new Error(`child ended by itself (${signal ?? 'exit'}) before its kill: ${this.stderr}`)
  }
}
