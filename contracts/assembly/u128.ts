// Unsigned 128-bit amounts (yoctoNEAR) as two u64 halves: NEAR passes them as 16 little-endian bytes,
// JSON carries them as decimal strings (NEP-141/145 convention, since JS numbers cannot hold them).

export class U128 {
  constructor (public lo: u64 = 0, public hi: u64 = 0) {}

  static fromU64 (v: u64): U128 { return new U128(v, 0) }

  static load (ptr: usize): U128 { return new U128(load<u64>(ptr), load<u64>(ptr + 8)) }

  store (ptr: usize): void { store<u64>(ptr, this.lo); store<u64>(ptr + 8, this.hi) }

  toBytes (): ArrayBuffer {
    const b = new ArrayBuffer(16)
    this.store(changetype<usize>(b))
    return b
  }

  isZero (): bool { return this.lo == 0 && this.hi == 0 }

  cmp (o: U128): i32 {
    if (this.hi != o.hi) return this.hi < o.hi ? -1 : 1
    if (this.lo != o.lo) return this.lo < o.lo ? -1 : 1
    return 0
  }

  /** Panics on overflow: an amount that wraps would mint balance out of nothing. */
  add (o: U128): U128 {
    const lo = this.lo + o.lo
    const carry: u64 = lo < this.lo ? 1 : 0
    const hi1 = this.hi + o.hi
    const hi = hi1 + carry
    if (hi1 < this.hi || hi < hi1) abort('u128 overflow')
    return new U128(lo, hi)
  }

  /** Caller checks `cmp` first; underflow is a contract bug, so it aborts. */
  sub (o: U128): U128 {
    if (this.cmp(o) < 0) abort('u128 underflow')
    const borrow: u64 = this.lo < o.lo ? 1 : 0
    return new U128(this.lo - o.lo, this.hi - o.hi - borrow)
  }

  /** this * m for a small multiplier (bytes * price), through 32-bit limbs. */
  mulU64 (m: u64): U128 {
    const m0 = m & 0xFFFFFFFF
    const m1 = m >> 32
    const a0 = this.lo & 0xFFFFFFFF
    const a1 = this.lo >> 32
    const a2 = this.hi & 0xFFFFFFFF
    const a3 = this.hi >> 32
    // schoolbook multiply of 4x2 limbs, carrying in u64
    const limbs = new StaticArray<u64>(6)
    const a: u64[] = [a0, a1, a2, a3]
    const b: u64[] = [m0, m1]
    for (let i = 0; i < 4; i++) {
      let carry: u64 = 0
      for (let j = 0; j < 2; j++) {
        const t = a[i] * b[j] + limbs[i + j] + carry
        limbs[i + j] = t & 0xFFFFFFFF
        carry = t >> 32
      }
      limbs[i + 2] += carry
    }
    if (limbs[4] != 0 || limbs[5] != 0) abort('u128 overflow')
    return new U128(limbs[0] | (limbs[1] << 32), limbs[2] | (limbs[3] << 32))
  }

  /** Divides by 10 in place through 32-bit limbs and returns the remainder. */
  private divmod10 (): u32 {
    const limbs: u64[] = [this.hi >> 32, this.hi & 0xFFFFFFFF, this.lo >> 32, this.lo & 0xFFFFFFFF]
    let rem: u64 = 0
    for (let i = 0; i < 4; i++) {
      const cur = (rem << 32) | limbs[i]
      limbs[i] = cur / 10
      rem = cur % 10
    }
    this.hi = (limbs[0] << 32) | limbs[1]
    this.lo = (limbs[2] << 32) | limbs[3]
    return <u32>rem
  }

  toString (): string {
    if (this.isZero()) return '0'
    const t = new U128(this.lo, this.hi)
    let s = ''
    while (!t.isZero()) s = String.fromCharCode(48 + t.divmod10()) + s
    return s
  }

  /** Parses a decimal string; returns null on anything but 1..39 digits or on overflow. */
  static parse (s: string): U128 | null {
    if (s.length == 0 || s.length > 39) return null
    let v = new U128()
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c < 48 || c > 57) return null
      const times8 = v.mulU64(8)
      const times2 = v.mulU64(2)
      v = times8.add(times2).add(U128.fromU64(<u64>(c - 48)))
    }
    return v
  }
}
