import { Option, type Command } from 'commander'
import type { FlagMap } from '../context.ts'
import { int, positiveInt } from '../arg-parsers.ts'

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').map(v => v.trim()).filter(Boolean)]

/**
 * Flags shared by `node start` and `bootstrap start`, mapped onto config paths. Addresses are checked with
 * the rest of the configuration (config file and environment too), and a bad one is reported under its flag.
 */
export function addNetworkFlags (cmd: Command, defaultListen = 'any free port'): FlagMap {
  cmd.addOption(new Option('--listen <multiaddr>', `listen address (repeatable or comma-separated; default ${defaultListen})`).argParser(collect))
    .addOption(new Option('--announce <multiaddr>', 'address to announce to others (repeatable)').argParser(collect))
    .addOption(new Option('--bootstrap <multiaddr>', 'bootstrap node to dial, ending in /p2p/<peer-id> (repeatable)').argParser(collect))
    .addOption(new Option('--max-connections <n>', 'connection manager cap').argParser(positiveInt))
  return { listen: ['network', 'listen'], announce: ['network', 'announce'], bootstrap: ['network', 'bootstrap'], maxConnections: ['network', 'maxConnections'] }
}

export { int }
