import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  contributionLeafHash, contributionProof, contributionsRoot, contributionsTotal, encodeContributionLeaf, verifyContributionProof,
  EMPTY_CONTRIBUTIONS_ROOT, InvalidContributionsError, type Contribution
} from '../../protocol/contributions.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
/** A well-formed (base58btc, 52 characters) peer id string, distinct per `i`. */
const peer = (i: number): string => '12D3KooW' + B58[Math.floor(i / 58) % 58] + B58[i % 58] + 'x'.repeat(42)
const contributions = (n: number): Contribution[] => Array.from({ length: n }, (_, i) => ({ peer: peer(i), samples: 100 + 7 * i }))

function shuffled<T> (xs: T[], seed: number): T[] {
  const out = [...xs]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** The file header's spec, written out again with node:crypto: what an AssemblyScript port must match. */
function referenceRoot (job: string, round: number, cs: Contribution[]): string {
  const sha = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest()
  const str = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(4); l.writeUInt32LE(b.length); return Buffer.concat([l, b]) }
  const u64 = (n: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b }
  if (cs.length === 0) return sha(Buffer.from('nearai/contributions/v1/empty')).toString('hex')
  let level = [...cs].sort((a, b) => Buffer.compare(Buffer.from(a.peer), Buffer.from(b.peer)))
    .map(c => sha(Buffer.from('nearai/contributions/v1/leaf'), str(job), u64(round), str(c.peer), u64(c.samples)))
  while (level.length > 1) {
    const next: Buffer[] = []
    for (let i = 0; i < level.length; i += 2) {
      if (i + 1 === level.length) { next.push(level[i]); continue }
      const [lo, hi] = Buffer.compare(level[i], level[i + 1]) <= 0 ? [level[i], level[i + 1]] : [level[i + 1], level[i]]
      next.push(sha(Buffer.from('nearai/contributions/v1/node'), lo, hi))
    }
    level = next
  }
  return level[0].toString('hex')
}

