/**
 * The DAO from the command line: `dao register` (a storage deposit, so an account can hold tokens), `dao init`
 * (the contract account, once), `dao balance`, `dao transfer`,
 * `dao propose`, `dao vote`, `dao finalize`, `dao proposals`, `dao show`. They sign with the configured chain
 * account (config `chain`, or --account) and print the contract's answer, checked like every chain result.
 * Token amounts are whole numbers of the token's smallest unit.
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import { commandContext, flagsToOverrides } from '../context.ts'
import { int, positiveInt } from '../arg-parsers.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { formatNear } from '../../chain/near-amount.ts'
import type { DaoParamsInput, DaoProposal, DaoProposalInput, Ledger } from '../../chain/index.ts'
import { accountOption, nearAmount, withLedger } from './trainer-bonds.ts'

const U128_MAX = (1n << 128n) - 1n

function tokens (value: string): bigint {
  if (!/^\d{1,39}$/.test(value) || BigInt(value) === 0n || BigInt(value) > U128_MAX) throw new InvalidArgumentError('expected a positive whole number of tokens (smallest unit)')
  return BigInt(value)
}

function holder (value: string, previous: Array<[string, bigint]> = []): Array<[string, bigint]> {
  const m = /^([a-z0-9._-]{2,64})=(\d{1,39})$/.exec(value)
  if (m == null) throw new InvalidArgumentError('expected <account>=<tokens>, e.g. alice.test=1000')
  return [...previous, [m[1], tokens(m[2])]]
}

function bps (value: string): number {
  const n = int(value)
  if (n > 10_000) throw new InvalidArgumentError('expected basis points, 0..10000 (5000 = 50%)')
  return n
}

const paramOptions = (cmd: Command): Command => cmd
  .addOption(new Option('--quorum-bps <n>', 'votes cast needed, in basis points of the votable supply (2000 = 20%)').argParser(bps))
  .addOption(new Option('--threshold-bps <n>', 'yes must exceed this share of the votes cast, in basis points').argParser(bps))
  .addOption(new Option('--voting-period <blocks>', 'blocks a proposal is open for votes').argParser(positiveInt))
  .addOption(new Option('--proposal-bond <NEAR>', 'the bond a proposal attaches').argParser(nearAmount))

type ParamFlags = { quorumBps?: number, thresholdBps?: number, votingPeriod?: number, proposalBond?: bigint } // a type, not an interface: commander options must fit Record<string, unknown>
const paramsFrom = (o: ParamFlags): DaoParamsInput => ({ quorumBps: o.quorumBps, thresholdBps: o.thresholdBps, votingPeriodBlocks: o.votingPeriod, proposalBondYocto: o.proposalBond })

function proposalLine (p: DaoProposal): string {
  const tail = p.status === 'open'
    ? `open until block ${p.voting_ends_at_block}`
    : `${p.status} at block ${String(p.finalized_at_block)}${p.reason != null ? ` (${p.reason})` : ''}${p.job != null ? `, job ${p.job} created` : ''}`
  return `#${p.id}\t${p.kind}\tyes ${p.yes}\tno ${p.no}\t${tail}\t${p.description}`
}

/** Registers the account's storage balance first when it has none (proposals and votes are paid from it). */
async function ensureStorage (ledger: Ledger): Promise<void> {
  if (await ledger.storageBalanceOf() == null) await ledger.storageDeposit()
}

