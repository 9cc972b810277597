/**
 * What `nearai demo` shows while its peers train: on a terminal, one progress bar per peer (round, loss,
 * group size, bytes) and a summary line (held-out accuracy, bytes exchanged by all, chain anchors, time);
 * elsewhere (pipes, `--log-format json`) one log line per round once every running peer has finished it.
 * It only draws: the peers' parsed log lines come in through `round`, `peerLog`, `exited`, the validators'
 * through `validatorLog` and `validatorExited`.
 */
import cliProgress from 'cli-progress'
import type { Logger } from 'pino'
import type { LogLine } from './peer-process.ts'

export interface LiveViewOptions {
  /** The peers' display names, in the order the other methods index them. */
  peers: string[]
  rounds: number
  logger: Logger
  /** Bars (true) or log lines (false). */
  tty: boolean
  /** Where bars and notes are drawn on a terminal. */
  stream?: NodeJS.WriteStream
  now?: () => number
}

interface PeerView {
  name: string
  round: number
  loss?: number
  group?: number
  bytes: number
  status: string
  warned: Set<string>
}

interface RoundSummary {
  /** Per weights hash: the peers' losses and the held-out accuracy of those weights. */
  byHash: Map<string, { losses: number[], accuracy?: number, group: number }>
  bytesSent: number
  emitted: boolean
}

const MB = 1e6

export class LiveView {
  private readonly peers: PeerView[]
  private readonly perRound = new Map<number, RoundSummary>()
  private readonly finalRounds = new Set<number>()
  private readonly validatorWarned = new Set<string>()
  private readonly started: number
  private readonly now: () => number
  private readonly stream: NodeJS.WriteStream
  private bytesSent = 0
  private accuracy?: number
  private multibar?: cliProgress.MultiBar
  private bars: cliProgress.SingleBar[] = []
  private summary?: cliProgress.SingleBar
  private ticker?: NodeJS.Timeout
  private stopped = false

  constructor (private readonly opts: LiveViewOptions) {
    this.now = opts.now ?? Date.now
    this.started = this.now()
    this.stream = opts.stream ?? process.stderr
    this.peers = opts.peers.map(name => ({ name, round: -1, bytes: 0, status: 'starting', warned: new Set() }))
  }

  /** A step before training (chain, bootstrap node, datasets): a line on the terminal, a log line otherwise. */
  phase (msg: string, fields: Record<string, unknown> = {}): void {
    if (this.opts.tty) this.write(`${msg}\n`)
    else this.opts.logger.info(fields, msg)
  }

  /** Starts the bars (terminal only); call once the peers are starting. */
  start (): void {
    if (!this.opts.tty || this.multibar != null) return
    const width = Math.max(...this.peers.map(p => p.name.length))
    this.multibar = new cliProgress.MultiBar({
      stream: this.stream,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 24,
      autopadding: true,
      format: `{name} [{bar}] round {value}/{total} | loss {loss} | {group} | {mb} MB | {status}`
    }, cliProgress.Presets.shades_classic)
    this.bars = this.peers.map(p => this.multibar!.create(this.opts.rounds, 0, { ...this.payload(p), name: p.name.padEnd(width) }))
    this.summary = this.multibar.create(1, 0, this.summaryPayload(), { format: '{line}' })
    this.ticker = setInterval(() => { this.refreshSummary() }, 1000)
    this.ticker.unref()
  }

