/**
 * The check `nearai node start --job` runs before training: on a configured chain, an on-chain job that requires a
 * trainer bond is trained only by a peer whose account is registered with this node's peer id (see
 * requireTrainerRegistration). A node with no chain account on the embedded dev chain skips it: that chain lives
 * in its own home, so no job of anyone else's can be on it.
 */
import type { NodeConfig } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import { requireTrainerRegistration, type TrainerGate } from './trainers.ts'

export async function checkTrainerBond (chain: NodeConfig['chain'], home: string, job: string, peerId: string, logger: Logger): Promise<TrainerGate | undefined> {
  if (chain.network === 'dev' && chain.accountId == null) return undefined
  const [{ openLedger }, { ledgerConfigFrom }] = await Promise.all([import('./index.ts'), import('./auto-attest.ts')])
  let ledger
  try {
    ledger = await openLedger(ledgerConfigFrom({ ...chain, attest: false }, home))
  } catch (err) {
    // As the checkpoint attester does: a ledger that cannot be opened (no credentials, the embedded chain held by
    // `nearai chain serve`) does not stop training. This check keeps honest peers from training unregistered; the
    // network's own defence is the round's membership (registeredTrainers), not this node's good will.
    logger.warn({ job, network: chain.network, err: (err as Error).message }, 'cannot open the ledger: the job\'s trainer bond is not checked')
    return undefined
  }
  try {
    const gate = await requireTrainerRegistration(ledger, job, peerId)
    if (gate.kind === 'registered') logger.info({ job, account: ledger.accountId, peerId, bond: gate.trainer.bond }, 'registered trainer of the job (bond on chain)')
    return gate
  } finally {
    await ledger.close()
  }
}
