/**
 * Deterministic Ed25519 peer keys for trainer-registration tests, and the signed `register_trainer` arguments
 * (node/chain/trainers.ts signTrainerRegistration: the production signer).
 */
import type { PrivateKey } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signTrainerRegistration } from '../../node/chain/trainers.ts'

export class TrainerKeys {
  private readonly keys = new Map<string, PrivateKey>()

  /** Makes the keys named (any strings), each from its own seed. */
  async make (...names: string[]): Promise<this> {
    for (const name of names) {
      if (this.keys.has(name)) continue
      const seed = new Uint8Array(32)
      new TextEncoder().encodeInto(`nearai-test-trainer:${name}`.padEnd(32, '.').slice(0, 32), seed)
      this.keys.set(name, await generateKeyPairFromSeed('Ed25519', seed))
    }
    return this
  }

  key (name: string): PrivateKey {
    const k = this.keys.get(name)
    if (k == null) throw new Error(`no test trainer key ${name}: make it first`)
    return k
  }

  peer (name: string): string { return peerIdFromPrivateKey(this.key(name)).toString() }

  /** `{ peerId, peerSignature }` for the Ledger's registerTrainer. */
  async signed (name: string, contract: string, job: string, account: string): Promise<{ peerId: string, peerSignature: string }> {
    return await signTrainerRegistration(this.key(name), contract, job, account)
  }

  /** The contract's `register_trainer` arguments. */
  async args (name: string, contract: string, job: string, account: string): Promise<{ job: string, peer_id: string, peer_signature: string }> {
    const s = await this.signed(name, contract, job, account)
    return { job, peer_id: s.peerId, peer_signature: s.peerSignature }
  }
}
