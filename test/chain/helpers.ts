import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { defaultGenesis, type GenesisConfig } from '../../node/chain/index.ts'
import { REMOVE_DIR_OPTIONS } from '../helpers/temp-dir.ts'

export const hex32 = (c: string): string => c.repeat(64).slice(0, 64)

export async function devGenesis (): Promise<GenesisConfig> {
  return defaultGenesis({ contractCode: readFileSync(await ensureContractBuilt()), genesisTimeMs: 1_700_000_000_000 })
}

export function tempDir (): { dir: string, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nearai-chain-'))
  return { dir, remove: () => rmSync(dir, REMOVE_DIR_OPTIONS) }
}

/** A clock that advances one second per reading: deterministic block timestamps. */
export function steppingClock (start = 1_700_000_000_000): () => number {
  let t = start
  return () => (t += 1000)
}