describe('contributions Merkle root', () => {
  it('matches the documented byte layout', () => {
    const leaf = encodeContributionLeaf({ job: 'mnist', round: 258, peer: peer(1), samples: 1000 })
    const expected = Buffer.concat([
      Buffer.from('nearai/contributions/v1/leaf'),
      Buffer.from([5, 0, 0, 0]), Buffer.from('mnist'),
      Buffer.from([2, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from([52, 0, 0, 0]), Buffer.from(peer(1)),
      Buffer.from([0xe8, 0x03, 0, 0, 0, 0, 0, 0])
    ])
    assert.equal(Buffer.from(leaf).toString('hex'), expected.toString('hex'))
    assert.equal(contributionLeafHash({ job: 'mnist', round: 258, peer: peer(1), samples: 1000 }), createHash('sha256').update(expected).digest('hex'))
    for (let n = 0; n <= 13; n++) assert.equal(contributionsRoot('mnist', 3, contributions(n)), referenceRoot('mnist', 3, contributions(n)), `n=${n}`)
  })

  it('is deterministic and independent of the order contributions are listed in', () => {
    for (const n of [1, 2, 3, 5, 8, 11]) {
      const root = contributionsRoot('job-a', 7, contributions(n))
      assert.match(root, /^[0-9a-f]{64}$/)
      for (let seed = 1; seed <= 4; seed++) assert.equal(contributionsRoot('job-a', 7, shuffled(contributions(n), seed)), root)
    }
  })

  it('changes when any peer, sample count, round or job changes', () => {
    const base = contributions(5)
    const root = contributionsRoot('job-a', 7, base)
    const variants: Array<[string, string]> = [
      ['job', contributionsRoot('job-b', 7, base)],
      ['round', contributionsRoot('job-a', 8, base)],
      ['samples', contributionsRoot('job-a', 7, base.map((c, i) => i === 3 ? { ...c, samples: c.samples + 1 } : c))],
      ['peer', contributionsRoot('job-a', 7, base.map((c, i) => i === 0 ? { ...c, peer: peer(99) } : c))],
      ['one fewer', contributionsRoot('job-a', 7, base.slice(1))],
      ['one more', contributionsRoot('job-a', 7, [...base, { peer: peer(50), samples: 0 }])]
    ]
    for (const [what, r] of variants) assert.notEqual(r, root, what)
    assert.equal(new Set(variants.map(v => v[1])).size, variants.length)
  })

  it('has a defined root for a round without contributions, and a lone leaf is its own root', () => {
    assert.equal(contributionsRoot('job-a', 0, []), EMPTY_CONTRIBUTIONS_ROOT)
    assert.equal(EMPTY_CONTRIBUTIONS_ROOT, createHash('sha256').update('nearai/contributions/v1/empty').digest('hex'))
    assert.equal(contributionsRoot('job-b', 9, []), EMPTY_CONTRIBUTIONS_ROOT)
    const one = [{ peer: peer(4), samples: 12 }]
    assert.equal(contributionsRoot('job-a', 0, one), contributionLeafHash({ job: 'job-a', round: 0, ...one[0] }))
    assert.deepEqual(contributionProof('job-a', 0, one, peer(4)), [])
    assert.equal(verifyContributionProof(contributionsRoot('job-a', 0, one), { job: 'job-a', round: 0, ...one[0] }, []), true)
  })

  it('proves every leaf, and rejects altered leaves, siblings and roots', () => {
    for (let n = 1; n <= 17; n++) {
      const cs = shuffled(contributions(n), n)
      const root = contributionsRoot('job-a', 4, cs)
      for (const c of cs) {
        const leaf = { job: 'job-a', round: 4, peer: c.peer, samples: c.samples }
        const proof = contributionProof('job-a', 4, cs, c.peer)
        assert.ok(proof.length <= Math.ceil(Math.log2(n)), `n=${n} proof length ${proof.length}`)
        assert.equal(verifyContributionProof(root, leaf, proof), true, `n=${n} ${c.peer}`)
        assert.equal(verifyContributionProof(root, { ...leaf, samples: leaf.samples + 1 }, proof), false)
        assert.equal(verifyContributionProof(root, { ...leaf, round: 5 }, proof), false)
        assert.equal(verifyContributionProof(root, { ...leaf, job: 'job-b' }, proof), false)
        assert.equal(verifyContributionProof(root, { ...leaf, peer: peer(200) }, proof), false)
        assert.equal(verifyContributionProof(contributionsRoot('job-a', 5, cs), leaf, proof), false)
        if (proof.length > 0) {
          const flipped = proof.map((h, i) => i === proof.length - 1 ? (h[0] === '0' ? '1' : '0') + h.slice(1) : h)
          assert.equal(verifyContributionProof(root, leaf, flipped), false)
          assert.equal(verifyContributionProof(root, leaf, proof.slice(0, -1)), false)
        }
      }
    }
  })

  it('totals the accepted samples under the root, checked like the root\'s input', () => {
    assert.equal(contributionsTotal([]), 0)
    assert.equal(contributionsTotal(contributions(5)), 5 * 100 + 7 * (0 + 1 + 2 + 3 + 4))
    assert.equal(contributionsTotal(shuffled(contributions(9), 3)), contributionsTotal(contributions(9)))
    assert.throws(() => contributionsTotal([{ peer: peer(1), samples: 1 }, { peer: peer(1), samples: 2 }]), InvalidContributionsError)
    assert.throws(() => contributionsTotal([{ peer: peer(1), samples: 2 ** 52 }, { peer: peer(2), samples: 2 ** 52 }]), /add up past 2\^53-1/)
  })

  it('rejects duplicates and malformed input with InvalidContributionsError', () => {
    const dup = [{ peer: peer(1), samples: 5 }, { peer: peer(2), samples: 5 }, { peer: peer(1), samples: 6 }]
    assert.throws(() => contributionsRoot('job-a', 1, dup), (err: Error) => err instanceof InvalidContributionsError && /appears more than once/.test(err.message))
    assert.throws(() => contributionsRoot('job-a', 1, dup), InvalidMessageError)
    const bad: Array<[string, () => unknown]> = [
      ['job upper case', () => contributionsRoot('Job', 1, [])],
      ['job empty', () => contributionsRoot('', 1, [])],
      ['negative round', () => contributionsRoot('j', -1, [])],
      ['fractional round', () => contributionsRoot('j', 1.5, [])],
      ['peer not base58', () => contributionsRoot('j', 1, [{ peer: '0OIl'.repeat(12), samples: 1 }])],
      ['peer too short', () => contributionsRoot('j', 1, [{ peer: 'abc', samples: 1 }])],
      ['negative samples', () => contributionsRoot('j', 1, [{ peer: peer(1), samples: -1 }])],
      ['unsafe samples', () => contributionsRoot('j', 1, [{ peer: peer(1), samples: 2 ** 53 }])],
      ['samples as string', () => contributionsRoot('j', 1, [{ peer: peer(1), samples: '3' as unknown as number }])],
      ['not an array', () => contributionsRoot('j', 1, {} as unknown as Contribution[])],
      ['absent peer', () => contributionProof('j', 1, contributions(3), peer(9))],
      ['root not hex', () => verifyContributionProof('XYZ', { job: 'j', round: 1, peer: peer(1), samples: 1 }, [])],
      ['sibling not hex', () => verifyContributionProof('0'.repeat(64), { job: 'j', round: 1, peer: peer(1), samples: 1 }, ['00'])],
      ['proof too long', () => verifyContributionProof('0'.repeat(64), { job: 'j', round: 1, peer: peer(1), samples: 1 }, Array(65).fill('0'.repeat(64)))]
    ]
    for (const [what, fn] of bad) assert.throws(fn, InvalidContributionsError, what)
    assert.equal(contributionsRoot('j', 2 ** 53 - 1, [{ peer: peer(1), samples: 2 ** 53 - 1 }]).length, 64)
  })
})
