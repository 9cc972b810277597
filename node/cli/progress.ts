/**
 * Progress for long operations: a bar on a terminal, a log line every few seconds otherwise (CI, pipes,
 * `--json`). Library functions report progress events; this is the only place that draws. A total that is
 * not known up front (`undefined`) shows what has been done so far, never a percentage.
 */
import cliProgress from 'cli-progress'
import type { Logger } from 'pino'

export interface Progress {
  update: (done: number, total: number | undefined, detail?: string) => void
  stop: () => void
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

export interface ProgressOptions {
  unit?: 'bytes' | 'count'
  /** No bar (the command prints JSON): progress goes to the log instead. */
  json?: boolean
}

export function progressBar (label: string, logger: Logger, opts: ProgressOptions | 'bytes' | 'count' = {}): Progress {
  const { unit = 'bytes', json = false } = typeof opts === 'string' ? { unit: opts } : opts
  const fmt = (n: number): string => unit === 'bytes' ? formatBytes(n) : String(n)
  if (process.stderr.isTTY === true && !json) {
    const known = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {doneFmt} / {totalFmt} {detail}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false
    }, cliProgress.Presets.shades_classic)
    let started = false
    let open = false
    return {
      update: (done, total, detail = '') => {
        if (total == null) {
          process.stderr.write(`\r${label}: ${fmt(done)} ${detail}\x1b[K`)
          open = true
          return
        }
        if (!started) { known.start(Math.max(total, 1), 0, { doneFmt: fmt(0), totalFmt: fmt(total), detail }); started = true }
        known.setTotal(Math.max(total, 1))
        known.update(done, { doneFmt: fmt(done), totalFmt: fmt(total), detail })
      },
      stop: () => {
        if (started) { known.stop(); started = false }
        if (open) { process.stderr.write('\n'); open = false }
      }
    }
  }
  // The first line comes after 2 s: work that ends sooner needs no progress report.
  let last = Date.now()
  return {
    update: (done, total, detail) => {
      const now = Date.now()
      if (now - last < 2000) return
      last = now
      logger.info({ done, total, detail }, total != null ? `${label}: ${fmt(done)} / ${fmt(total)}` : `${label}: ${fmt(done)} so far`)
    },
    stop: () => {}
  }
}
