/**
 * One process at a time may own a chain directory: two writers appending to one journal would
 * interleave blocks. The lock is a file holding the owner's pid; a lock left by a dead process
 * (kill -9) is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export class ChainLockedError extends Error {
  override name = 'ChainLockedError'
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

export function lockChainDir (dir: string): () => void {
  const path = join(dir, 'LOCK')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => { rmSync(path, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(path, 'utf8'))
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new ChainLockedError(`chain directory ${dir} is in use by process ${pid}`)
      rmSync(path, { force: true }) // stale: its owner died
    }
  }
  throw new ChainLockedError(`could not lock chain directory ${dir}`)
}
