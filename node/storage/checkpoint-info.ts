/**
 * A checkpoint's own description, without its weights: `checkpoint.json` (job, round, parent, metrics,
 * weights hash, files) read from the checkpoint folder, bounded like every fetch. `nearai checkpoint show`
 * prints it, and `checkpoint get` reads it first so that a CID that is no checkpoint is named as such
 * before anything large is fetched.
 */
import type { Helia } from '@helia/interface'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { CHECKPOINT_MANIFEST_FILE, MAX_CHECKPOINT_MANIFEST_BYTES, decodeCheckpointManifest, type CheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { InvalidContentError } from './errors.ts'
import { readSmallFile, withDeadline, type BoundedFetchOptions } from './fetch.ts'

/** Errors of the UnixFS exporter that mean "this DAG has no checkpoint.json", as opposed to "not fetched". */
const NOT_A_FOLDER_WITH_MANIFEST = new Set(['BadPathError', 'NotFoundError', 'NotUnixFSError', 'NoResolverError'])

export async function getCheckpointManifest (helia: Helia, cid: CID, opts: BoundedFetchOptions = {}): Promise<CheckpointManifest> {
  if (cid.code === dagCbor.code) {
    throw new InvalidContentError(cid, `${cid.toString()} is not a checkpoint but dag-cbor (a dataset manifest?): \`nearai dataset show\` shows datasets`)
  }
  const bytes = await withDeadline(cid, opts, async (signal, state) => {
    try {
      return await readSmallFile(helia, cid, { signal, state, maxBytes: MAX_CHECKPOINT_MANIFEST_BYTES, path: CHECKPOINT_MANIFEST_FILE, offline: opts.offline, what: CHECKPOINT_MANIFEST_FILE })
    } catch (err) {
      if (NOT_A_FOLDER_WITH_MANIFEST.has((err as Error).name)) {
        throw new InvalidContentError(cid, `${cid.toString()} is not a checkpoint: it holds no ${CHECKPOINT_MANIFEST_FILE}`, { cause: err })
      }
      throw err
    }
  })
  try {
    return decodeCheckpointManifest(bytes, `${CHECKPOINT_MANIFEST_FILE} of ${cid.toString()}`)
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new InvalidContentError(cid, `${cid.toString()} is not a valid checkpoint: ${err.message}`, { cause: err })
    throw err
  }
}
