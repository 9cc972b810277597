/**
 * Line-oriented sources read straight from a file, streaming: CSV with a header row, JSON Lines, and raw
 * text. One pass records where each sample (line) ends and validates it; shards are later read back from
 * the file by byte range, so a dataset larger than memory can be imported.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { DatasetFormat } from '../../../protocol/dataset-format.ts'
import type { DatasetSchema } from '../../../protocol/dataset-manifest.ts'
import { UnsupportedInputError } from '../errors.ts'
import { describeBytes, MAX_IMPORT_SAMPLE_BYTES } from '../limits.ts'
import { SampleOffsets, type SampleSource } from './source.ts'

const NL = 0x0a
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Calls `onLine` with each line (without its '\n') and the file offset just past it. */
async function scanLines (path: string, start: number, onLine: (line: Uint8Array, end: number, lineNo: number) => void, signal?: AbortSignal): Promise<void> {
  // The unfinished line's pieces, joined once its end arrives (one copy, however many chunks it spans).
  let carry: Buffer[] = []
  let carried = 0
  let offset = start
  let lineNo = 0
  for await (const buf of createReadStream(path, { start, highWaterMark: 1024 * 1024, signal }) as AsyncIterable<Buffer>) {
    let from = 0
    let nl = buf.indexOf(NL, from)
    while (nl !== -1) {
      let line: Uint8Array = buf.subarray(from, nl)
      if (carried > 0) { line = Buffer.concat([...carry, line]); carry = []; carried = 0 }
      offset += line.byteLength + 1
      onLine(line, offset, ++lineNo)
      from = nl + 1
      nl = buf.indexOf(NL, from)
    }
    if (from < buf.byteLength) { carry.push(Buffer.from(buf.subarray(from))); carried += buf.byteLength - from }
    if (carried > MAX_IMPORT_SAMPLE_BYTES) {
      throw new UnsupportedInputError(`${path}: line ${lineNo + 1} is longer than ${describeBytes(MAX_IMPORT_SAMPLE_BYTES)}, the limit of one sample (MAX_IMPORT_SAMPLE_BYTES)`)
    }
  }
  if (carried > 0) {
    const line = Buffer.concat(carry)
    offset += line.byteLength
    onLine(line, offset, ++lineNo)
  }
}

function decodeLine (line: Uint8Array, path: string, lineNo: number): string {
  try {
    return decoder.decode(line)
  } catch {
    throw new UnsupportedInputError(`${path}: line ${lineNo} is not valid UTF-8`)
  }
}

function isBlank (line: Uint8Array): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false
  return true
}

function fileRange (path: string, dataStart: number): SampleSource['read'] {
  return async function * (start, end, signal) {
    if (end <= start) return
    yield * createReadStream(path, { start: dataStart + start, end: dataStart + end - 1, highWaterMark: 1024 * 1024, signal }) as AsyncIterable<Buffer>
  }
}

/** Records a line as a sample, or folds a blank line into the sample before it. */
function addSample (offsets: SampleOffsets, line: Uint8Array, end: number, lineNo: number, path: string): boolean {
  if (isBlank(line)) {
    if (offsets.length === 0) throw new UnsupportedInputError(`${path}: line ${lineNo} is blank before any sample`)
    offsets.extendLast(end)
    return false
  }
  offsets.push(end)
  return true
}

export interface CsvOptions {
  /** Label column; default: the column named label, class, target or y. */
  label?: string
  numClasses?: number
  featureScale?: number
  shape?: number[]
}

const LABEL_NAMES = ['label', 'class', 'target', 'y']

/** CSV with a header row; numeric features, an integer label column. Quoted fields are not supported. */
export async function csvSource (path: string, opts: CsvOptions = {}, signal?: AbortSignal): Promise<SampleSource> {
  let header: string | undefined
  // The header line alone; rows follow it.
  for await (const buf of createReadStream(path, { start: 0, end: 1024 * 1024 - 1, signal }) as AsyncIterable<Buffer>) {
    const nl = buf.indexOf(NL)
    if (nl === -1) throw new UnsupportedInputError(`${path}: no header line within the first MiB`)
    header = buf.subarray(0, nl).toString('utf-8')
    break
  }
  if (header == null) throw new UnsupportedInputError(`${path}: empty file`)
  const headerBytes = Buffer.byteLength(header) + 1
  const columns = header.replace(/\r$/, '').replace(/^\ufeff/, '').split(',').map(c => c.trim().replace(/^"(.*)"$/, '$1'))
  if (columns.length < 2 || columns.some(c => c === '')) throw new UnsupportedInputError(`${path}: the header must name at least two columns`)
  const label = opts.label ?? columns.find(c => LABEL_NAMES.includes(c.toLowerCase()))
  if (label == null) throw new UnsupportedInputError(`${path}: no label column (named one of ${LABEL_NAMES.join(', ')}); pass the label option`)
  const labelIndex = columns.indexOf(label)
  if (labelIndex === -1) throw new UnsupportedInputError(`${path}: label column "${label}" is not in the header`)
  const offsets = new SampleOffsets()
  let maxLabel = 0
  await scanLines(path, headerBytes, (line, end, lineNo) => {
    if (!addSample(offsets, line, end - headerBytes, lineNo + 1, path)) return
    const fields = decodeLine(line, path, lineNo + 1).replace(/\r$/, '').split(',')
    if (fields.length !== columns.length) throw new UnsupportedInputError(`${path}: line ${lineNo + 1} has ${fields.length} fields, the header has ${columns.length}`)
    const value = Number(fields[labelIndex])
    if (!Number.isInteger(value) || value < 0) throw new UnsupportedInputError(`${path}: line ${lineNo + 1}: label "${fields[labelIndex]}" is not a non-negative integer`)
    if (value > maxLabel) maxLabel = value
  }, signal)
  if (offsets.length === 0) throw new UnsupportedInputError(`${path}: no data rows`)
  const numClasses = opts.numClasses ?? Math.max(2, maxLabel + 1)
  const format: DatasetFormat = { kind: 'csv', columns, label, numClasses, featureScale: opts.featureScale ?? 1, ...(opts.shape != null ? { shape: opts.shape } : {}) }
  const schema: DatasetSchema = { sample: 'csv-row', features: columns.length - 1, numClasses }
  const totalBytes = (await stat(path)).size - headerBytes
  return { format, schema, totalBytes, sampleEnds: offsets, read: fileRange(path, headerBytes) }
}

