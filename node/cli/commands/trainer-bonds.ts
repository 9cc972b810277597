/**
 * Trainer bonds from the command line: `job register-trainer`, `job trainers`, `job deregister-trainer`,
 * `job withdraw-bond` and `validator report-cheat`. They sign with the configured chain account (config `chain`,
 * or --account) and print the contract's answer, checked like every chain result.
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import { commandContext, flagsToOverrides, type CommandContext } from '../context.ts'
import { int } from '../arg-parsers.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { ConfigError } from '../../config/load.ts'
import { formatNear, parseNear } from '../../chain/near-amount.ts'
import type { Ledger, Trainer } from '../../chain/index.ts'

const chainLib = async (): Promise<typeof import('../../chain/index.ts')> => await import('../../chain/index.ts')

/** A NEAR amount flag ("1", "0.5") as yoctoNEAR. */
export function nearAmount (value: string): bigint {
  try {
    return parseNear(value)
  } catch {
    throw new InvalidArgumentError('expected an amount of NEAR, e.g. 1 or 0.5 (at most 24 decimals)')
  }
}

function reasonArg (value: string): string {
  if (value.trim().length === 0 || value.length > 256) throw new InvalidArgumentError('expected 1..256 characters saying what the trainer did')
  return value
}

export const accountOption = (): Option => new Option('--account <id>', 'the NEAR account that signs (default: chain.accountId)')

/** Runs `fn` with the configured chain's ledger, signing as chain.accountId (or --account) when `signs`. */
export async function withLedger<T> (ctx: CommandContext, signs: string | undefined, fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  if (signs != null && ctx.config.chain.accountId == null) throw new ConfigError(`${signs} signs a transaction: set chain.accountId (or --account) to your NEAR account`)
  const { openLedger, ledgerConfigFrom } = await chainLib()
  const ledger = await openLedger(ledgerConfigFrom({ ...ctx.config.chain, attest: false }, ctx.home))
  try {
    return await fn(ledger)
  } finally {
    await ledger.close()
  }
}

async function requireOnChainJob (ledger: Ledger, job: string): Promise<NonNullable<Awaited<ReturnType<Ledger['getJob']>>>> {
  const j = await ledger.getJob(job)
  if (j == null) throw new Error(`job ${job} is not on chain (contract ${ledger.contractId}): create it with \`nearai job create --validators ...\``)
  return j
}

function trainerLine (t: Trainer): string {
  const extra = t.status === 'unbonding'
    ? `, withdrawable at block ${String(t.withdrawable_at_block)}`
    : t.status === 'slashed' ? `, slashed at block ${String(t.slashed_at_block)}` : ''
  const reports = t.reports.length > 0 ? `; reported by ${t.reports.map(r => `${r.validator} (round ${r.round}: ${r.reason})`).join(', ')}` : ''
  return `${t.account_id}\t${t.peer_id}\tbond ${formatNear(t.bond)} NEAR\t${t.status}${extra}${reports}`
}

const toDoc = (t: Trainer): Record<string, unknown> => ({
  account: t.account_id, peerId: t.peer_id, bondYocto: t.bond, status: t.status, registeredAtBlock: t.registered_at_block,
  unbondingAtBlock: t.unbonding_at_block, withdrawableAtBlock: t.withdrawable_at_block, slashedAtBlock: t.slashed_at_block, reports: t.reports
})

