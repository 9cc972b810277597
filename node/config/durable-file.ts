/**
 * Files that survive a crash whole: every file a node reads back after a restart (identity key, config,
 * job records and state pointers, checkpoint folders, fetched datasets) is written to a hidden partial file
 * beside it, fsynced, renamed over the real name, and the folder fsynced, so a kill -9 (or a power cut)
 * leaves the old file or the new one, never half of one. A partial file a killed writer left behind has a
 * name no reader looks for, and `removePartialFiles` clears them when the next owner takes the home.
 */
import { link, open, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** `.name.partial-<pid>-<n>`: hidden, and never a name the code reads. */
const PARTIAL = /^\..+\.partial-\d+-\d+$/
/** blockstore-fs and datastore-fs (through steno) write `.name.tmp` and rename it over `name`. */
const STORE_TEMP = /^\..+\.tmp$/

let counter = 0

export function partialPath (path: string): string {
  return join(dirname(path), `.${basename(path)}.partial-${process.pid}-${counter++}`)
}

/** True for a file name a crashed writer may have left half-written (ours or the block/datastore's). */
export function isPartialFile (name: string): boolean {
  return PARTIAL.test(name) || STORE_TEMP.test(name)
}

/** Fsyncs a folder, so a rename or a new file in it survives a power cut (a kill -9 does not need it). */
export async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/**
 * Writes `path` atomically: partial file, fsync, rename, fsync of the folder. `exclusive`: never replaces an
 * existing file (the partial file is hard-linked to the name, which fails with EEXIST when it is taken), for
 * files that must never change once written, such as the identity key.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o644, opts: { exclusive?: boolean } = {}): Promise<void> {
  const tmp = partialPath(path)
  try {
    const fh = await open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (opts.exclusive === true) {
      await link(tmp, path)
      await rm(tmp)
    } else {
      await rename(tmp, path)
    }
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await syncDir(dirname(path))
}

/**
 * Removes the partial files under `dir` (to `depth` levels of subfolders) that a killed writer left; returns
 * how many. Only the home's owner (who holds its lock) may call it: a live writer's partial file looks the same.
 */
export async function removePartialFiles (dir: string, depth = 0): Promise<number> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return 0
    throw err
  }
  let removed = 0
  for (const e of entries) {
    if (e.isFile() && isPartialFile(e.name)) {
      await rm(join(dir, e.name), { force: true })
      removed++
    } else if (e.isDirectory() && depth > 0) {
      removed += await removePartialFiles(join(dir, e.name), depth - 1)
    }
  }
  return removed
}
