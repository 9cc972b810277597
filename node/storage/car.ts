/**
 * CAR files (Content Addressed aRchives): the format IPFS pinning services accept. Export walks the whole
 * DAG under a root (a dataset manifest takes its shards along) into a temporary file beside the output,
 * renamed into place only once every block is written: a failed or timed-out export leaves no CAR behind.
 * Import checks the file's framing against our bounds (`car-bounds.ts`) and every block against its CID
 * before storing it, since a CAR file is untrusted input, then pins the root.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { once } from 'node:events'
import type { Helia } from '@helia/interface'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarWriter } from '@ipld/car/writer'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { HashMismatchError, InvalidContentError } from './errors.ts'
import { withDeadline, type BoundedFetchOptions } from './fetch.ts'
import { pinDag } from './pins.ts'
import { walkDagBlocks } from './dag.ts'
import { checkCarFraming } from './car-bounds.ts'

export type CarProgressEvents = ProgressEvent<'nearai:car:bytes', { bytes: number }>

export interface ExportCarOptions extends BoundedFetchOptions, ProgressOptions<CarProgressEvents> {}

/** Writes the DAG under `cid` to `outPath` as a CARv1 with `cid` as its one root; nothing at `outPath` on failure. */
export async function exportCar (helia: Helia, cid: CID, outPath: string, opts: ExportCarOptions = {}): Promise<{ bytes: number }> {
  const partial = `${outPath}.partial-${process.pid}`
  let done = false
  try {
    const result = await withDeadline(cid, opts, async (signal, state) => {
      const out = createWriteStream(partial, { flags: 'wx' })
      const failed = new Promise<never>((_resolve, reject) => { out.once('error', reject) })
      failed.catch(() => {})
      await Promise.race([once(out, 'open'), failed]) // an unwritable destination fails before any fetching
      const { writer, out: carBytes } = CarWriter.create([cid])
      let bytes = 0
      let closed = false
      // The CAR's bytes flow to the file while the walk below fetches and adds the blocks.
      const copying = (async () => {
        for await (const chunk of carBytes) {
          bytes += chunk.byteLength
          if (!out.write(chunk)) await Promise.race([once(out, 'drain', { signal }), failed])
          opts.onProgress?.(new CustomProgressEvent('nearai:car:bytes', { bytes }))
        }
      })()
      copying.catch(() => {})
      try {
        // Blocks are fetched here, one at a time, so a missing one fails this call (not a background task).
        for await (const block of walkDagBlocks(helia, cid, { signal, offline: opts.offline })) {
          state.received += block.bytes.byteLength
          await Promise.race([writer.put(block), copying]) // a failed write (disk full) ends the export too
        }
        closed = true
        await writer.close()
        await copying
      } finally {
        if (!closed) await writer.close().catch(() => {})
        out.end()
        await Promise.race([once(out, 'close'), failed.catch(() => {})])
      }
      return { bytes }
    })
    await rename(partial, outPath)
    done = true
    return result
  } finally {
    if (!done) await rm(partial, { force: true })
  }
}

export interface ImportCarOptions extends ProgressOptions<CarProgressEvents> {
  signal?: AbortSignal
  /** Pin the root (default true). */
  pin?: boolean
}

/** Imports a CAR file; returns its root CID (pinned unless `pin: false`). */
export async function importCar (helia: Helia, carPath: string, opts: ImportCarOptions = {}): Promise<{ root: CID, blocks: number, bytes: number }> {
  const info = await stat(carPath).catch(() => undefined)
  if (info == null || !info.isFile()) throw new InvalidContentError(carPath, `${carPath}: ${info == null ? 'no such file' : 'not a file'}`)
  // A file that is not a CAR (or a truncated one) makes the CAR decoder throw its own messages: say what it is.
  const notACar = (err: unknown): Error => (err instanceof HashMismatchError || opts.signal?.aborted === true)
    ? err as Error
    : new InvalidContentError(carPath, `${carPath} is not a valid CAR file (${info.size} bytes; ${firstLine(err)})`, { cause: err })
  await checkCarFraming(carPath, info.size)
  let iterator: CarBlockIterator
  let roots: CID[]
  try {
    iterator = await CarBlockIterator.fromIterable(createReadStream(carPath, { signal: opts.signal }) as AsyncIterable<Uint8Array>)
    roots = await iterator.getRoots() as CID[]
  } catch (err) {
    throw notACar(err)
  }
  if (roots.length !== 1) throw new InvalidContentError(carPath, `${carPath}: expected one root, the CAR has ${roots.length}`)
  const root = CID.asCID(roots[0]) ?? CID.decode(roots[0].bytes)
  let blocks = 0
  let bytes = 0
  const reading = iterator[Symbol.asyncIterator]()
  while (true) {
    let next: IteratorResult<{ cid: CID, bytes: Uint8Array }>
    try {
      next = await reading.next() as IteratorResult<{ cid: CID, bytes: Uint8Array }>
    } catch (err) {
      throw notACar(err)
    }
    if (next.done === true) break
    const block = next.value
    opts.signal?.throwIfAborted()
    const cid = CID.decode(block.cid.bytes)
    let hasher
    try {
      hasher = await helia.getHasher(cid.multihash.code)
    } catch (err) {
      throw new InvalidContentError(cid, `${carPath}: block ${cid.toString()} is hashed with multihash 0x${cid.multihash.code.toString(16)}, which this node cannot verify (${firstLine(err)})`, { cause: err })
    }
    const digest = await hasher.digest(block.bytes)
    if (Buffer.compare(digest.digest, cid.multihash.digest) !== 0) {
      throw new HashMismatchError(cid, `${carPath}: block ${cid.toString()} does not match its CID`, Buffer.from(cid.multihash.digest).toString('hex'), Buffer.from(digest.digest).toString('hex'))
    }
    await helia.blockstore.put(cid, block.bytes, { signal: opts.signal })
    blocks++
    bytes += block.bytes.byteLength
    opts.onProgress?.(new CustomProgressEvent('nearai:car:bytes', { bytes }))
  }
  if (blocks === 0) throw new InvalidContentError(carPath, `${carPath} holds no blocks, not even its root ${root.toString()} (an export that did not finish?)`)
  if (opts.pin !== false) {
    // Everything should be in the file: pin offline, so a partial CAR fails instead of hanging on the network.
    await pinDag(helia, root, { signal: opts.signal, offline: true, metadata: { kind: 'car' } }).catch(err => {
      throw new InvalidContentError(root, `${carPath}: the CAR does not hold the whole DAG under ${root.toString()} (${firstLine(err)})`, { cause: err })
    })
  }
  return { root, blocks, bytes }
}

function firstLine (err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]
}
