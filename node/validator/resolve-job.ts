/**
 * Which job a validator follows: `--job` as `node start` takes it (a spec file, a job known to the home, a
 * spec CID), or the id of a job on chain, whose spec the chain names by CID and IPFS delivers.
 */
import { existsSync } from 'node:fs'
import type { Helia } from '@helia/interface'
import type { Ledger } from '../chain/ledger.ts'
import { resolveJob } from '../job/job-ref.ts'
import { loadJob, type StoredJob } from '../job/job-store.ts'
import { JOB_ID_PATTERN } from '../../protocol/topics.ts'

export async function resolveValidatorJob (home: string, helia: Helia, ledger: Ledger, ref: string, opts: { timeoutMs?: number } = {}): Promise<StoredJob> {
  const local = JOB_ID_PATTERN.test(ref) && !existsSync(ref) && !ref.endsWith('.json') ? await loadJob(home, ref) : undefined
  if (local == null && JOB_ID_PATTERN.test(ref) && !existsSync(ref) && !ref.endsWith('.json')) {
    const onChain = await ledger.getJob(ref)
    if (onChain != null) return await resolveJob(home, helia, onChain.spec_cid, opts)
  }
  return await resolveJob(home, helia, ref, opts)
}
