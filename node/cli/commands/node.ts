import { Option, type Command } from 'commander'
import { commandContext, flagsToOverrides } from '../context.ts'
import { addNetworkFlags } from './network-flags.ts'
import { startNodeFromHome } from '../../peer/start-peer.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import { lockHome } from '../../peer/home-lock.ts'

export function registerNode (program: Command): void {
  const node = program.command('node').description('run a peer node')
  const start = node.command('start')
    .description('start a peer: join the network through the bootstrap list, serve the DHT, gossip, and (with --job) train')
    .addOption(new Option('--no-dht-server', 'stay a DHT client (for peers that others cannot dial)'))
    .addOption(new Option('--no-relay-client', 'do not reserve a circuit relay slot on bootstrap nodes'))
  const map = addNetworkFlags(start)
  start.action(async (opts: Record<string, unknown>, cmd: Command) => {
    const flags = flagsToOverrides(opts, {
      ...map,
      // commander sets negatable flags to true by default; only an explicit --no-* should override the config.
      ...(opts.dhtServer === false ? { dhtServer: ['network', 'dhtServer'] } : {}),
      ...(opts.relayClient === false ? { relayClient: ['network', 'relayClient'] } : {})
    })
    const ctx = await commandContext(cmd, flags)
    const shutdown = gracefulShutdown(ctx.logger)
    const lock = await lockHome(ctx.home, 'nearai node start')
    shutdown.defer(lock.release)
    const peer = await startNodeFromHome({ ...ctx, role: 'peer' })
    shutdown.defer(async () => { await peer.stop() })
    await shutdown.done
  })
}
