/**
 * The check `nearai node start --job` runs before training: on a configured chain, an on-chain job that requires a
 * trainer bond is trained only by a peer whose account is registered with this node's peer id (see
 * requireTrainerRegistration). A node with no chain account on the embedded dev chain skips it: that chain lives
 * in its own home, so no job of anyone else's can be on it.
 */
import type { NodeConfig } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import type { AnchorSource } from '../job/network-state.ts'
import type { Ledger } from './ledger.ts'
import { TrainerRoster } from './trainer-roster.ts'
import { requireTrainerRegistration, type TrainerGate } from './trainers.ts'

/**
 * The ledger a training peer reads the job's trainers from, or undefined: no chain account on the embedded dev
 * chain, or a ledger that cannot be opened (no credentials, the embedded chain held by `nearai chain serve`).
 * As the checkpoint attester does, that is logged and does not stop training.
 */
async function openTrainerLedger (chain: NodeConfig['chain'], home: string, job: string, logger: Logger, consequence: string): Promise<Ledger | undefined> {
  if (chain.network === 'dev' && chain.accountId == null) return undefined
  const [{ openLedger }, { ledgerConfigFrom }] = await Promise.all([import('./index.ts'), import('./auto-attest.ts')])
  try {
    return await openLedger(ledgerConfigFrom({ ...chain, attest: false }, home))
  } catch (err) {
    logger.warn({ job, network: chain.network, err: (err as Error).message }, `cannot open the ledger: ${consequence}`)
    return undefined
  }
}

/** What a training peer reads from the chain while it trains an on-chain job. */
export interface TrainerChainView {
  /** Who may train the job (node/chain/trainer-roster.ts), refreshed while the job runs. */
  roster: TrainerRoster
  /** The job's newest finalised anchor, for catch-up (node/job/network-state.ts: adopted without a quorum). */
  anchors: AnchorSource
  close: () => Promise<void>
}

/**
 * The job's trainer roster (read now, then refreshed) and its finalised anchors, or undefined when no ledger can
 * be opened: then the round's membership admits by the network's rules alone and catch-up needs a quorum.
 */
export async function openTrainerChainView (chain: NodeConfig['chain'], home: string, job: string, logger: Logger): Promise<TrainerChainView | undefined> {
  const ledger = await openTrainerLedger(chain, home, job, logger, 'the round\'s membership does not follow the job\'s trainer roster, and catch-up does not read its anchors')
  if (ledger == null) return undefined
  const roster = new TrainerRoster(ledger, job, { logger })
  await roster.start()
  const anchors: AnchorSource = async (signal) => {
    const a = await ledger.latestAnchor(job, { signal })
    return a == null ? undefined : { round: a.round, weightsSha256: a.weights_sha256, cid: a.checkpoint_cid }
  }
  return { roster, anchors, close: async () => { roster.stop(); await ledger.close() } }
}

export async function checkTrainerBond (chain: NodeConfig['chain'], home: string, job: string, peerId: string, logger: Logger): Promise<TrainerGate | undefined> {
  // This check keeps honest peers from training unregistered; the network's own defence is the round's
  // membership (openTrainerRoster below), not this node's good will.
  const ledger = await openTrainerLedger(chain, home, job, logger, 'the job\'s trainer bond is not checked')
  if (ledger == null) return undefined
  try {
    const gate = await requireTrainerRegistration(ledger, job, peerId)
    if (gate.kind === 'registered') logger.info({ job, account: ledger.accountId, peerId, bond: gate.trainer.bond }, 'registered trainer of the job (bond on chain)')
    return gate
  } finally {
    await ledger.close()
  }
}
