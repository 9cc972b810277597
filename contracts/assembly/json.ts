// A small JSON reader and writer: arguments arrive as JSON and views return JSON, as NEAR users expect.
// Numbers keep their source text so integers are read exactly and floats compare by value.

export const enum Kind { Null, Bool, Num, Str, Arr, Obj }

export class JValue {
  kind: Kind = Kind.Null
  b: bool = false
  text: string = '' // number source text, or decoded string
  items: JValue[] = []
  keys: string[] = []

  get (key: string): JValue | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i]
    return null
  }
}

export class JsonParser {
  pos: i32 = 0
  error: string = ''
  constructor (public s: string) {}

  private fail (msg: string): JValue | null {
    if (this.error.length == 0) this.error = msg + ' at ' + this.pos.toString()
    return null
  }

  private ws (): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos)
      if (c == 32 || c == 9 || c == 10 || c == 13) this.pos++
      else break
    }
  }

  parseDocument (): JValue | null {
    const v = this.value(0)
    if (v == null) return null
    this.ws()
    if (this.pos != this.s.length) return this.fail('trailing characters')
    return v
  }

  private value (depth: i32): JValue | null {
    if (depth > 32) return this.fail('nesting too deep')
    this.ws()
    if (this.pos >= this.s.length) return this.fail('unexpected end')
    const c = this.s.charCodeAt(this.pos)
    const v = new JValue()
    if (c == 123) { // {
      v.kind = Kind.Obj
      this.pos++
      this.ws()
      if (this.peek() == 125) { this.pos++; return v }
      while (true) {
        this.ws()
        if (this.peek() != 34) return this.fail('expected key')
        const k = this.str()
        if (k == null) return null
        this.ws()
        if (this.peek() != 58) return this.fail('expected :')
        this.pos++
        const item = this.value(depth + 1)
        if (item == null) return null
        if (v.get(k) != null) return this.fail('duplicate key')
        v.keys.push(k)
        v.items.push(item)
        this.ws()
        const d = this.peek()
        this.pos++
        if (d == 44) continue
        if (d == 125) return v
        return this.fail('expected , or }')
      }
    }
    if (c == 91) { // [
      v.kind = Kind.Arr
      this.pos++
      this.ws()
      if (this.peek() == 93) { this.pos++; return v }
      while (true) {
        const item = this.value(depth + 1)
        if (item == null) return null
        v.items.push(item)
        this.ws()
        const d = this.peek()
        this.pos++
        if (d == 44) continue
        if (d == 93) return v
        return this.fail('expected , or ]')
      }
    }
    if (c == 34) {
      const t = this.str()
      if (t == null) return null
      v.kind = Kind.Str
      v.text = t
      return v
    }
    if (this.lit('true')) { v.kind = Kind.Bool; v.b = true; return v }
    if (this.lit('false')) { v.kind = Kind.Bool; return v }
    if (this.lit('null')) return v
    const start = this.pos
    if (this.peek() == 45) this.pos++
    if (!this.digits()) return this.fail('bad number')
    if (this.peek() == 46) { this.pos++; if (!this.digits()) return this.fail('bad number') }
    const e = this.peek()
    if (e == 101 || e == 69) {
      this.pos++
      const sgn = this.peek()
      if (sgn == 43 || sgn == 45) this.pos++
      if (!this.digits()) return this.fail('bad number')
    }
    v.kind = Kind.Num
    v.text = this.s.substring(start, this.pos)
    return v
  }

  private peek (): i32 { return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1 }

  private digits (): bool {
    const start = this.pos
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos)
      if (c < 48 || c > 57) break
      this.pos++
    }
    return this.pos > start
  }

  private lit (word: string): bool {
    if (this.s.substring(this.pos, this.pos + word.length) == word) { this.pos += word.length; return true }
    return false
  }

  private str (): string | null {
    this.pos++ // opening quote
    let out = ''
    let runStart = this.pos
    while (true) {
      if (this.pos >= this.s.length) { this.fail('unterminated string'); return null }
      const c = this.s.charCodeAt(this.pos)
      if (c == 34) {
        out += this.s.substring(runStart, this.pos)
        this.pos++
        return out
      }
      if (c < 32) { this.fail('control character in string'); return null }
      if (c == 92) {
        out += this.s.substring(runStart, this.pos)
        this.pos++
        const e = this.peek()
        this.pos++
        if (e == 34) out += '"'
        else if (e == 92) out += '\\'
        else if (e == 47) out += '/'
        else if (e == 98) out += '\b'
        else if (e == 102) out += '\f'
        else if (e == 110) out += '\n'
        else if (e == 114) out += '\r'
        else if (e == 116) out += '\t'
        else if (e == 117) {
          if (this.pos + 4 > this.s.length) { this.fail('bad escape'); return null }
          const code = I32.parseInt(this.s.substring(this.pos, this.pos + 4), 16)
          if (isNaN<f64>(<f64>code)) { this.fail('bad escape'); return null }
          out += String.fromCharCode(code)
          this.pos += 4
        } else { this.fail('bad escape'); return null }
        runStart = this.pos
        continue
      }
      this.pos++
    }
  }
}

/** A JSON string literal for `s`. */
export function quote (s: string): string {
  let out = '"'
  let runStart = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c == 34 || c == 92 || c < 32) {
      out += s.substring(runStart, i)
      if (c == 34) out += '\\"'
      else if (c == 92) out += '\\\\'
      else if (c == 10) out += '\\n'
      else if (c == 13) out += '\\r'
      else if (c == 9) out += '\\t'
      else {
        const hex = c.toString(16)
        out += '\\u' + '0000'.substring(0, 4 - hex.length) + hex
      }
      runStart = i + 1
    }
  }
  return out + s.substring(runStart) + '"'
}

/** Builds one JSON object field by field, values already encoded. */
export class ObjWriter {
  private parts: string[] = []
  raw (key: string, json: string): ObjWriter { this.parts.push(quote(key) + ':' + json); return this }
  str (key: string, v: string): ObjWriter { return this.raw(key, quote(v)) }
  toString (): string { return '{' + this.parts.join(',') + '}' }
}

export function strArray (xs: string[]): string {
  const q: string[] = []
  for (let i = 0; i < xs.length; i++) q.push(quote(xs[i]))
  return '[' + q.join(',') + ']'
}
