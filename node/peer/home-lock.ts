/**
 * One process at a time owns a node's home: two processes with one identity would be two nodes with the
 * same PeerId, and two writers on one blockstore. The lock file holds the owner's pid; a lock whose pid is
 * gone (a crash, kill -9) is stale and taken over. Taking the home also clears the partial files a killed
 * writer left (`removePartialFiles`): in the home and its job records always, and in the block and data
 * stores when the lock was stale (only a crash leaves them there, and sweeping the stores' folders costs more).
 */
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { removePartialFiles } from '../config/durable-file.ts'
import { homeDataDir } from './home-store.ts'
import { HomeError } from '../config/errors.ts'

export class HomeLockedError extends Error {
  override name = 'HomeLockedError'
}

export interface HomeLock {
  release: () => Promise<void>
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function lockHome (home: string, purpose: string): Promise<HomeLock> {
  const path = join(home, 'node.lock')
  let stale = false
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(JSON.stringify({ pid: process.pid, purpose, since: new Date().toISOString() }))
      await fh.close()
      await removeLeftovers(home, stale)
      let released = false
      return { release: async () => { if (!released) { released = true; await rm(path, { force: true }) } } }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new HomeError(`no node home at ${home}: run \`nearai init --home ${home}\` first`)
      if (code === 'EACCES' || code === 'EROFS') throw new HomeError(`cannot write in ${home} (${code === 'EACCES' ? 'permission denied' : 'read-only file system'}): a node needs its home writable`)
      if (code !== 'EEXIST') throw err
      let holder: { pid?: number, purpose?: string } = {}
      try { holder = JSON.parse(await readFile(path, 'utf8')) } catch {}
      if (holder.pid != null && holder.pid !== process.pid && alive(holder.pid)) {
        throw new HomeLockedError(`${home} is in use by process ${holder.pid} (${holder.purpose ?? 'a node'}): stop it first, or use another --home`)
      }
      await rm(path, { force: true }) // stale: its owner is gone
      stale = true
    }
  }
  throw new HomeLockedError(`could not lock ${home}`)
}

/** Removes what writers killed mid-write left in `home` (the caller holds its lock, so no writer is live). */
async function removeLeftovers (home: string, stores: boolean): Promise<number> {
  let removed = await removePartialFiles(home) + await removePartialFiles(join(home, 'jobs'), 1)
  if (stores) {
    // blockstore-fs shards blocks one folder deep; datastore-fs keys (/pins/<cid>, ...) nest a few levels.
    removed += await removePartialFiles(join(homeDataDir(home), 'blocks'), 1)
    removed += await removePartialFiles(join(homeDataDir(home), 'datastore'), 4)
  }
  return removed
}
