/**
 * Loads the effective configuration: defaults, then `<home>/config.json`, then `NEARAI_*` environment
 * variables, then flags. Environment names are derived from the config paths: `network.maxConnections`
 * is `NEARAI_NETWORK_MAX_CONNECTIONS`; lists are comma-separated.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NodeConfig } from './schema.ts'
import { ConfigError } from './errors.ts'

export const CONFIG_FILE = 'config.json'

export { ConfigError }

/** Where a configuration value came from, for errors that tell the user what to fix. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default'

type Json = string | number | boolean | null | Json[] | { [k: string]: Json }
type Overrides = Record<string, unknown>

export function envName (path: string[]): string {
  return 'NEARAI_' + path.map(p => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')
}

/** Every leaf path of the configuration, with its default value (which tells how to parse strings). */
export function configLeaves (value: unknown = NodeConfig.parse({}), prefix: string[] = []): Array<{ path: string[], sample: unknown }> {
  if (value != null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => configLeaves(v, [...prefix, k]))
  }
  return [{ path: prefix, sample: value }]
}

function parseEnvValue (raw: string, sample: unknown, name: string): unknown {
  if (Array.isArray(sample)) return raw.split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (typeof sample === 'number') {
    const n = Number(raw)
    if (!Number.isFinite(n)) throw new ConfigError(`${name}="${raw}" is not a number`)
    return n
  }
  if (typeof sample === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    throw new ConfigError(`${name}="${raw}" is not a boolean (use true or false)`)
  }
  return raw
}

export function envOverrides (env: NodeJS.ProcessEnv): Overrides {
  const out: Overrides = {}
  for (const { path, sample } of configLeaves()) {
    const name = envName(path)
    const raw = env[name]
    if (raw !== undefined) setPath(out, path, parseEnvValue(raw, sample, name))
  }
  return out
}

export function setPath (target: Overrides, path: string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    if (node[key] == null || typeof node[key] !== 'object') node[key] = {}
    node = node[key] as Overrides
  }
  node[path[path.length - 1]] = value
}

function merge (base: Overrides, over: Overrides): Overrides {
  const out: Overrides = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue
    const b = out[k]
    out[k] = (v != null && typeof v === 'object' && !Array.isArray(v) && b != null && typeof b === 'object' && !Array.isArray(b))
      ? merge(b as Overrides, v as Overrides)
      : v
  }
  return out
}

export async function readConfigFile (home: string): Promise<Overrides> {
  const file = join(home, CONFIG_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {}
    if (code === 'ENOTDIR') throw new ConfigError(`the home ${home} is not a folder (give --home a folder)`)
    throw new ConfigError(`cannot read ${file}: ${code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message}`)
  }
  try {
    const json = JSON.parse(text) as Json
    if (json == null || typeof json !== 'object' || Array.isArray(json)) throw new Error('top level must be an object')
    return json as Overrides
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message.replace(/\s+/g, ' ')}`)
  }
}

export interface LoadConfigOptions {
  home: string
  env?: NodeJS.ProcessEnv
  /** Flag values, as a partial config tree. */
  flags?: Overrides
  /** A command's own defaults, below the config file (a bootstrap node's fixed listen port). */
  defaults?: Overrides
  /** The flag that sets each config path (`network.bootstrap` → `--bootstrap`), to name it in errors. */
  flagNames?: Record<string, string>
}

export async function loadConfig ({ home, env = process.env, flags = {}, defaults = {}, flagNames = {} }: LoadConfigOptions): Promise<NodeConfig> {
  const fromFile = await readConfigFile(home)
  const fromEnv = envOverrides(env)
  const merged = merge(merge(merge(defaults, fromFile), fromEnv), flags)
  const result = NodeConfig.safeParse(merged)
  if (result.success) return result.data
  // Name where each bad value came from: the user fixes a flag, a variable or a file, not a "configuration".
  const leaves = configLeaves().map(l => l.path)
  const problems = result.error.issues.map(issue => {
    const path = issue.path.map(String)
    const leaf = leaves.find(l => l.every((k, i) => path[i] === k)) ?? path
    const field = path.length > 0 ? path.join('.') : '(top level)'
    if (hasPath(flags, path)) return `${flagNames[leaf.join('.')] ?? `the flag for ${leaf.join('.')}`}: ${issue.message}`
    if (hasPath(fromEnv, path)) return `${envName(leaf)}: ${issue.message}`
    if (hasPath(fromFile, path) || issue.code === 'unrecognized_keys') return `${join(home, CONFIG_FILE)} ${field}: ${issue.message}`
    return `${field}: ${issue.message}`
  })
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`)
}

/** Whether `tree` holds a value at `path` (or at the start of it: the value that holds the bad part). */
function hasPath (tree: unknown, path: string[]): boolean {
  if (path.length === 0) return false
  let node = tree
  for (const key of path) {
    if (node == null || typeof node !== 'object') return true
    if (!(key in (node as Record<string, unknown>))) return false
    node = (node as Record<string, unknown>)[key]
  }
  return node !== undefined
}
