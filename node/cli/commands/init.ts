import type { Command } from 'commander'
import { defaultHome, initHome } from '../../config/home.ts'
import type { GlobalOptions } from '../context.ts'

export function registerInit (program: Command): void {
  program.command('init')
    .description('create the node\'s home: its libp2p identity key (Ed25519, mode 0600, never printed) and a config file')
    .action(async (_opts, cmd: Command) => {
      const home = cmd.optsWithGlobals<GlobalOptions>().home ?? defaultHome()
      const result = await initHome(home)
      process.stdout.write(result.created
        ? `Created ${home}\nPeer id: ${result.peerId}\n`
        : `${home} already initialised (identity kept)\nPeer id: ${result.peerId}\n`)
    })
}
