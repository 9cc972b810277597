/**
 * Jobs on this node: `<home>/jobs/<id>/job.json` holds a job's spec and the CID it has on IPFS, and
 * `<home>/jobs/<id>/state.json` points at the last global state this node completed (round, state CID,
 * weights hash), so a restarted node resumes from its own blockstore before catching up with the network.
 * Files are replaced atomically (write, fsync, rename): a crash leaves the old or the new one, never half.
 */
import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { JobSpec, parseJobSpec } from '../training/job-spec.ts'
import { InvalidSpecError } from '../training/model-spec.ts'
import { JOB_ID_PATTERN, Sha256Hex } from '../../protocol/primitives.ts'
import { writeFileAtomic as writeHomeFileAtomic } from '../config/home.ts'

export class JobNotFoundError extends Error {
  override name = 'JobNotFoundError'
}

const StoredJob = z.object({ spec: JobSpec, specCid: z.string().min(1) }).strict()
export type StoredJob = z.infer<typeof StoredJob>

const StatePointer = z.object({
  round: z.number().int().min(-1),
  cid: z.string().min(1),
  weightsSha256: Sha256Hex
}).strict()
export type StatePointer = z.infer<typeof StatePointer>

export function jobDir (home: string, id: string): string {
  if (!JOB_ID_PATTERN.test(id)) throw new TypeError(`invalid job id "${id}": use 1-64 letters, digits, '.', '_' or '-'`)
  return join(home, 'jobs', id)
}

async function writeFileAtomic (path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeHomeFileAtomic(path, text)
}

async function readJson (path: string): Promise<unknown | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`)
  }
}

export async function saveJob (home: string, job: StoredJob): Promise<string> {
  const path = join(jobDir(home, job.spec.id), 'job.json')
  await writeFileAtomic(path, JSON.stringify(job, null, 2) + '\n')
  return path
}

export async function loadJob (home: string, id: string): Promise<StoredJob | undefined> {
  const path = join(jobDir(home, id), 'job.json')
  const value = await readJson(path)
  if (value == null) return undefined
  const r = StoredJob.safeParse(value)
  if (!r.success) throw new Error(`${path} is not a valid job record: ${r.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  return { spec: parseJobSpec(r.data.spec), specCid: r.data.specCid }
}

export async function saveStatePointer (home: string, job: string, pointer: StatePointer): Promise<void> {
  await writeFileAtomic(join(jobDir(home, job), 'state.json'), JSON.stringify(StatePointer.parse(pointer)) + '\n')
}

export async function loadStatePointer (home: string, job: string): Promise<StatePointer | undefined> {
  const path = join(jobDir(home, job), 'state.json')
  const value = await readJson(path)
  if (value == null) return undefined
  const r = StatePointer.safeParse(value)
  if (!r.success) throw new Error(`${path} is not a valid state pointer`)
  return r.data
}

/** A job spec is a small JSON document (job-ref's MAX_JOB_SPEC_BYTES bounds one fetched from IPFS the same way). */
const MAX_JOB_SPEC_FILE_BYTES = 256 * 1024

/** Reads and validates a job spec file (JSON). */
export async function readJobSpecFile (path: string): Promise<JobSpec> {
  let text: string
  try {
    const size = (await stat(path)).size
    if (size > MAX_JOB_SPEC_FILE_BYTES) throw new JobNotFoundError(`job spec ${path} is ${size} bytes, over the limit of ${MAX_JOB_SPEC_FILE_BYTES}: is it a job spec?`)
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (err instanceof JobNotFoundError) throw err
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : (err as Error).message
    throw new JobNotFoundError(`cannot read job spec ${path}: ${why}`)
  }
  return parseJobSpecJson(text, path)
}

/** Parses and validates a job spec's JSON text; `source` (a path, a CID) names it in errors. */
export function parseJobSpecJson (text: string, source: string): JobSpec {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    // JSON.parse quotes the text around the error, newlines included: keep the message on one line.
    throw new InvalidSpecError(`job spec ${source} is not valid JSON: ${(err as Error).message.replace(/\s+/g, ' ')}`)
  }
  return parseJobSpec(value)
}
