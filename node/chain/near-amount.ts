/** NEAR amounts: "1.5" NEAR as exact yoctoNEAR (10^24 per NEAR) and back, with no float in between. */

export const YOCTO_PER_NEAR = 10n ** 24n

/** Parses a decimal NEAR amount ("2", "0.5", "1.000000000000000000000001") to yoctoNEAR; throws RangeError otherwise. */
export function parseNear (text: string): bigint {
  const m = /^(\d{1,15})(?:\.(\d{1,24}))?$/.exec(text.trim())
  if (m == null) throw new RangeError(`"${text}" is not an amount of NEAR (a decimal number with at most 24 decimals, e.g. 1.5)`)
  return BigInt(m[1]) * YOCTO_PER_NEAR + BigInt((m[2] ?? '').padEnd(24, '0'))
}

/** yoctoNEAR as a NEAR decimal without trailing zeros ("1.5", "0", "0.000000000000000000000001"). */
export function formatNear (yocto: bigint | string): string {
  const v = BigInt(yocto)
  const whole = v / YOCTO_PER_NEAR
  const frac = (v % YOCTO_PER_NEAR).toString().padStart(24, '0').replace(/0+$/, '')
  return frac.length > 0 ? `${whole}.${frac}` : whole.toString()
}
