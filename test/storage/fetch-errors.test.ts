import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { withDeadline } from '../../node/storage/fetch.ts'
import { ContentNotFoundError, FetchTimeoutError } from '../../node/storage/errors.ts'

/** Helia's own error classes exist in several installed copies; what reaches us is known by its name. */
function heliaError (name: string, message: string): Error {
  const err = new Error(message)
  err.name = name
  return err
}

describe('bounded fetches throw typed storage errors', () => {
  let cid: CID
  before(async () => { cid = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('fetch errors'))) })

  it("turns Helia's 'no provider could deliver' errors into ContentNotFoundError naming the CID", async () => {
    for (const name of ['LoadBlockFailedError', 'InsufficientProvidersError', 'NoRoutersAvailableError']) {
      const err = await withDeadline(cid, { timeoutMs: 10_000 }, async () => { throw heliaError(name, 'could not load') }).catch(e => e)
      assert.ok(err instanceof ContentNotFoundError, `${name} became ${String(err)}`)
      assert.equal(err.cid, cid.toString())
      assert.equal((err.cause as Error).name, name)
    }
    // Inside an AggregateError too (a broker that tried several providers).
    const aggregate = await withDeadline(cid, {}, async () => { throw new AggregateError([heliaError('InsufficientProvidersError', 'none')], 'all failed') }).catch(e => e)
    assert.ok(aggregate instanceof ContentNotFoundError)
  })

  it('turns the deadline into ContentNotFoundError or FetchTimeoutError, passes other errors and the caller\'s abort through', async () => {
    const hang = async (signal: AbortSignal): Promise<never> => await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }) })
    assert.ok(await withDeadline(cid, { timeoutMs: 20 }, hang).catch(e => e) instanceof ContentNotFoundError)
    assert.ok(await withDeadline(cid, { timeoutMs: 20 }, async (signal, state) => { state.received = 10; return await hang(signal) }).catch(e => e) instanceof FetchTimeoutError)
    const other = new RangeError('a bug')
    assert.equal(await withDeadline(cid, {}, async () => { throw other }).catch(e => e), other)
    const caller = new AbortController()
    caller.abort(new Error('stopping'))
    const aborted = await withDeadline(cid, { signal: caller.signal }, async () => { throw heliaError('LoadBlockFailedError', 'aborted underneath') }).catch(e => e)
    assert.equal(aborted.name, 'LoadBlockFailedError', 'a cancelled fetch is not reported as missing content')
  })
})
