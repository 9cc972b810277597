/**
 * What every command needs: the node's home, its effective configuration (file < env < flags) and a logger.
 */
import type { Command } from 'commander'
import { defaultHome } from '../config/home.ts'
import { loadConfig, setPath } from '../config/load.ts'
import type { NodeConfig } from '../config/schema.ts'
import { createLogger, type Logger } from '../log/logger.ts'

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

export function flagsToOverrides (values: Record<string, unknown>, map: FlagMap): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [flag, path] of Object.entries(map)) {
    if (values[flag] !== undefined) setPath(out, path, values[flag])
  }
  return out
}

export async function commandContext (cmd: Command, flags: Record<string, unknown> = {}): Promise<CommandContext> {
  const globals = cmd.optsWithGlobals<GlobalOptions>()
  const home = globals.home ?? defaultHome()
  const overrides = flagsToOverrides({ ...globals }, { logLevel: ['log', 'level'], logFormat: ['log', 'format'] })
  const config = await loadConfig({ home, flags: deepMerge(overrides, flags) })
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
