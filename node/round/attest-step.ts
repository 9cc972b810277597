/**
 * The attest step: a published checkpoint is attested on chain by this node's account when it is one of the
 * job's validators (node/chain/auto-attest.ts), in the background: the chain never slows or stops training.
 * A training peer attests exactly what a non-training validator (node/validator) computes for the same
 * checkpoint: the deterministic evaluation loss of its weights on the job's evaluation set, so that trainers and
 * validators agree to the bit and the anchor finalizes. Each outcome is logged as an `event: 'attestation'` line.
 */
import type { Logger } from 'pino'
import { CheckpointAttester, ledgerConfigFrom, openLedger, type AttestOutcome, type CheckpointAttestationInput } from '../chain/index.ts'
import type { NodeConfig } from '../config/schema.ts'
import type { GlobalState, RoundAttester, RoundResult } from './steps.ts'

/** What the attest step needs of an attester (`CheckpointAttester` fits). */
export interface CheckpointAttesterLike {
  attestInBackground: (input: CheckpointAttestationInput) => Promise<AttestOutcome>
  drain: () => Promise<unknown>
}

/**
 * The attest step over `attester`: each checkpoint with its contributions and `evalLoss(weights)`, the job's
 * deterministic evaluation (node/training/deterministic-eval.ts). A checkpoint it cannot evaluate is not attested.
 */
export function attestStep (attester: CheckpointAttesterLike, logger: Logger, evalLoss: (weights: Float32Array) => number): RoundAttester {
  return {
    attest: (state: GlobalState, result: RoundResult & { stateCid: string }) => {
      let loss: number
      try {
        loss = evalLoss(state.weights)
      } catch (err) {
        logger.warn({ event: 'attestation', outcome: 'skipped', round: result.round, checkpointCid: result.stateCid, err: (err as Error).message }, 'not attesting: no deterministic evaluation of this checkpoint')
        return
      }
      const input: CheckpointAttestationInput = {
        round: result.round,
        checkpointCid: result.stateCid,
        weightsSha256: result.weightsSha256,
        contributions: result.contributions,
        evalLoss: loss
      }
      void attester.attestInBackground(input).then(outcome => { logAttestation(logger, input.checkpointCid, outcome) })
    },
    drain: async () => { await attester.drain() }
  }
}

/**
 * The job's checkpoint attester when the node's configuration asks for one (`chain.attest` with a
 * `chain.accountId`), and how to close its ledger (after the job); runJob builds the attest step on it. The chain
 * never stops training: a ledger that cannot be opened is a warning, and the node trains without attesting.
 */
export async function openChainAttester (chain: NodeConfig['chain'], home: string, job: string, logger: Logger): Promise<{ attester: CheckpointAttesterLike, close: () => Promise<void> } | undefined> {
  if (!chain.attest || chain.accountId == null) return undefined
  let ledger
  try {
    ledger = await openLedger(ledgerConfigFrom(chain, home))
  } catch (err) {
    logger.warn({ network: chain.network, account: chain.accountId, err: (err as Error).message }, 'cannot open the ledger: training without attesting checkpoints')
    return undefined
  }
  const opened = ledger
  logger.info({ network: chain.network, account: ledger.accountId, contract: ledger.contractId, rpcUrl: chain.rpcUrl }, 'attesting the job\'s checkpoints on chain')
  return {
    attester: new CheckpointAttester({ ledger, job, logger }),
    close: async () => { await opened.close() }
  }
}

export function logAttestation (logger: Logger, checkpointCid: string, o: AttestOutcome): void {
  const line = { event: 'attestation', outcome: o.outcome, round: o.round, checkpointCid }
  switch (o.outcome) {
    case 'attested':
      logger.info({ ...line, contributionsTotal: o.contributionsTotal, final: o.final, finalCid: o.anchors.final?.checkpoint_cid, attesters: o.anchors.final?.attesters }, o.final ? 'checkpoint attested on chain; round final' : 'checkpoint attested on chain')
      return
    case 'already':
      logger.info({ ...line, final: o.final, sameClaim: o.sameClaim, attesters: o.anchors?.final?.attesters }, 'checkpoint already attested by this account')
      return
    case 'failed':
      logger.warn({ ...line, err: o.error.message }, 'checkpoint attestation failed; training goes on')
      return
    default:
      logger.info(line, o.outcome === 'not-validator' ? 'not attesting: this account is not a validator of the job' : 'not attesting: the job is not on chain')
  }
}
