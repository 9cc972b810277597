/**
 * Progress for long operations: a bar on a terminal, a log line every few seconds otherwise (CI, pipes).
 * Library functions report progress events; this is the only place that draws.
 */
import cliProgress from 'cli-progress'
import type { Logger } from 'pino'

export interface Progress {
  update: (done: number, total: number, detail?: string) => void
  stop: () => void
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

export function progressBar (label: string, logger: Logger, unit: 'bytes' | 'count' = 'bytes'): Progress {
  const fmt = (n: number): string => unit === 'bytes' ? formatBytes(n) : String(n)
  if (process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {doneFmt} / {totalFmt} {detail}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false
    }, cliProgress.Presets.shades_classic)
    let started = false
    return {
      update: (done, total, detail = '') => {
        if (!started) { bar.start(Math.max(total, 1), 0, { doneFmt: fmt(0), totalFmt: fmt(total), detail }); started = true }
        bar.setTotal(Math.max(total, 1))
        bar.update(done, { doneFmt: fmt(done), totalFmt: fmt(total), detail })
      },
      stop: () => { if (started) bar.stop() }
    }
  }
  let last = 0
  return {
    update: (done, total, detail) => {
      const now = Date.now()
      if (now - last < 2000 && done < total) return
      last = now
      logger.info({ done, total, detail }, `${label}: ${fmt(done)} / ${fmt(total)}`)
    },
    stop: () => {}
  }
}