export function registerDao (program: Command): void {
  const dao = program.command('dao').description('the DAO: its token (NEP-141) and token-weighted proposals that start jobs, pay from the treasury or change parameters')

  withJsonFlag(paramOptions(dao.command('init')
    .description('one-time set-up, signed by the contract account itself: mint the initial distribution (holders must have a ' +
      'storage deposit; the contract\'s own account is the treasury) and set the DAO parameters')
    .requiredOption('--holder <account=tokens>', 'an initial holder (repeat the flag)', holder))
    .addOption(accountOption()))
    .action(async (opts: ParamFlags & { holder: Array<[string, bigint]>, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const done = await withLedger(ctx, 'nearai dao init', async (ledger) => await ledger.daoInit({ initial: opts.holder, params: paramsFrom(opts) }))
      outputFor(opts).result(done, `minted ${done.total_supply} tokens to ${opts.holder.length} holder(s); quorum ${done.params.quorum_bps} bps, ` +
        `threshold ${done.params.threshold_bps} bps, voting period ${done.params.voting_period_blocks} blocks, proposal bond ${formatNear(done.params.proposal_bond)} NEAR`)
    })

  withJsonFlag(dao.command('register')
    .description('make a storage deposit (NEP-145) for an account, so that it can hold tokens, propose and vote; you pay it')
    .option('--for <account>', 'whose registration (default: chain.accountId)')
    .addOption(new Option('--deposit <NEAR>', 'how much to deposit').argParser(nearAmount).default(10n ** 23n, '0.1'))
    .addOption(accountOption()))
    .action(async (opts: { for?: string, deposit: bigint, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const r = await withLedger(ctx, 'nearai dao register', async (ledger) => ({ account: opts.for ?? ledger.accountId, ...await ledger.storageDeposit(opts.deposit, opts.for) }))
      outputFor(opts).result(r, `${r.account}: storage balance ${formatNear(r.total)} NEAR, ${formatNear(r.available)} NEAR available`)
    })

  withJsonFlag(dao.command('balance')
    .description('the DAO token balance of an account (default: chain.accountId) and the total supply')
    .option('--of <account>', 'whose balance')
    .addOption(accountOption()))
    .action(async (opts: { of?: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const r = await withLedger(ctx, undefined, async (ledger) => {
        const of = opts.of ?? ledger.accountId
        return { account: of, balance: await ledger.ftBalanceOf(of), totalSupply: await ledger.ftTotalSupply() }
      })
      outputFor(opts).result(r, `${r.account}: ${r.balance} of ${r.totalSupply} tokens`)
    })

  withJsonFlag(dao.command('transfer')
    .description('send DAO tokens (ft_transfer, 1 yoctoNEAR attached); the receiver needs a storage deposit. Tokens that an open vote locks cannot move')
    .requiredOption('--to <account>', 'the receiver (required)')
    .addOption(new Option('--amount <tokens>', 'how many (required)').argParser(tokens).makeOptionMandatory())
    .option('--memo <text>', 'a memo for the ft_transfer event')
    .addOption(accountOption()))
    .action(async (opts: { to: string, amount: bigint, memo?: string, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const left = await withLedger(ctx, 'nearai dao transfer', async (ledger) => {
        await ledger.ftTransfer(opts.to, opts.amount, opts.memo)
        return await ledger.ftBalanceOf()
      })
      outputFor(opts).result({ to: opts.to, amount: opts.amount, balance: left }, `sent ${opts.amount} tokens to ${opts.to}; ${left} left`)
    })

  withJsonFlag(paramOptions(dao.command('propose')
    .description('make a proposal, attaching the DAO\'s proposal bond (back unless it expires without quorum). Kinds: text; ' +
      'train (a job, as `job create --validators` puts it on chain, owned by the DAO); params; transfer (tokens from the treasury)')
    .addOption(new Option('--kind <kind>', 'what it asks for (required)').choices(['text', 'train', 'params', 'transfer']).makeOptionMandatory())
    .requiredOption('--description <text>', 'what and why, 1..2000 characters (required)')
    .option('--job <id>', 'train: the job id')
    .option('--spec-cid <cid>', 'train: the job spec\'s CID')
    .option('--eval-cid <cid>', 'train: the evaluation dataset\'s CID')
    .option('--validators <accounts>', 'train: comma-separated validator accounts')
    .addOption(new Option('--threshold <n>', 'train: attestations that make an anchor final').argParser(positiveInt))
    .addOption(new Option('--trainer-bond <NEAR>', 'train: the bond each trainer attaches').argParser(nearAmount))
    .addOption(new Option('--unbonding-blocks <n>', 'train: blocks between leaving and withdrawing a bond').argParser(positiveInt))
    .option('--to <account>', 'transfer: the receiver')
    .addOption(new Option('--amount <tokens>', 'transfer: how many tokens').argParser(tokens))
    .option('--memo <text>', 'transfer: a memo'))
    .addOption(new Option('--bond <NEAR>', 'the bond to attach (default: the DAO\'s proposal_bond)').argParser(nearAmount))
    .addOption(accountOption()))
    .action(async (opts: ParamFlags & {
      kind: DaoProposalInput['kind'], description: string, job?: string, specCid?: string, evalCid?: string, validators?: string, threshold?: number,
      trainerBond?: bigint, unbondingBlocks?: number, to?: string, amount?: bigint, memo?: string, bond?: bigint, account?: string, json?: boolean
    }, cmd: Command) => {
      const input = proposalInput(opts)
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const p = await withLedger(ctx, 'nearai dao propose', async (ledger) => {
        await ensureStorage(ledger)
        return await ledger.daoPropose(input, opts.bond ?? BigInt((await ledger.daoParams()).proposal_bond))
      })
      outputFor(opts).result(p, `proposal #${p.id} (${p.kind}) is open for votes until block ${p.voting_ends_at_block}: \`nearai dao vote --id ${p.id} --vote yes\``)
    })

  withJsonFlag(dao.command('vote')
    .description('vote on an open proposal with your whole token balance; those tokens stay locked until the vote ends or the proposal is finalized')
    .addOption(new Option('--id <n>', 'the proposal (required)').argParser(int).makeOptionMandatory())
    .addOption(new Option('--vote <yes|no>', 'your vote (required)').choices(['yes', 'no']).makeOptionMandatory())
    .addOption(accountOption()))
    .action(async (opts: { id: number, vote: 'yes' | 'no', account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const p = await withLedger(ctx, 'nearai dao vote', async (ledger) => await ledger.daoVote(opts.id, opts.vote))
      outputFor(opts).result(p, `voted ${opts.vote} on #${p.id}: yes ${p.yes}, no ${p.no} of ${p.votable_supply} votable tokens`)
    })

  withJsonFlag(dao.command('finalize')
    .description('close a proposal once its vote ended (or its outcome cannot change) and run it if it passed')
    .addOption(new Option('--id <n>', 'the proposal (required)').argParser(int).makeOptionMandatory())
    .addOption(accountOption()))
    .action(async (opts: { id: number, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const p = await withLedger(ctx, 'nearai dao finalize', async (ledger) => await ledger.daoFinalize(opts.id))
      outputFor(opts).result(p, proposalLine(p))
    })

  withJsonFlag(dao.command('proposals')
    .description('list every proposal: id, kind, votes, status')
    .addOption(accountOption()))
    .action(async (opts: { account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const list = await withLedger(ctx, undefined, async (ledger) => await ledger.daoListProposals())
      outputFor(opts).result(list, () => list.length === 0 ? 'no proposals' : list.map(proposalLine))
    })

  withJsonFlag(dao.command('show')
    .description('one proposal in full')
    .addOption(new Option('--id <n>', 'the proposal (required)').argParser(int).makeOptionMandatory())
    .addOption(accountOption()))
    .action(async (opts: { id: number, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const p = await withLedger(ctx, undefined, async (ledger) => await ledger.daoGetProposal(opts.id))
      if (p == null) throw new Error(`no proposal #${opts.id}`)
      outputFor(opts).result(p, [proposalLine(p), `proposer ${p.proposer}, bond ${formatNear(p.bond)} NEAR, action ${JSON.stringify(p.action)}`])
    })
}

function need<T> (value: T | undefined, flag: string, kind: string): T {
  if (value == null) throw new InvalidArgumentError(`a ${kind} proposal needs ${flag}`)
  return value
}

function proposalInput (o: ParamFlags & { kind: DaoProposalInput['kind'], description: string, job?: string, specCid?: string, evalCid?: string, validators?: string, threshold?: number, trainerBond?: bigint, unbondingBlocks?: number, to?: string, amount?: bigint, memo?: string }): DaoProposalInput {
  switch (o.kind) {
    case 'text': return { kind: 'text', description: o.description }
    case 'params': return { kind: 'params', description: o.description, params: paramsFrom(o) }
    case 'transfer': return { kind: 'transfer', description: o.description, receiverId: need(o.to, '--to', 'transfer'), amount: need(o.amount, '--amount', 'transfer'), memo: o.memo }
    case 'train': {
      const validators = need(o.validators, '--validators', 'train').split(',').map(v => v.trim()).filter(v => v.length > 0)
      return {
        kind: 'train',
        description: o.description,
        job: {
          job: need(o.job, '--job', 'train'),
          specCid: need(o.specCid, '--spec-cid', 'train'),
          evalCid: need(o.evalCid, '--eval-cid', 'train'),
          validators,
          threshold: o.threshold ?? Math.floor(validators.length / 2) + 1,
          trainerBondYocto: o.trainerBond,
          unbondingBlocks: o.unbondingBlocks
        }
      }
    }
  }
}
