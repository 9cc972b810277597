/**
 * Compiles the AssemblyScript contracts to wasm that NEAR accepts: MVP features only (no bulk-memory,
 * sign-extension, non-trapping float-to-int, mutable-global imports; SIMD, threads and reference types
 * are off by default in asc), stub runtime, optimized. Run with `npm run build:contract`.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

export const CONTRACT_WASM = join(here, 'build', 'nearai.wasm')
export const RELAY_FIXTURE_WASM = join(here, 'build', 'relay.wasm')

const TARGETS: Array<{ entry: string, out: string }> = [
  { entry: join(here, 'assembly', 'index.ts'), out: CONTRACT_WASM },
  { entry: join(here, 'assembly', 'test-fixtures', 'relay.ts'), out: RELAY_FIXTURE_WASM }
]

export class ContractBuildError extends Error {
  override name = 'ContractBuildError'
}

/** Compiles every contract; returns the output paths. */
export async function buildContracts (): Promise<string[]> {
  const asc = await import('assemblyscript/asc')
  mkdirSync(join(here, 'build'), { recursive: true })
  for (const t of TARGETS) {
    let stderrText = ''
    const { error } = await asc.main([
      t.entry,
      '--outFile', t.out,
      '--runtime', 'stub',
      '--optimizeLevel', '3',
      '--shrinkLevel', '1',
      '--noAssert',
      '--disable', 'bulk-memory',
      '--disable', 'sign-extension',
      '--disable', 'nontrapping-f2i',
      '--disable', 'mutable-globals'
    ], {
      stderr: { write (s: string | Uint8Array) { stderrText += String(s); return true } } as any
    })
    if (error != null) throw new ContractBuildError(`asc failed for ${t.entry}: ${error.message}\n${stderrText}`)
  }
  return TARGETS.map(t => t.out)
}

/** Newest modification time of the AssemblyScript sources. */
function newestSourceMs (dir = join(here, 'assembly')): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestSourceMs(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Builds the contracts when the wasm is missing or older than its sources (tests call this; CI starts from a clean clone). */
export async function ensureContractBuilt (): Promise<string> {
  const outs = [CONTRACT_WASM, RELAY_FIXTURE_WASM]
  const stale = outs.some(o => !existsSync(o)) || Math.min(...outs.map(o => statSync(o).mtimeMs)) < newestSourceMs()
  if (stale) await buildContracts()
  return CONTRACT_WASM
}

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildContracts().then(outs => { for (const o of outs) process.stdout.write(`${o}\n`) }, err => { process.stderr.write(`${(err as Error).message}\n`); process.exit(1) })
}
