/**
 * Reads a wasm binary and reports what NEAR checks before it accepts a contract: imports, exported
 * function signatures, and any use of post-MVP features NEAR rejects (bulk memory and the 0xFC prefix,
 * SIMD 0xFD, threads 0xFE, multi-value, reference types, sign-extension, mutable global imports,
 * exception handling, tail calls). Walks every instruction of the code section.
 */

export interface WasmReport {
  imports: Array<{ module: string, name: string, kind: number }>
  /** Exported functions with their parameter and result counts. */
  exportedFunctions: Array<{ name: string, params: number, results: number }>
  /** Post-MVP features found, each with where it was seen. */
  forbidden: string[]
}

export class WasmFormatError extends Error {
  override name = 'WasmFormatError'
}

class Reader {
  pos = 0
  constructor (readonly b: Uint8Array, readonly end = b.length) {}
  byte (): number {
    if (this.pos >= this.end) throw new WasmFormatError('unexpected end of wasm')
    return this.b[this.pos++]
  }
  u32 (): number {
    let result = 0; let shift = 0
    while (true) {
      const x = this.byte()
      result += (x & 0x7f) * 2 ** shift
      if ((x & 0x80) === 0) return result
      shift += 7
      if (shift > 35) throw new WasmFormatError('bad LEB128')
    }
  }
  /** Signed LEB128 of any width: only skipped, value not needed. */
  sleb (): void { while ((this.byte() & 0x80) !== 0) { /* continuation */ } }
  skip (n: number): void { this.pos += n; if (this.pos > this.end) throw new WasmFormatError('unexpected end of wasm') }
  name (): string { const n = this.u32(); const s = Buffer.from(this.b.subarray(this.pos, this.pos + n)).toString('utf8'); this.skip(n); return s }
}

const MVP_VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c])

function limits (r: Reader, forbidden: string[], where: string): void {
  const flags = r.byte()
  if (flags & ~0x01) forbidden.push(`shared or 64-bit limits in ${where}`)
  r.u32()
  if (flags & 0x01) r.u32()
}

export function inspectWasm (bytes: Uint8Array): WasmReport {
  const r = new Reader(bytes)
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new WasmFormatError('not a wasm module')
  r.skip(8)
  const forbidden: string[] = []
  const imports: WasmReport['imports'] = []
  const types: Array<{ params: number, results: number }> = []
  const funcTypes: number[] = [] // type index of every function, imports first
  const exportsRaw: Array<{ name: string, kind: number, index: number }> = []
  let tables = 0

  while (r.pos < bytes.length) {
    const id = r.byte()
    const size = r.u32()
    const end = r.pos + size
    const s = new Reader(bytes, end)
    s.pos = r.pos
    switch (id) {
      case 1: { // types
        for (let n = s.u32(); n > 0; n--) {
          if (s.byte() !== 0x60) forbidden.push('non-function type (gc)')
          const params = s.u32()
          for (let i = 0; i < params; i++) if (!MVP_VALTYPES.has(s.byte())) forbidden.push('non-MVP value type in a signature')
          const results = s.u32()
          for (let i = 0; i < results; i++) if (!MVP_VALTYPES.has(s.byte())) forbidden.push('non-MVP value type in a signature')
          if (results > 1) forbidden.push('multi-value function type')
          types.push({ params, results })
        }
        break
      }
      case 2: { // imports
        for (let n = s.u32(); n > 0; n--) {
          const module = s.name(); const name = s.name(); const kind = s.byte()
          imports.push({ module, name, kind })
          if (kind === 0) funcTypes.push(s.u32())
          else if (kind === 1) { tables++; if (s.byte() !== 0x70) forbidden.push('reference-types table'); limits(s, forbidden, 'table import') } else if (kind === 2) limits(s, forbidden, 'memory import')
          else if (kind === 3) { if (!MVP_VALTYPES.has(s.byte())) forbidden.push('non-MVP global type'); if (s.byte() !== 0) forbidden.push('mutable global import') } else forbidden.push(`import kind ${kind}`)
        }
        break
      }
      case 3: for (let n = s.u32(); n > 0; n--) funcTypes.push(s.u32()); break
      case 4: for (let n = s.u32(); n > 0; n--) { tables++; if (s.byte() !== 0x70) forbidden.push('reference-types table'); limits(s, forbidden, 'table') } break
      case 7: for (let n = s.u32(); n > 0; n--) { exportsRaw.push({ name: s.name(), kind: s.byte(), index: s.u32() }) } break
      case 12: forbidden.push('data count section (bulk memory)'); break
      case 10: { // code
        const count = s.u32()
        for (let f = 0; f < count; f++) {
          const bodySize = s.u32()
          const body = new Reader(bytes, s.pos + bodySize)
          body.pos = s.pos
          for (let groups = body.u32(); groups > 0; groups--) {
            body.u32()
            if (!MVP_VALTYPES.has(body.byte())) forbidden.push(`non-MVP local type in function ${f}`)
          }
          scanInstructions(body, forbidden, `function ${f}`)
          s.pos += bodySize
        }
        break
      }
      default: break
    }
    r.pos = end
  }
  if (tables > 1) forbidden.push('more than one table (reference types)')
  const exportedFunctions = exportsRaw.filter(e => e.kind === 0).map(e => {
    const t = types[funcTypes[e.index]]
    return { name: e.name, params: t?.params ?? -1, results: t?.results ?? -1 }
  })
  return { imports, exportedFunctions, forbidden }
}

function scanInstructions (r: Reader, forbidden: string[], where: string): void {
  while (r.pos < r.end) {
    const op = r.byte()
    if (op === 0x02 || op === 0x03 || op === 0x04) {
      const bt = r.b[r.pos]
      if (bt === 0x40 || MVP_VALTYPES.has(bt)) r.pos++
      else { forbidden.push(`multi-value block type in ${where}`); r.sleb() }
    } else if (op === 0x0c || op === 0x0d || op === 0x10 || (op >= 0x20 && op <= 0x24)) r.u32()
    else if (op === 0x0e) { for (let n = r.u32(); n >= 0; n--) r.u32() } // n labels + default
    else if (op === 0x11) { r.u32(); if (r.byte() !== 0) forbidden.push(`call_indirect on a second table in ${where}`) } else if (op >= 0x28 && op <= 0x3e) { r.u32(); r.u32() } else if (op === 0x3f || op === 0x40) { if (r.byte() !== 0) forbidden.push(`multi-memory in ${where}`) } else if (op === 0x41 || op === 0x42) r.sleb()
    else if (op === 0x43) r.skip(4)
    else if (op === 0x44) r.skip(8)
    else if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || (op >= 0x45 && op <= 0xbf)) { /* no immediates */ } else if (op >= 0xc0 && op <= 0xc4) forbidden.push(`sign-extension op 0x${op.toString(16)} in ${where}`)
    else if (op === 0xfc) { forbidden.push(`0xFC prefix op ${r.u32()} (bulk memory / non-trapping conversion) in ${where}`); return } else if (op === 0xfd) { forbidden.push(`SIMD op in ${where}`); return } else if (op === 0xfe) { forbidden.push(`threads op in ${where}`); return } else { forbidden.push(`non-MVP opcode 0x${op.toString(16)} in ${where}`); return }
  }
}
