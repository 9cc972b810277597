import { Option, type Command } from 'commander'
import { existsSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { commandContext } from '../context.ts'
import { parseCheckpointCid, parseCid, port, timeoutSeconds } from '../arg-parsers.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { checkOutputDir } from '../files.ts'
import { anchorStatus, describeAnchorStatus, type AnchorStatus } from '../anchor-status.ts'
import { localFirst, withHomeNode, withHomeSession } from '../../peer/with-node.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import type { LedgerConfig } from '../../chain/index.ts'
import type { CheckpointManifest } from '../../../protocol/checkpoint-manifest.ts'

// The chain client and the storage layer load when a command runs, not when its arguments are parsed.
const chainLib = async (): Promise<typeof import('../../chain/index.ts')> => await import('../../chain/index.ts')
const openLedger: typeof import('../../chain/index.ts').openLedger = async (config) => await (await chainLib()).openLedger(config)

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
    .addOption(new Option('--port <port>', 'port (0 picks a free one)').default(3030).argParser(port))
    .action(async (opts: { host: string, port: number }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      // The address is tried before the chain is opened: a chain opened for a server that cannot start
      // would stay locked by this process until it exits.
      await probeListen(opts.host, opts.port)
      const shutdown = gracefulShutdown(ctx.logger)
      let server: Awaited<ReturnType<typeof import('../../chain/index.ts').serveChain>>
      try {
        server = await (await chainLib()).serveChain({ home: ctx.home, host: opts.host, port: opts.port })
      } catch (err) {
        await shutdown.unwind()
        throw listenError(err, opts.host, opts.port)
      }
      shutdown.defer(server.close)
      ctx.logger.info({ url: server.url }, 'dev chain serving JSON-RPC')
      process.stdout.write(`${server.url}\n`)
      await shutdown.done
    })

  const checkpoint = program.command('checkpoint').description('model checkpoints on IPFS, anchored on chain')
  withJsonFlag(checkpoint.command('get <cid>')
    .description('fetch a checkpoint (every file checked against its manifest) and write it as a TensorFlow.js model folder')
    .requiredOption('--out <dir>', 'output folder (model.json, weight files, checkpoint.json) (required)')
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(120_000, '120').argParser(timeoutSeconds)))
    .action(async (cidText: string, opts: { out: string, timeout: number, json?: boolean }, cmd: Command) => {
      const cid = parseCheckpointCid(cidText)
      await checkOutputDir(opts.out, '--out')
      const ctx = await commandContext(cmd)
      const c = await withHomeSession(ctx, 'nearai checkpoint get', async (session) =>
        await localFirst(session, `checkpoint ${cid.toString()}`, async ({ helia, offline }) => {
          // getCheckpoint reads checkpoint.json first: a folder that is no checkpoint is named as such before anything large is fetched.
          return await (await import('../../storage/checkpoints.ts')).getCheckpoint(helia, cid, { offline, timeoutMs: opts.timeout })
        }))
      // Byte for byte as on IPFS: `checkpoint verify <dir>` re-hashes the folder to this CID.
      await (await import('../../checkpoints/folder.ts')).writeCheckpointFolder(c, opts.out)
      const files = ['checkpoint.json', c.manifest.model.path, ...c.manifest.weights.files.map(f => f.path), ...c.manifest.extraFiles.map(f => f.path)]
      outputFor(opts).result({ cid, job: c.manifest.job, round: c.manifest.round, weightsSha256: c.manifest.weights.sha256, verified: true, out: opts.out, files },
        `job ${c.manifest.job} round ${c.manifest.round}, weights sha256 ${c.manifest.weights.sha256} (verified), written to ${opts.out}`)
    })

  withJsonFlag(addChainFlags(checkpoint.command('show <cid>')
    .description('show a checkpoint\'s checkpoint.json (job, round, parent, metrics, weights hash, files) without fetching its ' +
      'weights, and its anchor on chain: final, a candidate, not anchored, or the chain unreachable')
    .addOption(new Option('--timeout <seconds>', 'give up fetching checkpoint.json after this long').default(120_000, '120').argParser(timeoutSeconds))))
    .action(async (cidText: string, opts: { timeout: number, chain: string, account: string, contract?: string, rpcUrl?: string, json?: boolean }, cmd: Command) => {
      const cid = parseCheckpointCid(cidText)
      const config = ledgerConfig('', opts) // a bad --chain fails before anything is fetched
      const ctx = await commandContext(cmd)
      const manifest = await withHomeSession(ctx, 'nearai checkpoint show', async (session) =>
        await localFirst(session, `checkpoint ${cid.toString()}`, async ({ helia, offline }) =>
          (await (await import('../../storage/checkpoints.ts')).getCheckpointManifest(helia, cid, { offline, timeoutMs: opts.timeout })).manifest))
      const anchor = await readAnchorStatus(config.network === 'dev' ? { ...config, home: ctx.home } : config, cid.toString(), manifest)
      outputFor(opts).result({ cid, ...checkpointDocument(manifest), anchor }, () => describeCheckpoint(cid.toString(), manifest, anchor))
    })

  withJsonFlag(addChainFlags(checkpoint.command('verify <cid-or-folder>')
    .description('check a whole checkpoint against its final anchor on chain: every file (checkpoint.json, model.json, weights) ' +
      'must hash to the anchored checkpoint CID and weights hash; names each file that differs. Takes a checkpoint CID ' +
      '(fetched from IPFS) or a folder written by `checkpoint get --out`. Exit 0 only when it matches')
    .addOption(new Option('--timeout <seconds>', 'give up fetching after this long').default(120_000, '120').argParser(timeoutSeconds))))
    .action(async (target: string, opts: { timeout: number, chain: string, account: string, contract?: string, rpcUrl?: string, json?: boolean }, cmd: Command) => {
      const folder = isDirectory(target)
      const cid = folder ? undefined : parseCid(target)
      const ctx = await commandContext(cmd)
      const { anchoredFrom, verifyCheckpoint, verifyCheckpointFolder } = await import('../../checkpoints/verify.ts')
      const ledger = await openLedger(ledgerConfig(ctx.home, opts))
      try {
        await withHomeNode(ctx, 'nearai checkpoint verify', async (node) => {
          const outcome = cid != null
            ? await verifyCheckpoint(node.helia, ledger, cid, { timeoutMs: opts.timeout })
            : await verifyCheckpointFolder(target, ledger, anchoredFrom(node.helia, { timeoutMs: opts.timeout }))
          outputFor(opts).result({ ...(cid != null ? { cid } : { folder: target }), ...outcome }, outcome.ok
            ? `OK: ${cid != null ? `checkpoint ${cid.toString()}` : `folder ${target}`} matches the final anchor of job ${outcome.job} round ${outcome.round}: ` +
              `checkpoint ${outcome.checkpointCid}, weights sha256 ${outcome.weightsSha256} (attested by ${outcome.attesters.join(', ')}${outcome.dissenters.length > 0 ? `; outvoted: ${outcome.dissenters.join(', ')}` : ''})`
            : `FAILED (${outcome.reason}): ${outcome.message}`)
          if (!outcome.ok) process.exitCode = 2
        })
      } finally {
        await ledger.close()
      }
    })
}

