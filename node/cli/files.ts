/**
 * Checks on the files and folders a command is given, made before it locks the home or fetches anything,
 * so that a typo in a path costs a one-line error, not a download that fails at its last step.
 */
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { UsageError } from './errors.ts'

async function statOrUndefined (path: string): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try { return await stat(path) } catch { return undefined }
}

async function writableDir (dir: string): Promise<boolean> {
  try { await access(dir, constants.W_OK); return true } catch { return false }
}

/** `path` can be created or replaced as a file: its folder exists and is writable, and it is not a folder. */
export async function checkOutputFile (path: string, flag: string): Promise<void> {
  const abs = resolve(path)
  const info = await statOrUndefined(abs)
  if (info?.isDirectory() === true) throw new UsageError(`${flag} ${path}: is a folder, give a file name`)
  const dir = dirname(abs)
  const parent = await statOrUndefined(dir)
  if (parent == null) throw new UsageError(`${flag} ${path}: the folder ${dir} does not exist`)
  if (!parent.isDirectory()) throw new UsageError(`${flag} ${path}: ${dir} is not a folder`)
  if (!await writableDir(dir)) throw new UsageError(`${flag} ${path}: cannot write in ${dir} (permission denied)`)
}

/** `path` is a folder or can be made one (its nearest existing ancestor is a writable folder). */
export async function checkOutputDir (path: string, flag: string): Promise<void> {
  let at = resolve(path)
  for (;;) {
    const info = await statOrUndefined(at)
    if (info != null) {
      if (!info.isDirectory()) throw new UsageError(`${flag} ${path}: ${at === resolve(path) ? 'is a file, not a folder' : `${at} is a file, not a folder`}`)
      if (!await writableDir(at)) throw new UsageError(`${flag} ${path}: cannot write in ${at} (permission denied)`)
      return
    }
    const up = dirname(at)
    if (up === at) return
    at = up
  }
}

/** `path` is a readable file. */
export async function checkInputFile (path: string, what: string): Promise<void> {
  const info = await statOrUndefined(path)
  if (info == null) throw new UsageError(`${what} ${path}: no such file`)
  if (!info.isFile()) throw new UsageError(`${what} ${path}: ${info.isDirectory() ? 'it is a folder, not a file' : 'not a regular file'}`)
  try { await access(path, constants.R_OK) } catch { throw new UsageError(`${what} ${path}: cannot read it (permission denied)`) }
}
