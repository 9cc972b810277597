import { Option, type Command } from 'commander'
import { commandContext, flagsToOverrides } from '../context.ts'
import { addNetworkFlags } from './network-flags.ts'
import { port } from '../arg-parsers.ts'
import { BOOTSTRAP_LISTEN } from '../../config/schema.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import { lockHome } from '../../peer/home-lock.ts'

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...value.split(',').map(v => v.trim()).filter(Boolean)]

export function registerBootstrap (program: Command): void {
  const bootstrap = program.command('bootstrap').description('operate a bootstrap node (DHT server, relay, pinning; no training)')
  const start = bootstrap.command('start')
    .description('start an always-on bootstrap node with /metrics and /healthz')
    .addOption(new Option('--metrics-host <host>', 'address of the /metrics and /healthz endpoint'))
    .addOption(new Option('--metrics-port <port>', 'port of the /metrics and /healthz endpoint (0 picks a free one)').argParser(port))
    .addOption(new Option('--pin <cid>', 'dataset manifest CID to fetch and keep pinned (repeatable or comma-separated; replaces bootstrap.pin)').argParser(collect))
  const map = { ...addNetworkFlags(start, BOOTSTRAP_LISTEN.join(',')), metricsHost: ['bootstrap', 'metricsHost'], metricsPort: ['bootstrap', 'metricsPort'], pin: ['bootstrap', 'pin'] }
  start.action(async (opts: Record<string, unknown>, cmd: Command) => {
    const flags = flagsToOverrides(opts, map)
    // Peers find a bootstrap node at a fixed address: unless configured otherwise it keeps port 4010.
    const ctx = await commandContext(cmd, flags, { flagMap: map, defaults: { network: { listen: BOOTSTRAP_LISTEN } } })
    const { parsePinnedDatasets, startBootstrapNode } = await import('../../../bootstrap/bootstrap-node.ts')
    parsePinnedDatasets(ctx.config.bootstrap.pin) // a bad CID fails here, before the home is locked
    const shutdown = gracefulShutdown(ctx.logger)
    try {
      const lock = await lockHome(ctx.home, 'nearai bootstrap start')
      shutdown.defer(lock.release)
      const node = await startBootstrapNode(ctx)
      shutdown.defer(node.stop)
    } catch (err) {
      await shutdown.unwind() // nothing half-started keeps running, the home is unlocked
      throw err
    }
    await shutdown.done
  })
}