export function registerTrainerBondCommands (job: Command): void {
  withJsonFlag(job.command('register-trainer')
    .description('register this node as a trainer of an on-chain job: bind your NEAR account (chain.accountId) to this node\'s ' +
      'peer id and attach the job\'s trainer bond. A job with a bond is trained only by registered peers; validators that ' +
      'agree a trainer cheated burn its bond. Leave with `job deregister-trainer`, then `job withdraw-bond` after the delay.')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .addOption(new Option('--bond <NEAR>', 'the deposit to bond (default: the job\'s trainer bond; more is allowed and all of it is bonded)').argParser(nearAmount))
    .addOption(accountOption()))
    .action(async (opts: { job: string, bond?: bigint, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      // The home's identity key signs the binding: only the holder of a peer id can register it (loaded here only).
      const [{ loadIdentity }, { signTrainerRegistration }] = await Promise.all([import('../../config/home.ts'), import('../../chain/trainers.ts')])
      const key = await loadIdentity(ctx.home)
      const trainer = await withLedger(ctx, 'nearai job register-trainer', async (ledger) => {
        const { peerId, peerSignature } = await signTrainerRegistration(key, ledger.contractId, opts.job, ledger.accountId)
        const onChain = await requireOnChainJob(ledger, opts.job)
        const bond = opts.bond ?? BigInt(onChain.trainer_bond)
        if (bond < BigInt(onChain.trainer_bond)) throw new Error(`job ${opts.job} requires a bond of ${formatNear(onChain.trainer_bond)} NEAR; --bond ${formatNear(bond)} is less`)
        if (await ledger.storageBalanceOf() == null) await ledger.storageDeposit() // the registration's storage is paid from it
        return await ledger.registerTrainer({ job: opts.job, peerId, peerSignature, bondYocto: bond })
      })
      outputFor(opts).result({ job: opts.job, ...toDoc(trainer) },
        `registered ${trainer.account_id} as a trainer of job ${opts.job} with peer id ${trainer.peer_id}, bond ${formatNear(trainer.bond)} NEAR`)
    })

  withJsonFlag(job.command('trainers')
    .description('list the registered trainers of an on-chain job: account, peer id, bond, status (active, unbonding, slashed) and cheat reports')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .addOption(accountOption()))
    .action(async (opts: { job: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const { onChain, trainers } = await withLedger(ctx, undefined, async (ledger) => {
        const onChain = await requireOnChainJob(ledger, opts.job)
        return { onChain, trainers: await ledger.getTrainers(opts.job) ?? [] }
      })
      outputFor(opts).result({ job: opts.job, trainerBondYocto: onChain.trainer_bond, unbondingBlocks: onChain.unbonding_blocks, trainers: trainers.map(toDoc) }, () => [
        `job ${opts.job}: trainer bond ${formatNear(onChain.trainer_bond)} NEAR, unbonding delay ${onChain.unbonding_blocks} blocks, ${trainers.length} trainer(s)`,
        ...trainers.map(t => trainerLine(t))
      ])
    })

  withJsonFlag(job.command('deregister-trainer')
    .description('stop training an on-chain job and start the unbonding delay; the bond stays slashable until `job withdraw-bond`')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .addOption(accountOption()))
    .action(async (opts: { job: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const trainer = await withLedger(ctx, 'nearai job deregister-trainer', async (ledger) => await ledger.deregisterTrainer(opts.job))
      outputFor(opts).result({ job: opts.job, ...toDoc(trainer) },
        `${trainer.account_id} left job ${opts.job}; its bond can be withdrawn from block ${String(trainer.withdrawable_at_block)} (\`nearai job withdraw-bond --job ${opts.job}\`)`)
    })

  withJsonFlag(job.command('withdraw-bond')
    .description('take back the bond of a job you deregistered from, once its unbonding delay has passed (not after a slash)')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .addOption(accountOption()))
    .action(async (opts: { job: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const done = await withLedger(ctx, 'nearai job withdraw-bond', async (ledger) => await ledger.withdrawBond(opts.job))
      outputFor(opts).result({ job: opts.job, account: done.account_id, bondYocto: done.bond },
        `withdrew the bond of ${done.account_id} on job ${opts.job}: ${formatNear(done.bond)} NEAR`)
    })
}

export function registerReportCheat (validator: Command): void {
  withJsonFlag(validator.command('report-cheat')
    .description('as one of the job\'s validators, report that a registered trainer cheated (once per trainer). When the ' +
      'job\'s threshold of validators reported the same trainer, its bond is burnt and it is marked slashed.')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .requiredOption('--trainer <account>', 'the trainer\'s NEAR account (see `nearai job trainers`) (required)')
    .addOption(new Option('--round <n>', 'the round the cheat was seen in (required)').argParser(int).makeOptionMandatory())
    .addOption(new Option('--reason <text>', 'what the trainer did, 1..256 characters (required)').argParser(reasonArg).makeOptionMandatory())
    .addOption(accountOption()))
    .action(async (opts: { job: string, trainer: string, round: number, reason: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const trainer = await withLedger(ctx, 'nearai validator report-cheat', async (ledger) => {
        if (await ledger.storageBalanceOf() == null) await ledger.storageDeposit() // the report's storage is paid from it
        return await ledger.reportCheat({ job: opts.job, accountId: opts.trainer, round: opts.round, reason: opts.reason })
      })
      const reporters = trainer.reports.map(r => r.validator)
      outputFor(opts).result({ job: opts.job, ...toDoc(trainer) }, trainer.status === 'slashed'
        ? `reported ${trainer.account_id}; reported by ${reporters.join(', ')}: the threshold is reached, its bond is burnt and it is slashed`
        : `reported ${trainer.account_id} on job ${opts.job} (${reporters.length} report(s) so far: ${reporters.join(', ')})`)
    })
}

