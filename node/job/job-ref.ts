/**
 * What `--job` names: a job spec file (JSON), a job already known to this node (`nearai job create`), or the
 * CID of a job spec on IPFS. Every spec is validated, stored on IPFS (pinned) and recorded under the home.
 */
import { statSync } from 'node:fs'
import type { Helia } from '@helia/interface'
import { unixfs } from '@helia/unixfs'
import { CID } from 'multiformats/cid'
import type { JobSpec } from '../training/job-spec.ts'
import { unixfsImportOptions } from '../storage/import-options.ts'
import { pinDag } from '../storage/pins.ts'
import { readSmallFile, withDeadline } from '../storage/fetch.ts'
import { JOB_ID_PATTERN } from '../../protocol/topics.ts'
import { JobNotFoundError, loadJob, parseJobSpecJson, readJobSpecFile, saveJob, type StoredJob } from './job-store.ts'

export const MAX_JOB_SPEC_BYTES = 256 * 1024

/** Adds a validated spec to IPFS (pinned) and records it under the home; returns the stored job. */
export async function createJob (home: string, helia: Helia, spec: JobSpec): Promise<StoredJob> {
  const bytes = new TextEncoder().encode(JSON.stringify(spec, null, 2) + '\n')
  const cid = await unixfs(helia).addBytes(bytes, unixfsImportOptions())
  return await recordJob(home, helia, spec, cid)
}

/** Pins the spec's DAG and records the job under the home. */
async function recordJob (home: string, helia: Helia, spec: JobSpec, cid: CID): Promise<StoredJob> {
  await pinDag(helia, cid, { metadata: { kind: 'job-spec', job: spec.id } })
  const job = { spec, specCid: cid.toString() }
  await saveJob(home, job)
  return job
}

function isRegularFile (path: string): boolean {
  try { return statSync(path).isFile() } catch { return false }
}

function parseCid (ref: string): CID | undefined {
  try { return CID.parse(ref) } catch { return undefined }
}

/**
 * What `--job` names, checked without a network: a job this home knows, a spec file (read and validated),
 * or a CID (fetched later). Anything else is JobNotFoundError now, before a node starts.
 */
export type JobRef =
  | { kind: 'known', job: StoredJob }
  | { kind: 'file', path: string, spec: JobSpec }
  | { kind: 'cid', cid: CID }

export async function parseJobRef (home: string, ref: string): Promise<JobRef> {
  // A job this node knows wins over a file or folder of the same name in the working directory.
  if (JOB_ID_PATTERN.test(ref)) {
    const known = await loadJob(home, ref)
    if (known != null) return { kind: 'known', job: known }
  }
  if (ref.endsWith('.json') || isRegularFile(ref)) return { kind: 'file', path: ref, spec: await readJobSpecFile(ref) }
  const cid = parseCid(ref)
  if (cid == null) {
    throw new JobNotFoundError(`no job "${ref}": not a spec file, not a job of this node (see \`nearai job ls\`, \`nearai job create --spec job.json\`), not a CID`)
  }
  return { kind: 'cid', cid }
}

/** Completes a JobRef on a node: records a spec file's job (its spec added to IPFS), fetches a CID's spec. */
export async function materializeJob (home: string, helia: Helia, ref: JobRef, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<StoredJob> {
  switch (ref.kind) {
    case 'known': return ref.job
    case 'file': return await createJob(home, helia, ref.spec)
    case 'cid': {
      const cid = ref.cid
      const bytes = await withDeadline(cid, opts, async (signal, state) =>
        await readSmallFile(helia, cid, { signal, state, maxBytes: MAX_JOB_SPEC_BYTES, what: 'job spec' }))
      return await recordJob(home, helia, parseJobSpecJson(new TextDecoder().decode(bytes), cid.toString()), cid)
    }
  }
}

/** Resolves `ref` (path, known job id, or spec CID) to a stored job. */
export async function resolveJob (home: string, helia: Helia, ref: string, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<StoredJob> {
  return await materializeJob(home, helia, await parseJobRef(home, ref), opts)
}