/**
 * The anchor of the checkpoint's round, read from the chain named by the chain flags. A dev chain that was
 * never created in this home anchors nothing (and is not created by looking); any failure to read the
 * chain is the status `chain-unreachable`.
 */
async function readAnchorStatus (config: LedgerConfig, cid: string, m: CheckpointManifest): Promise<AnchorStatus> {
  const where = { job: m.job, round: m.round }
  if (config.network === 'dev' && !existsSync(join(config.home, 'chain'))) {
    return { status: 'not-anchored', detail: `this home has no dev chain (${join(config.home, 'chain')}); use the chain flags to ask another chain` }
  }
  let ledger
  try {
    ledger = await openLedger(config)
  } catch (err) {
    return { status: 'chain-unreachable', detail: (err as Error).message.split('\n')[0] }
  }
  try {
    return anchorStatus(await ledger.getAnchor(m.job, m.round), cid, m.weights.sha256, where)
  } catch (err) {
    return { status: 'chain-unreachable', detail: (err as Error).message.split('\n')[0] }
  } finally {
    await ledger.close()
  }
}

function checkpointDocument (m: CheckpointManifest): Record<string, unknown> {
  return {
    job: m.job,
    round: m.round,
    parent: m.parent,
    metrics: m.metrics,
    weightsSha256: m.weights.sha256,
    weightsBytes: m.weights.bytes,
    files: [m.model, ...m.weights.files, ...m.extraFiles].map(f => ({ path: f.path, bytes: f.bytes, sha256: f.sha256 })),
    totalBytes: m.totalBytes
  }
}

function describeCheckpoint (cid: string, m: CheckpointManifest, anchor: AnchorStatus): string[] {
  const metrics = Object.entries(m.metrics).map(([k, v]) => `${k} ${v}`).join(', ')
  return [
    `checkpoint ${cid}`,
    `job       ${m.job}`,
    `round     ${m.round}`,
    `parent    ${m.parent ?? '(none: the first checkpoint)'}`,
    `weights   sha256 ${m.weights.sha256}, ${m.weights.bytes} bytes in ${m.weights.files.length} file(s)`,
    ...(metrics.length > 0 ? [`metrics   ${metrics}`] : []),
    `files     ${1 + m.weights.files.length + m.extraFiles.length}, ${m.totalBytes} bytes`,
    `anchor    ${describeAnchorStatus(anchor)}`
  ]
}

/** Fails, with the flag to change, unless a server can listen on host:port now. */
async function probeListen (host: string, port: number): Promise<void> {
  const server = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, resolve)
    })
  } catch (err) {
    throw listenError(err, host, port)
  }
  await new Promise<void>(resolve => server.close(() => { resolve() }))
}

function listenError (err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') return new Error(`cannot serve on ${host}:${port}: the port is in use; choose another with --port`)
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new Error(`cannot serve on ${host}:${port}: ${host} is not an address of this machine; choose another with --host`)
  if (code === 'EACCES') return new Error(`cannot serve on ${host}:${port}: ports below 1024 need privileges; choose another with --port`)
  return err
}
