import { Option, type Command } from 'commander'
import { statSync } from 'node:fs'
import { commandContext } from '../context.ts'
import { int } from './network-flags.ts'
import { parseCid } from './dataset.ts'
import { withHomeNode } from '../../peer/with-node.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import { serveChain, openLedger, type LedgerConfig } from '../../chain/index.ts'
import { getCheckpoint } from '../../storage/checkpoints.ts'
import { anchoredFrom, verifyCheckpoint, verifyCheckpointFolder } from '../../checkpoints/verify.ts'
import { writeCheckpointFolder } from '../../checkpoints/folder.ts'

function isDirectory (path: string): boolean {
  try { return statSync(path).isDirectory() } catch { return false }
}

function ledgerConfig (home: string, opts: { chain: string, account: string, contract?: string, rpcUrl?: string }): LedgerConfig {
  if (opts.chain === 'dev') return { network: 'dev', home, accountId: opts.account, contractId: opts.contract }
  if (!['testnet', 'mainnet', 'custom'].includes(opts.chain)) throw new Error(`--chain must be dev, testnet, mainnet or custom, not "${opts.chain}"`)
  if (opts.contract == null) throw new Error(`--contract is required with --chain ${opts.chain}`)
  return { network: opts.chain as 'testnet' | 'mainnet' | 'custom', accountId: opts.account, contractId: opts.contract, rpcUrl: opts.rpcUrl }
}

function addChainFlags (cmd: Command): Command {
  return cmd
    .addOption(new Option('--chain <network>', 'dev (the embedded chain under <home>/chain), testnet, mainnet or custom').default('dev'))
    .option('--account <id>', 'NEAR account that signs (its key: near-cli credentials, or the dev chain\'s built-in keys)', 'alice.test')
    .option('--contract <id>', 'the NearAI contract account (dev: nearai.test)')
    .option('--rpc-url <url>', 'JSON-RPC endpoint for --chain custom')
}

export function registerChain (program: Command): void {
  const chain = program.command('chain').description('the ledger: the embedded NEAR-compatible dev chain')
  chain.command('serve')
    .description('serve the embedded dev chain as a NEAR JSON-RPC endpoint (near-api-js and near-cli can use it)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .addOption(new Option('--port <port>', 'port').default(3030).argParser(int))
    .action(async (opts: { host: string, port: number }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      const shutdown = gracefulShutdown(ctx.logger)
      const server = await serveChain({ home: ctx.home, host: opts.host, port: opts.port })
      shutdown.defer(server.close)
      ctx.logger.info({ url: server.url }, 'dev chain serving JSON-RPC')
      process.stdout.write(`${server.url}\n`)
      await shutdown.done
    })

  const checkpoint = program.command('checkpoint').description('model checkpoints on IPFS, anchored on chain')
  checkpoint.command('get <cid>')
    .description('fetch a checkpoint (every file checked against its manifest) and write it as a TensorFlow.js model folder')
    .requiredOption('--out <dir>', 'output folder (model.json, weight files, checkpoint.json)')
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(120_000, '120').argParser((v: string) => int(v) * 1000))
    .action(async (cidText: string, opts: { out: string, timeout: number }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai checkpoint get', async (node) => {
        const c = await getCheckpoint(node.helia, cid, { timeoutMs: opts.timeout })
        // Byte for byte as on IPFS: `checkpoint verify <dir>` re-hashes the folder to this CID.
        await writeCheckpointFolder(c, opts.out)
        process.stdout.write(`job ${c.manifest.job} round ${c.manifest.round}, weights sha256 ${c.manifest.weights.sha256} (verified), written to ${opts.out}\n`)
      })
    })
  addChainFlags(checkpoint.command('verify <cid-or-folder>')
    .description('check a whole checkpoint against its final anchor on chain: every file (checkpoint.json, model.json, weights)\n' +
      'must hash to the anchored checkpoint CID and weights hash; names each file that differs. Takes a checkpoint CID\n' +
      '(fetched from IPFS) or a folder written by `checkpoint get --out`. Exit 0 only when it matches')
    .addOption(new Option('--timeout <seconds>', 'give up fetching after this long').default(120_000, '120').argParser((v: string) => int(v) * 1000)))
    .action(async (target: string, opts: { timeout: number, chain: string, account: string, contract?: string, rpcUrl?: string }, cmd: Command) => {
      const folder = isDirectory(target)
      const cid = folder ? undefined : parseCid(target)
      const ctx = await commandContext(cmd)
      const ledger = await openLedger(ledgerConfig(ctx.home, opts))
      try {
        await withHomeNode(ctx, 'nearai checkpoint verify', async (node) => {
          const outcome = cid != null
            ? await verifyCheckpoint(node.helia, ledger, cid, { timeoutMs: opts.timeout })
            : await verifyCheckpointFolder(target, ledger, anchoredFrom(node.helia, { timeoutMs: opts.timeout }))
          if (outcome.ok) {
            process.stdout.write(`OK: ${cid != null ? `checkpoint ${cid.toString()}` : `folder ${target}`} matches the final anchor of job ${outcome.job} round ${outcome.round}: ` +
              `checkpoint ${outcome.checkpointCid}, weights sha256 ${outcome.weightsSha256} (attested by ${outcome.attesters.join(', ')}${outcome.dissenters.length > 0 ? `; outvoted: ${outcome.dissenters.join(', ')}` : ''})\n`)
          } else {
            process.stdout.write(`FAILED (${outcome.reason}): ${outcome.message}\n`)
            process.exitCode = 2
          }
        })
      } finally {
        await ledger.close()
      }
    })
}
