import { Option, type Command } from 'commander'
import type { FlagMap } from '../context.ts'

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').filter(Boolean)]
const int = (value: string): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got "${value}"`)
  return n
}

/** Flags shared by `node start` and `bootstrap start`, mapped onto config paths. */
export function addNetworkFlags (cmd: Command): FlagMap {
  cmd.addOption(new Option('--listen <multiaddr>', 'listen address (repeatable or comma-separated)').argParser(collect))
    .addOption(new Option('--announce <multiaddr>', 'address to announce to others (repeatable)').argParser(collect))
    .addOption(new Option('--bootstrap <multiaddr>', 'bootstrap node to dial, ending in /p2p/<peer-id> (repeatable)').argParser(collect))
    .addOption(new Option('--max-connections <n>', 'connection manager cap').argParser(int))
  return { listen: ['network', 'listen'], announce: ['network', 'announce'], bootstrap: ['network', 'bootstrap'], maxConnections: ['network', 'maxConnections'] }
}

export { int }
