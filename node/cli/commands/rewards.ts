/**
 * Contribution rewards from the command line: `rewards show` (earned, claimed and pending per final round for this
 * home's peer id) and `rewards claim` (claims every pending round, signed by chain.accountId, the account the peer is
 * bound to with `job register-trainer`). Proofs are built from each final checkpoint's contributions, fetched by the
 * anchored CID (this home first, then the network), and checked against the anchor before anything is sent.
 */
import { Option, type Command } from 'commander'
import { commandContext, flagsToOverrides, type CommandContext } from '../context.ts'
import { timeoutSeconds } from '../arg-parsers.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { accountOption, withLedger } from './trainer-bonds.ts'
import { localFirst, withHomeSession, type HomeSession } from '../../peer/with-node.ts'
import type { ContributionsOf, RoundReward } from '../../chain/index.ts'

const chainLib = async (): Promise<typeof import('../../chain/index.ts')> => await import('../../chain/index.ts')

/** The home's peer id (its libp2p identity). */
async function homePeerId (home: string): Promise<string> {
  const key = await (await import('../../config/home.ts')).loadIdentity(home)
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
  return peerIdFromPrivateKey(key).toString()
}

/** Contributions from each checkpoint's checkpoint.json, read through the home session (local store, then the network). */
function contributionsFrom (session: HomeSession, timeoutMs: number): ContributionsOf {
  return async (checkpointCid) => {
    const { CID } = await import('multiformats/cid')
    const cid = CID.parse(checkpointCid)
    const { getCheckpointManifest } = await import('../../storage/checkpoints.ts')
    const manifest = await localFirst(session, `checkpoint ${checkpointCid}`, async ({ helia, offline }) =>
      (await getCheckpointManifest(helia, cid, { offline, timeoutMs })).manifest)
    if (manifest.contributions == null) throw new Error(`checkpoint ${checkpointCid} lists no contributions in its checkpoint.json: no proof can be built from it`)
    return manifest.contributions
  }
}

const roundDoc = (r: RoundReward): Record<string, unknown> => ({
  round: r.round, checkpointCid: r.checkpointCid, status: r.status, weight: r.weight, contributionsTotal: r.contributionsTotal,
  roundReward: r.roundReward.toString(), earned: r.earned.toString(), claimed: r.claimed?.toString() ?? null
})

function roundLine (r: RoundReward): string {
  const share = r.weight == null ? 'no contribution' : `${r.weight}/${r.contributionsTotal} samples`
  return `round ${r.round}\t${r.status}\t${share}\tearned ${r.earned} of ${r.roundReward}${r.claimed != null ? `\tclaimed ${r.claimed}` : ''}`
}

function totals (rounds: RoundReward[]): { earned: bigint, claimed: bigint, pending: bigint } {
  let earned = 0n; let claimed = 0n; let pending = 0n
  for (const r of rounds) {
    earned += r.earned
    if (r.status === 'claimed') claimed += r.claimed ?? 0n
    if (r.status === 'pending') pending += r.earned
  }
  return { earned, claimed, pending }
}

async function withRewards<T> (ctx: CommandContext, purpose: string, signs: boolean, timeoutMs: number,
  fn: (ledger: Parameters<Parameters<typeof withLedger>[2]>[0], contributionsOf: ContributionsOf) => Promise<T>): Promise<T> {
  return await withHomeSession(ctx, purpose, async (session) =>
    await withLedger(ctx, signs ? purpose : undefined, async (ledger) => await fn(ledger, contributionsFrom(session, timeoutMs))))
}

export function registerRewards (program: Command): void {
  const rewards = program.command('rewards').description('contribution rewards: DAO tokens each final round mints to its contributors, pro rata to accepted samples')

  withJsonFlag(rewards.command('show')
    .description('earned, claimed and pending rewards of this home\'s peer id in every final round of an on-chain job')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .option('--peer <id>', 'another peer id than this home\'s')
    .addOption(new Option('--timeout <seconds>', 'give up fetching a checkpoint.json after this long').default(120_000, '120').argParser(timeoutSeconds))
    .addOption(accountOption()))
    .action(async (opts: { job: string, peer?: string, timeout: number, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const peerId = opts.peer ?? await homePeerId(ctx.home)
      const rounds = await withRewards(ctx, 'nearai rewards show', false, opts.timeout, async (ledger, contributionsOf) =>
        await (await chainLib()).rewardsOf({ ledger, job: opts.job, peerId, contributionsOf }))
      const t = totals(rounds)
      outputFor(opts).result({ job: opts.job, peerId, earned: t.earned.toString(), claimed: t.claimed.toString(), pending: t.pending.toString(), rounds: rounds.map(roundDoc) }, () => [
        `job ${opts.job}, peer ${peerId}: earned ${t.earned}, claimed ${t.claimed}, pending ${t.pending} (token units) over ${rounds.length} final round(s)`,
        ...rounds.map(roundLine)
      ])
    })

  withJsonFlag(rewards.command('claim')
    .description('claim every pending reward of this home\'s peer id on an on-chain job, signed by the account the peer is ' +
      'registered with (chain.accountId); the tokens are minted to that account')
    .requiredOption('--job <id>', 'the job\'s id on chain (required)')
    .addOption(new Option('--timeout <seconds>', 'give up fetching a checkpoint.json after this long').default(120_000, '120').argParser(timeoutSeconds))
    .addOption(accountOption()))
    .action(async (opts: { job: string, timeout: number, account?: string, json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      const peerId = await homePeerId(ctx.home)
      const { claims, account } = await withRewards(ctx, 'nearai rewards claim', true, opts.timeout, async (ledger, contributionsOf) => ({
        account: ledger.accountId,
        ...await (await chainLib()).claimRewards({ ledger, job: opts.job, peerId, contributionsOf })
      }))
      const paid = claims.reduce((s, c) => s + BigInt(c.amount), 0n)
      outputFor(opts).result({
        job: opts.job, peerId, account, paid: paid.toString(),
        claims: claims.map(c => ({ round: c.round, weight: c.weight, contributionsTotal: c.contributions_total, roundReward: c.round_reward, amount: c.amount }))
      }, () => claims.length === 0
        ? `nothing to claim for peer ${peerId} on job ${opts.job}`
        : [`claimed ${paid} token units for ${account} (peer ${peerId}) on job ${opts.job}:`, ...claims.map(c => `round ${c.round}\t${c.weight}/${c.contributions_total} samples\t${c.amount}`)])
    })
}