  /** A peer's `event: 'round'` line. */
  round (peer: number, line: LogLine): void {
    const p = this.peers[peer]
    const round = Number(line.round)
    p.round = Math.max(p.round, round)
    p.loss = typeof line.loss === 'number' ? line.loss : p.loss
    p.group = typeof line.peers === 'number' ? line.peers : p.group
    const sent = Number(line.bytesSent ?? 0)
    p.bytes += sent + Number(line.bytesReceived ?? 0)
    p.status = 'training'
    this.bytesSent += sent
    if (typeof line.evalAccuracy === 'number') this.accuracy = line.evalAccuracy
    const r = this.perRound.get(round) ?? { byHash: new Map(), bytesSent: 0, emitted: false }
    this.perRound.set(round, r)
    const hash = typeof line.hash === 'string' ? line.hash : ''
    const h = r.byHash.get(hash) ?? { losses: [], group: 0 }
    r.byHash.set(hash, h)
    if (typeof line.loss === 'number') h.losses.push(line.loss)
    if (typeof line.evalAccuracy === 'number') h.accuracy = line.evalAccuracy
    h.group = Math.max(h.group, p.group ?? 0)
    r.bytesSent += sent
    this.opts.logger.debug({ peer: p.name, round, loss: line.loss, peers: line.peers, hash: line.hash, ms: line.ms }, 'peer finished a round')
    this.redraw(peer)
    this.emitRounds()
  }

  /**
   * A line of a validator process (`nearai validator start`): an attestation that made a round final is shown
   * once; rejected checkpoints, warnings and errors are notes.
   */
  validatorLog (name: string, line: LogLine): void {
    const round = Number(line.round)
    if (line.event === 'validator-round' && line.final === true && !this.finalRounds.has(round)) {
      this.finalRounds.add(round)
      const msg = `round ${round + 1} checkpoint final on chain (attested by ${Array.isArray(line.attesters) ? line.attesters.join(', ') : '?'})`
      if (this.opts.tty) this.note(name, msg, 'info')
      else this.opts.logger.info({ event: 'anchor', round, checkpointCid: line.finalCid ?? line.checkpointCid, attesters: line.attesters, evalLoss: line.evalLoss }, msg)
    } else if (line.event === 'validator-verified') {
      this.opts.logger.debug({ validator: name, round, cid: line.cid, evalLoss: line.evalLoss, evalAccuracy: line.evalAccuracy }, 'validator verified a checkpoint')
    } else {
      const level = typeof line.level === 'number' ? line.level : 0
      const key = `${name}\u0000${String(line.msg)}`
      if (level >= 40 && line.msg != null && !this.validatorWarned.has(key)) {
        this.validatorWarned.add(key) // each distinct message once per validator
        this.note(name, `${line.msg}${line.err != null ? `: ${String(line.err)}` : ''}`, level >= 50 ? 'error' : 'warn')
      }
    }
    this.refreshSummary()
  }

  validatorExited (name: string, code: number | null): void {
    if (code !== 0) this.note(name, `exited with code ${String(code)}`, 'error')
  }

  /** Any other line of a peer: warnings and errors are shown (each distinct message once per peer). */
  peerLog (peer: number, line: LogLine): void {
    const p = this.peers[peer]
    if (line.event === 'job-done') { p.status = 'done'; this.redraw(peer); return }
    if (line.msg === 'job data found' && p.status === 'starting') { p.status = 'joined'; this.redraw(peer); return }
    if (line.msg === 'adopted the network state' && typeof line.round === 'number') {
      // Caught up from the network: the peer is at that round without having logged it.
      p.round = Math.max(p.round, line.round)
      p.status = `caught up at round ${line.round + 1}`
      this.redraw(peer)
      this.emitRounds()
      return
    }
    const level = typeof line.level === 'number' ? line.level : 0
    if (level >= 40 && line.msg != null && !p.warned.has(line.msg)) {
      p.warned.add(line.msg)
      const detail = line.err != null ? `: ${typeof line.err === 'string' ? line.err : String(line.err.message ?? JSON.stringify(line.err))}` : ''
      this.note(p.name, `${line.msg}${detail}`, level >= 50 ? 'error' : 'warn')
    }
  }

  exited (peer: number, code: number | null): void {
    const p = this.peers[peer]
    p.status = code === 0 ? (p.status === 'done' ? 'done' : 'stopped') : `exited (${String(code)})`
    this.redraw(peer)
    if (code !== 0) this.note(p.name, `exited with code ${String(code)}`, 'error')
    this.emitRounds()
  }