export interface JsonLinesOptions {
  features?: string
  label?: string
  numClasses?: number
  featureScale?: number
  shape?: number[]
}

/** JSON Lines: one `{ features: number[], label: int }` object per line. */
export async function jsonLinesSource (path: string, opts: JsonLinesOptions = {}, signal?: AbortSignal): Promise<SampleSource> {
  const offsets = new SampleOffsets()
  let featuresKey = opts.features
  let labelKey = opts.label
  let width = -1
  let maxLabel = 0
  await scanLines(path, 0, (line, end, lineNo) => {
    if (!addSample(offsets, line, end, lineNo, path)) return
    let obj: Record<string, unknown>
    try {
      obj = JSON.parse(decoder.decode(line))
    } catch (err) {
      throw new UnsupportedInputError(`${path}: line ${lineNo} is not JSON (${(err as Error).message})`)
    }
    if (obj == null || typeof obj !== 'object' || Array.isArray(obj)) throw new UnsupportedInputError(`${path}: line ${lineNo} is not a JSON object`)
    featuresKey ??= Object.keys(obj).find(k => Array.isArray(obj[k]))
    labelKey ??= Object.keys(obj).find(k => LABEL_NAMES.includes(k.toLowerCase()))
    if (featuresKey == null || labelKey == null) throw new UnsupportedInputError(`${path}: cannot tell the features array and the label field apart; pass the features and label options`)
    const features = obj[featuresKey]
    const value = obj[labelKey]
    if (!Array.isArray(features) || features.some(f => typeof f !== 'number')) throw new UnsupportedInputError(`${path}: line ${lineNo}: "${featuresKey}" is not an array of numbers`)
    if (width === -1) width = features.length
    if (features.length !== width) throw new UnsupportedInputError(`${path}: line ${lineNo} has ${features.length} features, the first line has ${width}`)
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new UnsupportedInputError(`${path}: line ${lineNo}: label is not a non-negative integer`)
    if (value > maxLabel) maxLabel = value
  }, signal)
  if (offsets.length === 0 || featuresKey == null || labelKey == null) throw new UnsupportedInputError(`${path}: no samples`)
  const numClasses = opts.numClasses ?? Math.max(2, maxLabel + 1)
  const format: DatasetFormat = { kind: 'jsonl', features: featuresKey, label: labelKey, numClasses, featureScale: opts.featureScale ?? 1, ...(opts.shape != null ? { shape: opts.shape } : {}) }
  return { format, schema: { sample: 'json-line', features: width, numClasses }, totalBytes: (await stat(path)).size, sampleEnds: offsets, read: fileRange(path, 0) }
}

/** Above this share of control characters a file is not taken for text unless the text format was asked for. */
export const MAX_CONTROL_CHAR_SHARE = 0.05

export interface TextSourceOptions {
  /** The text format was asked for explicitly: import text full of control characters anyway. */
  forced?: boolean
}

/**
 * Raw UTF-8 text for language models: every line is a sample, shards break only after a '\n'. A file that
 * is not valid UTF-8 is refused (no peer could decode it), and so is one whose bytes are mostly control
 * characters (a binary file with a text-like name) unless the text format was forced.
 */
export async function textSource (path: string, signal?: AbortSignal, opts: TextSourceOptions = {}): Promise<SampleSource> {
  const offsets = new SampleOffsets()
  let control = 0
  let total = 0
  await scanLines(path, 0, (line, end, lineNo) => {
    try {
      decoder.decode(line)
    } catch {
      throw new UnsupportedInputError(`${path}: line ${lineNo} is not valid UTF-8, so this is not a text file (a binary file?): text datasets hold UTF-8 text`)
    }
    for (const b of line) if ((b < 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0c) || b === 0x7f) control++
    total = end
    // Blank lines are text too; only a file that starts with them needs the guard in addSample.
    if (offsets.length === 0 || !isBlank(line)) offsets.push(end)
    else offsets.extendLast(end)
  }, signal)
  if (offsets.length === 0) throw new UnsupportedInputError(`${path}: empty text file`)
  if (opts.forced !== true && control > MAX_CONTROL_CHAR_SHARE * total) {
    throw new UnsupportedInputError(`${path}: ${(100 * control / total).toFixed(0)}% of its bytes are control characters, so it does not look like text; ask for the text format explicitly (--format text) to import it anyway`)
  }
  return { format: { kind: 'text', encoding: 'utf-8' }, schema: { sample: 'text-line' }, totalBytes: (await stat(path)).size, sampleEnds: offsets, read: fileRange(path, 0) }
}
