/** near-cli's key files: `~/.near-credentials/<network>/<account>.json` with `{ account_id, public_key, private_key }`. */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import type { KeyPairString } from 'near-api-js'
import { InvalidMessageError } from '../../protocol/errors.ts'

const credentialsFile = z.object({
  account_id: z.string().optional(),
  public_key: z.string().optional(),
  private_key: z.string().regex(/^ed25519:[1-9A-HJ-NP-Za-km-z]+$/).optional(),
  secret_key: z.string().regex(/^ed25519:[1-9A-HJ-NP-Za-km-z]+$/).optional()
}).refine(v => v.private_key != null || v.secret_key != null, 'private_key missing')

export function credentialsPath (network: string, accountId: string, base = join(homedir(), '.near-credentials')): string {
  return join(base, network, `${accountId}.json`)
}

/** Reads an account's secret key from a near-cli credentials file. */
export function readCredentials (path: string): { accountId?: string, secretKey: KeyPairString } {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new InvalidMessageError(`cannot read NEAR credentials ${path}: ${(err as Error).message}`)
  }
  const r = credentialsFile.safeParse(raw)
  if (!r.success) throw new InvalidMessageError(`malformed NEAR credentials ${path}: ${r.error.message}`)
  return { accountId: r.data.account_id, secretKey: (r.data.private_key ?? r.data.secret_key) as KeyPairString }
}
