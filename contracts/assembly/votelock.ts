// Vote locks: a DAO vote counts the voter's whole token balance at the moment it votes and locks that amount
// until the proposal's voting period ends or the proposal is finalized, whichever comes first. Locked tokens
// cannot leave the account (ft_transfer, ft_transfer_call and the refund path of ft_resolve_transfer check
// `lockedBalance`), so the same tokens can never be counted twice on one proposal by moving them to a second
// voter. The same tokens may vote on several proposals at once: the lock is the largest open vote, not a sum.
//
//   dao/l/<account>  JSON [[proposal id, "amount", voting end block], ...]: the account's open votes
//                    (pruned when it votes again; at most MAX_OPEN_VOTES entries)
import * as env from './env'
import { U128 } from './u128'
import { Kind, quote } from './json'
import { panic, storageReadString, storageWriteString } from './near'
import { parseStored } from './args'

/** Most proposals one account can have open votes on at once (bounds the work of every transfer). */
export const MAX_OPEN_VOTES = 32

export function proposalKey (id: u64): string { return 'dao/p/' + id.toString() }

class Lock {
  constructor (public id: u64, public amount: U128, public end: u64) {}
}

function loadLocks (account: string): Lock[] {
  const out: Lock[] = []
  const t = storageReadString('dao/l/' + account)
  if (t == null) return out
  const items = parseStored(t).items
  for (let i = 0; i < items.length; i++) {
    const e = items[i].items
    if (e.length != 3) panic('corrupt vote lock record of ' + account)
    const amount = U128.parse(e[1].text)
    if (amount == null) { panic('corrupt vote lock record of ' + account); return out }
    out.push(new Lock(<u64>parseInt(e[0].text), amount, <u64>parseInt(e[2].text)))
  }
  return out
}

/** Whether the lock still holds: its voting period runs and its proposal was not finalized early. */
function holds (l: Lock, now: u64): bool {
  if (now >= l.end) return false
  const t = storageReadString(proposalKey(l.id))
  if (t == null) return false
  const status = parseStored(t).get('status')
  return status != null && status.kind == Kind.Str && status.text == 'open'
}

/** Tokens of `account` that open votes lock (0 when it has none). */
export function lockedBalance (account: string): U128 {
  const locks = loadLocks(account)
  const now = env.block_index()
  let max = new U128()
  for (let i = 0; i < locks.length; i++) if (locks[i].amount.cmp(max) > 0 && holds(locks[i], now)) max = locks[i].amount
  return max
}

/** Records `account`'s vote of `amount` on proposal `id` (voting ends at `end`), dropping locks that no longer hold. */
export function addLock (account: string, id: u64, amount: U128, end: u64): void {
  const now = env.block_index()
  const locks = loadLocks(account)
  const parts: string[] = []
  for (let i = 0; i < locks.length; i++) {
    const l = locks[i]
    if (holds(l, now)) parts.push('[' + l.id.toString() + ',' + quote(l.amount.toString()) + ',' + l.end.toString() + ']')
  }
  if (parts.length >= MAX_OPEN_VOTES) panic(account + ' already has ' + MAX_OPEN_VOTES.toString() + ' open votes; wait for one to end')
  parts.push('[' + id.toString() + ',' + quote(amount.toString()) + ',' + end.toString() + ']')
  storageWriteString('dao/l/' + account, '[' + parts.join(',') + ']')
}
