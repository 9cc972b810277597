import type { Command } from 'commander'
import { defaultHome, initHome } from '../../config/home.ts'
import { homeOf, type GlobalOptions } from '../context.ts'
import { outputFor, withJsonFlag } from '../output.ts'

export function registerInit (program: Command): void {
  withJsonFlag(program.command('init')
    .description('create the node\'s home: its libp2p identity key (Ed25519, mode 0600, never printed) and a config file'))
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const home = homeOf(cmd.optsWithGlobals<GlobalOptions>(), defaultHome)
      const result = await initHome(home)
      outputFor(opts).result(result, result.created
        ? `Created ${home}\nPeer id: ${result.peerId}`
        : `${home} already initialised (identity kept)\nPeer id: ${result.peerId}`)
    })
}
