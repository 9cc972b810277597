/**
 * Picks the fastest TensorFlow.js backend this machine can load: CUDA (tfjs-node-gpu), native CPU
 * (tfjs-node), WebAssembly, then pure JS. The native packages are not installed with nearai (their install
 * downloads libtensorflow from outside the npm registry): a user installs one with
 * `npm install @tensorflow/tfjs-node` (or `-gpu`). They are imported dynamically when present, and their
 * absence or failure to load is reported, not fatal.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as tf from '@tensorflow/tfjs'

export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu'
export interface BackendChoice { name: BackendName, reason: string, tried: Array<{ name: BackendName, error: string }> }

export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError'
}

const ORDER: BackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']

/** The native packages, and whether each is installed (resolvable from here). */
export const NATIVE_BACKENDS = ['tfjs-node-gpu', 'tfjs-node'] as const

export function isInstalled (name: typeof NATIVE_BACKENDS[number]): boolean {
  try {
    createRequire(import.meta.url).resolve(`@tensorflow/${name}`)
    return true
  } catch {
    return false
  }
}

async function load (name: BackendName): Promise<void> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      if (!isInstalled(name)) throw new Error(`not installed (npm install @tensorflow/${name} adds it)`)
      // A variable specifier keeps TypeScript from requiring the (absent) optional package's types.
      const pkg: string = `@tensorflow/${name}`
      await import(pkg)
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tensorflow backend did not initialise')
      return
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm')
      // In Node, load the .wasm binaries from the package's dist folder on disk rather than a URL.
      const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'))
      wasm.setWasmPaths(join(dist, '/'))
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise')
      return
    }
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise')
  }
}

export async function selectBackend (options: { force?: BackendName } = {}): Promise<BackendChoice> {
  const tried: BackendChoice['tried'] = []
  const candidates = options.force !== undefined ? [options.force] : ORDER
  for (const name of candidates) {
    try {
      await load(name)
      await tf.ready()
      const reason = options.force !== undefined
        ? `forced ${name}`
        : tried.length === 0 ? `${name} is the fastest available` : `${name}: faster backends unavailable (${tried.map(t => t.name).join(', ')})`
      return { name, reason, tried }
    } catch (err) {
      tried.push({ name, error: (err as Error).message.split('\n')[0] })
    }
  }
  if (options.force !== undefined) throw new BackendUnavailableError(`backend ${options.force} is not available: ${tried[0]?.error ?? 'unknown'}`)
  throw new BackendUnavailableError(`no TensorFlow.js backend could be loaded: ${JSON.stringify(tried)}`)
}
