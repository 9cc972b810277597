/**
 * What every command needs: the node's home, its effective configuration (file < env < flags) and a logger.
 * The configuration's schema and the logger load when a command runs (a second on a busy machine), not
 * when the program starts: a mistyped flag is reported at once.
 */
import { resolve } from 'node:path'
import type { Command } from 'commander'
import type { NodeConfig } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import { UsageError } from './errors.ts'

export interface GlobalOptions {
  home?: string
  logLevel?: string
  logFormat?: string
}

export interface CommandContext {
  home: string
  config: NodeConfig
  logger: Logger
}

/** Maps a command's flag values onto config paths; `undefined` flags leave the lower layers in force. */
export type FlagMap = Record<string, string[]>

function setPath (target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    if (node[key] == null || typeof node[key] !== 'object') node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1]] = value
}

export function flagsToOverrides (values: Record<string, unknown>, map: FlagMap): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [flag, path] of Object.entries(map)) {
    if (values[flag] !== undefined) setPath(out, path, values[flag])
  }
  return out
}

/** The home folder from --home (or NEARAI_HOME), absolute; an empty one would silently be the working directory. */
export function homeOf (globals: GlobalOptions, defaultHome: () => string): string {
  if (globals.home != null && globals.home.trim() === '') throw new UsageError('--home (or NEARAI_HOME) is empty: give the node\'s home folder')
  return resolve(globals.home ?? defaultHome())
}

export interface ContextOptions {
  /** The command's flags → config paths, so that a bad value is reported under its flag's name. */
  flagMap?: FlagMap
  /** The command's own defaults, below the config file (`bootstrap start` listens on a fixed port). */
  defaults?: Record<string, unknown>
}

const LOG_FLAGS: FlagMap = { logLevel: ['log', 'level'], logFormat: ['log', 'format'] }

/** `--max-connections` for the option key `maxConnections`. */
export function flagName (key: string): string {
  return '--' + key.replace(/[A-Z]/g, c => '-' + c.toLowerCase())
}

export async function commandContext (cmd: Command, flags: Record<string, unknown> = {}, opts: ContextOptions = {}): Promise<CommandContext> {
  const [{ defaultHome }, { loadConfig }, { createLogger }] = await Promise.all([import('../config/home-layout.ts'), import('../config/load.ts'), import('../log/logger.ts')])
  const globals = cmd.optsWithGlobals<GlobalOptions>()
  const home = homeOf(globals, defaultHome)
  const overrides = flagsToOverrides({ ...globals }, LOG_FLAGS)
  const flagNames = Object.fromEntries(Object.entries({ ...LOG_FLAGS, ...opts.flagMap }).map(([key, path]) => [path.join('.'), flagName(key)]))
  const config = await loadConfig({ home, flags: deepMerge(overrides, flags), defaults: opts.defaults, flagNames })
  const logger = createLogger({ level: config.log.level, format: config.log.format })
  return { home, config, logger }
}

function deepMerge (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k]
    out[k] = cur != null && typeof cur === 'object' && v != null && typeof v === 'object' && !Array.isArray(v)
      ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
      : v
  }
  return out
}
