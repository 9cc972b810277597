/**
 * Gas metering of wasm execution for the harness: the module is rewritten so that every function
 * entry and every loop iteration takes one tick from an exported i64 global, and traps with
 * `unreachable` once it goes negative. The host refills the global from the prepaid gas and charges
 * the ticks spent, so a contract looping without host calls still runs out of gas instead of hanging.
 * A tick is a coarse unit (per block entered, not per instruction), which is all the dev chain needs.
 * Only the harness runs the rewritten module; the deployed contract is never changed.
 */
import { WasmFormatError } from './wasm-inspect.ts'

export const GAS_GLOBAL_EXPORT = '__nearai_gas_ticks'
/** Ticks the module starts with, for its start function (run at instantiation, before the host can refill). */
export const START_TICKS = 1_000_000

function sleb (n: number): number[] {
  const out: number[] = []
  while (true) {
    const b = n & 0x7f
    n = Math.floor(n / 128)
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out }
    out.push(b | 0x80)
  }
}

function uleb (n: number): number[] {
  const out: number[] = []
  do { let b = n & 0x7f; n = Math.floor(n / 128); if (n !== 0) b |= 0x80; out.push(b) } while (n !== 0)
  return out
}

class Cursor {
  pos = 0
  constructor (readonly b: Uint8Array) {}
  byte (): number { if (this.pos >= this.b.length) throw new WasmFormatError('unexpected end of wasm'); return this.b[this.pos++] }
  u32 (): number { let r = 0; let s = 0; while (true) { const x = this.byte(); r += (x & 0x7f) * 2 ** s; if ((x & 0x80) === 0) return r; s += 7 } }
  sleb (): void { while ((this.byte() & 0x80) !== 0) { /* skip */ } }
  name (): void { const n = this.u32(); this.pos += n }
}

/** Instruction offsets right after each `loop` block type, within one function body's code. */
function loopStarts (code: Uint8Array): number[] {
  const r = new Cursor(code)
  const starts: number[] = []
  while (r.pos < code.length) {
    const op = r.byte()
    if (op === 0x02 || op === 0x03 || op === 0x04) { const bt = r.b[r.pos]; if (bt === 0x40 || (bt >= 0x7c && bt <= 0x7f)) r.pos++; else r.sleb(); if (op === 0x03) starts.push(r.pos) } else if (op === 0x0c || op === 0x0d || op === 0x10 || (op >= 0x20 && op <= 0x24)) r.u32()
    else if (op === 0x0e) { for (let n = r.u32(); n >= 0; n--) r.u32() } else if (op === 0x11) { r.u32(); r.byte() } else if (op >= 0x28 && op <= 0x3e) { r.u32(); r.u32() } else if (op === 0x3f || op === 0x40) r.byte()
    else if (op === 0x41 || op === 0x42) r.sleb()
    else if (op === 0x43) r.pos += 4
    else if (op === 0x44) r.pos += 8
    else if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || (op >= 0x45 && op <= 0xc4)) { /* no immediates */ } else throw new WasmFormatError(`cannot meter opcode 0x${op.toString(16)}`)
  }
  return starts
}

/** Returns the module with a gas-tick global exported as GAS_GLOBAL_EXPORT and ticks charged at function entries and loop heads. */
export function meterWasm (bytes: Uint8Array): Uint8Array {
  const sections: Array<{ id: number, body: Uint8Array }> = []
  const r = new Cursor(bytes)
  r.pos = 8
  while (r.pos < bytes.length) {
    const id = r.byte(); const size = r.u32()
    sections.push({ id, body: bytes.subarray(r.pos, r.pos + size) })
    r.pos += size
  }
  let importedGlobals = 0
  const imp = sections.find(s => s.id === 2)
  if (imp != null) {
    const c = new Cursor(imp.body)
    for (let n = c.u32(); n > 0; n--) {
      c.name(); c.name()
      const kind = c.byte()
      if (kind === 0) c.u32()
      else if (kind === 1) { c.byte(); const f = c.byte(); c.u32(); if (f & 1) c.u32() } else if (kind === 2) { const f = c.byte(); c.u32(); if (f & 1) c.u32() } else if (kind === 3) { c.byte(); c.byte(); importedGlobals++ }
    }
  }
  const newGlobal = [0x7e, 0x01, 0x42, ...sleb(START_TICKS), 0x0b] // (mut i64) (i64.const START_TICKS)
  let definedGlobals = 0
  const glob = sections.find(s => s.id === 6)
  if (glob != null) {
    const c = new Cursor(glob.body)
    definedGlobals = c.u32()
    glob.body = Uint8Array.from([...uleb(definedGlobals + 1), ...glob.body.subarray(c.pos), ...newGlobal])
  } else {
    const at = sections.findIndex(s => [7, 8, 9, 12, 10, 11].includes(s.id))
    sections.splice(at < 0 ? sections.length : at, 0, { id: 6, body: Uint8Array.from([1, ...newGlobal]) })
  }
  const g = uleb(importedGlobals + definedGlobals)
  const exportEntry = [...uleb(GAS_GLOBAL_EXPORT.length), ...Buffer.from(GAS_GLOBAL_EXPORT), 0x03, ...g]
  const exp = sections.find(s => s.id === 7)
  if (exp != null) {
    const c = new Cursor(exp.body)
    const n = c.u32()
    exp.body = Uint8Array.from([...uleb(n + 1), ...exp.body.subarray(c.pos), ...exportEntry])
  } else {
    const at = sections.findIndex(s => [8, 9, 12, 10, 11].includes(s.id))
    sections.splice(at < 0 ? sections.length : at, 0, { id: 7, body: Uint8Array.from([1, ...exportEntry]) })
  }
  // global.get g; i64.const 1; i64.sub; global.set g; global.get g; i64.const 0; i64.lt_s; if; unreachable; end
  const tick = [0x23, ...g, 0x42, 0x01, 0x7d, 0x24, ...g, 0x23, ...g, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b]
  const code = sections.find(s => s.id === 10)
  if (code != null) {
    const c = new Cursor(code.body)
    const count = c.u32()
    const out: number[] = [...uleb(count)]
    for (let f = 0; f < count; f++) {
      const size = c.u32()
      const end = c.pos + size
      const bodyStart = c.pos
      for (let groups = c.u32(); groups > 0; groups--) { c.u32(); c.byte() }
      const locals = code.body.subarray(bodyStart, c.pos)
      const instrs = code.body.subarray(c.pos, end)
      const parts: number[] = [...locals, ...tick]
      let last = 0
      for (const at of loopStarts(instrs)) { parts.push(...instrs.subarray(last, at), ...tick); last = at }
      parts.push(...instrs.subarray(last))
      out.push(...uleb(parts.length), ...parts)
      c.pos = end
    }
    code.body = Uint8Array.from(out)
  }
  const result: number[] = [...bytes.subarray(0, 8)]
  for (const s of sections) result.push(s.id, ...uleb(s.body.length), ...s.body)
  return Uint8Array.from(result)
}
