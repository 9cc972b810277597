/**
 * A checkpoint as a folder on disk, byte for byte as it is stored on IPFS (checkpoint.json, TensorFlow.js's
 * model.json and weight files, extra files such as the outer momentum): `checkpoint get --out` writes it,
 * `tf.loadLayersModel('file://<dir>/model.json')` loads it, and `checkpoint verify <dir>` re-hashes it to the
 * checkpoint's CID, so a file changed on disk is caught and named.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkpointFiles, type CheckpointFileBytes, type FetchedCheckpoint } from '../storage/checkpoints.ts'
import { CHECKPOINT_MANIFEST_FILE, MAX_CHECKPOINT_MANIFEST_BYTES, decodeCheckpointManifest, type CheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { isPartialFile, writeFileAtomic } from '../config/durable-file.ts'

/** The folder cannot be read as a checkpoint: missing, not a folder, no or a malformed checkpoint.json. */
export class NotACheckpointFolderError extends Error {
  override name = 'NotACheckpointFolderError'
}

/**
 * Writes every file of `checkpoint` into `dir` (created if needed), each atomically and checkpoint.json last,
 * so a folder with a checkpoint.json has every file whole; returns the paths written.
 */
export async function writeCheckpointFolder (checkpoint: FetchedCheckpoint, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  const written: string[] = []
  const files = checkpointFiles(checkpoint)
  for (const file of [...files.filter(f => f.path !== CHECKPOINT_MANIFEST_FILE), ...files.filter(f => f.path === CHECKPOINT_MANIFEST_FILE)]) {
    const path = join(dir, file.path)
    await writeFileAtomic(path, file.content)
    written.push(path)
  }
  return written
}

export interface CheckpointFolder {
  dir: string
  /** Every regular file in the folder (a checkpoint folder has no subfolders). */
  files: CheckpointFileBytes[]
  /** The folder's own checkpoint.json: it says which job and round to look up, nothing it says is trusted. */
  manifest: CheckpointManifest
}

/** Reads a checkpoint folder from disk; NotACheckpointFolderError says why it is not one. */
export async function readCheckpointFolder (dir: string): Promise<CheckpointFolder> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new NotACheckpointFolderError(code === 'ENOENT' ? `no folder ${dir}` : code === 'ENOTDIR' ? `${dir} is not a folder` : `cannot read ${dir}: ${(err as Error).message}`)
  }
  // A partial file a killed `checkpoint get` left behind is no part of the checkpoint.
  entries = entries.filter(e => !(e.isFile() && isPartialFile(e.name)))
  const nested = entries.filter(e => !e.isFile()).map(e => e.name)
  if (nested.length > 0) throw new NotACheckpointFolderError(`${dir} is not a checkpoint folder: it holds ${nested.join(', ')}, a checkpoint folder holds files only`)
  if (!entries.some(e => e.name === CHECKPOINT_MANIFEST_FILE)) throw new NotACheckpointFolderError(`${dir} is not a checkpoint folder: it has no ${CHECKPOINT_MANIFEST_FILE}`)
  const files: CheckpointFileBytes[] = []
  for (const e of entries.sort((a, b) => a.name < b.name ? -1 : 1)) files.push({ path: e.name, content: new Uint8Array(await readFile(join(dir, e.name))) })
  const manifestBytes = files.find(f => f.path === CHECKPOINT_MANIFEST_FILE)!.content
  let manifest: CheckpointManifest
  try {
    if (manifestBytes.byteLength > MAX_CHECKPOINT_MANIFEST_BYTES) throw new InvalidMessageError(`${manifestBytes.byteLength} bytes, over ${MAX_CHECKPOINT_MANIFEST_BYTES}`)
    manifest = decodeCheckpointManifest(manifestBytes, `${CHECKPOINT_MANIFEST_FILE} in ${dir}`)
  } catch (err) {
    throw new NotACheckpointFolderError(`${dir} is not a checkpoint folder: its ${CHECKPOINT_MANIFEST_FILE} is not a checkpoint manifest (${(err as Error).message})`)
  }
  return { dir, files, manifest }
}