  /** Stops the bars and the ticker (the bars stay on screen). */
  stop (): void {
    if (this.stopped) return
    this.stopped = true
    if (this.ticker != null) clearInterval(this.ticker)
    if (this.multibar != null) {
      this.refreshSummary()
      this.multibar.stop()
    }
  }

  private note (name: string, msg: string, level: 'info' | 'warn' | 'error'): void {
    const tag = level === 'info' ? '' : ` ${level.toUpperCase()}`
    if (this.multibar != null && !this.stopped) this.multibar.log(`${name}${tag}: ${msg}\n`)
    else if (this.opts.tty) this.write(`${name}${tag}: ${msg}\n`)
    else this.opts.logger[level]({ peer: name }, msg)
  }

  /**
   * Log mode: a line per round once every peer still running is past it (or one peer is beyond it), with the
   * weights most peers reached that round (a peer that fell out of the round's group reports other ones).
   */
  private emitRounds (): void {
    if (this.opts.tty) return
    const running = this.peers.filter(p => !p.status.startsWith('exited') && p.status !== 'done' && p.status !== 'stopped')
    const newest = Math.max(...this.peers.map(p => p.round))
    let cumulative = 0
    for (const round of [...this.perRound.keys()].sort((a, b) => a - b)) {
      const r = this.perRound.get(round)!
      cumulative += r.bytesSent
      if (r.emitted) continue
      if (newest <= round && running.some(p => p.round < round)) return
      r.emitted = true
      const groups = [...r.byHash.values()].sort((a, b) => b.losses.length - a.losses.length)
      const main = groups[0]
      const loss = main.losses.reduce((a, b) => a + b, 0) / Math.max(1, main.losses.length)
      this.opts.logger.info({
        event: 'round',
        round,
        rounds: this.opts.rounds,
        loss: Number(loss.toFixed(4)),
        evalAccuracy: main.accuracy,
        peers: main.group,
        reported: groups.reduce((n, g) => n + g.losses.length, 0),
        distinctHashes: r.byHash.size,
        mbExchanged: Number((cumulative / MB).toFixed(1)),
        elapsedS: Math.round((this.now() - this.started) / 1000)
      }, `round ${round + 1}/${this.opts.rounds}: loss ${loss.toFixed(4)}` +
        `${main.accuracy != null ? `, held-out accuracy ${(main.accuracy * 100).toFixed(2)}%` : ''}, ${(cumulative / MB).toFixed(1)} MB exchanged` +
        `${r.byHash.size > 1 ? ` (peers reached ${r.byHash.size} different weights)` : ''}`)
    }
  }

  private payload (p: PeerView): Record<string, string> {
    return {
      loss: p.loss != null ? p.loss.toFixed(4) : '   -  ',
      group: p.group != null ? `${p.group} peers` : '- peers',
      mb: (p.bytes / MB).toFixed(1).padStart(5),
      status: p.status
    }
  }

  private redraw (peer: number): void {
    const bar = this.bars[peer]
    if (bar == null || this.stopped) return
    const p = this.peers[peer]
    bar.update(p.round + 1, this.payload(p))
  }

  private summaryPayload (): { line: string } {
    const acc = this.accuracy != null ? `${(this.accuracy * 100).toFixed(2)}%` : '-'
    const finals = [...this.finalRounds].sort((a, b) => a - b).map(r => r + 1)
    const chain = finals.length > 0 ? `final on chain: round ${finals.join(', ')}` : 'no final anchor yet'
    const secs = Math.round((this.now() - this.started) / 1000)
    return { line: `held-out accuracy ${acc} | ${(this.bytesSent / MB).toFixed(1)} MB exchanged | ${chain} | ${secs} s` }
  }

  private refreshSummary (): void {
    if (this.summary == null || this.stopped) return
    this.summary.update(0, this.summaryPayload())
  }

  private write (text: string): void {
    this.stream.write(text)
  }
}
