/**
 * Trainer bonds as the node sees them: which peers are registered trainers of a job (the round's membership
 * check can plug `registeredTrainers` in), and the check a peer runs before it trains an on-chain job that
 * requires a bond: its account must be registered, with this node's peer id, and not slashed or leaving.
 */
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { trainerRegistrationMessage } from '../../protocol/trainer-registration.ts'
import type { Ledger, LedgerCallOptions, Trainer } from './ledger.ts'
import { formatNear } from './near-amount.ts'

/** This node may not train the job: not registered, registered with another peer id, slashed or unbonding. */
export class TrainerNotRegisteredError extends Error {
  override name = 'TrainerNotRegisteredError'
}

/**
 * The peer ids of the job's active trainers: registered, not slashed, not unbonding. Null when the job is not on
 * chain. For a job with no bond the set holds whoever chose to register (registration is optional there).
 */
export async function registeredTrainers (ledger: Ledger, job: string, options: LedgerCallOptions = {}): Promise<Set<string> | null> {
  const trainers = await ledger.getTrainers(job, options)
  if (trainers == null) return null
  return new Set(trainers.filter(t => t.status === 'active').map(t => t.peer_id))
}

export type TrainerGate =
  | { kind: 'not-on-chain' }
  | { kind: 'open', trainer: Trainer | null }
  | { kind: 'registered', trainer: Trainer }

/** The command that registers this node (run from its home: its key signs the peer id) for `job`, as the error messages print it. */
export function registerCommand (job: string, bondYocto: string): string {
  return `nearai job register-trainer --job ${job} --bond ${formatNear(bondYocto)}`
}

/**
 * Whether the ledger's account may train `job` as `peerId`: a job not on chain or with no bond is open; a bonded
 * job needs this account registered with this very peer id, not slashed and not unbonding. Throws
 * TrainerNotRegisteredError saying how to register otherwise.
 */
export async function requireTrainerRegistration (ledger: Ledger, job: string, peerId: string, options: LedgerCallOptions = {}): Promise<TrainerGate> {
  const onChain = await ledger.getJob(job, options)
  if (onChain == null) return { kind: 'not-on-chain' }
  const bond = BigInt(onChain.trainer_bond)
  const trainer = await ledger.getTrainer(job, ledger.accountId, options)
  if (bond === 0n && (trainer == null || trainer.status === 'active')) return { kind: 'open', trainer }
  const how = registerCommand(job, onChain.trainer_bond)
  if (trainer == null) {
    const holder = await ledger.getTrainerByPeer(job, peerId, options)
    if (holder != null) throw new TrainerNotRegisteredError(`job ${job} requires a trainer bond, and this node's peer id ${peerId} is registered by ${holder.account_id}, not by ${ledger.accountId}: set chain.accountId to ${holder.account_id}`)
    throw new TrainerNotRegisteredError(`job ${job} requires a trainer bond of ${formatNear(onChain.trainer_bond)} NEAR: account ${ledger.accountId} is not registered as its trainer. Register this node first: ${how}`)
  }
  if (trainer.status === 'slashed') throw new TrainerNotRegisteredError(`account ${ledger.accountId} was slashed on job ${job} at block ${String(trainer.slashed_at_block)} (reported by ${trainer.reports.map(r => r.validator).join(', ')}): it cannot train this job`)
  if (trainer.status === 'unbonding') throw new TrainerNotRegisteredError(`account ${ledger.accountId} deregistered from job ${job} (unbonding since block ${String(trainer.unbonding_at_block)}): it cannot train it any more; \`nearai job withdraw-bond --job ${job}\` after block ${String(trainer.withdrawable_at_block)}`)
  if (trainer.peer_id !== peerId) throw new TrainerNotRegisteredError(`account ${ledger.accountId} is registered on job ${job} with peer id ${trainer.peer_id}, but this node is ${peerId}: run the node from the home that holds that identity, or register from another account`)
  return { kind: 'registered', trainer }
}

/**
 * The peer id and its signature that `register_trainer` needs: the node's own key signs (contract, job, account),
 * proving the account holds the peer id it binds. Only Ed25519 keys (every nearai node's) are accepted on chain.
 */
export async function signTrainerRegistration (key: PrivateKey, contract: string, job: string, account: string): Promise<{ peerId: string, peerSignature: string }> {
  if (key.type !== 'Ed25519') throw new Error(`a trainer registration needs an Ed25519 peer key, this one is ${key.type}`)
  const signature = await key.sign(trainerRegistrationMessage(contract, job, account))
  return { peerId: peerIdFromPrivateKey(key).toString(), peerSignature: Buffer.from(signature).toString('hex') }
}
