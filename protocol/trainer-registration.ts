/**
 * What a trainer's peer key signs to bind its peer id to a NEAR account on a job (the contract's
 * `register_trainer` checks it: contracts/assembly/peer-proof.ts builds the same text). Naming the contract,
 * the job and the account, the signature cannot be replayed for another account, job or deployment.
 */
export const TRAINER_REGISTRATION_TAG = 'nearai/register-trainer/v1'

export function trainerRegistrationMessage (contract: string, job: string, account: string): Uint8Array {
  return new TextEncoder().encode(`${TRAINER_REGISTRATION_TAG}\n${contract}\n${job}\n${account}`)
}
