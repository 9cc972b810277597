/**
 * Decodes one dataset shard's bytes into training samples, by the DatasetFormat its manifest carries.
 * The byte layouts are the ones the importers in node/storage/importers write:
 *
 * - `csv`: rows without a header (decodeCsvShard).
 * - `jsonl`: one `{ "<features>": number[], "<label>": int }` object a line.
 * - `image-records`: per sample one label byte then height·width·channels pixel bytes (from image folders
 *   of netpbm files); pixels are scaled by the format's featureScale.
 * - `text`: raw UTF-8, decoded for a character-level language model into windows of `context` tokens
 *   (x) and the same windows shifted by one token (y, the next characters), with `labelShape: [context]`.
 *
 * The vocabulary of text shards is not in the manifest, so the job decides it and passes it here:
 * - default, bytes: every UTF-8 byte is one token, ids 0..255 (vocab 256). Any text decodes, a
 *   non-ASCII character becomes several tokens. A char-transformer for it has `vocab: 256`.
 * - `vocab: "<characters>"`: the string's characters (Unicode code points, no repeats), in order, are
 *   ids 0..n-1 (vocab n). A character outside it is an error, or becomes the `unknown` character's id.
 *
 * Malformed bytes throw InvalidMessageError naming the format, the line or record, and what is wrong;
 * options a caller got wrong throw RangeError.
 */
import type { z } from 'zod'
import { DatasetFormat, type ImageRecordsFormat, type JsonLinesFormat, type TextFormat } from '../../../protocol/dataset-format.ts'
import { parseWith } from '../../../protocol/codec.ts'
import { InvalidMessageError } from '../../../protocol/errors.ts'
import type { Samples } from '../local-trainer.ts'
import { decodeCsvShard } from './decode-csv.ts'

export const BYTE_VOCAB_SIZE = 256
const KINDS = ['csv', 'jsonl', 'text', 'image-records'] as const

export interface TextVocabOptions {
  /** The vocabulary's characters, id = position. Default: UTF-8 bytes, ids 0..255. */
  vocab?: string
  /** A character of `vocab` standing for characters outside it. Without it, such a character is an error. */
  unknown?: string
}

export interface DecodeShardOptions extends TextVocabOptions {
  /** Text: tokens per sample, the model's context length. Required for text shards. */
  context?: number
  /** Text: tokens between the starts of consecutive windows (default `context`: no overlap). */
  stride?: number
  /** csv, jsonl, image-records: the shard's sample count from the manifest; another count is an error. */
  samples?: number
}

/** Decodes `bytes`, one shard laid out in `format`, into samples; throws InvalidMessageError on bad bytes. */
export function decodeShard (format: DatasetFormat, bytes: Uint8Array, options: DecodeShardOptions = {}): Samples {
  const kind = (format as { kind?: unknown } | null)?.kind
  if (!KINDS.includes(kind as typeof KINDS[number])) {
    throw new InvalidMessageError(`unknown dataset format ${JSON.stringify(kind)}: this peer decodes ${KINDS.join(', ')}`)
  }
  if (!(bytes instanceof Uint8Array)) throw new InvalidMessageError(`${String(kind)} shard: expected bytes (a Uint8Array)`)
  // Validates the format (it may come from an older or newer peer) and fills its defaults.
  const f = parseWith(DatasetFormat, format, `${String(kind)} dataset format`)
  let samples: Samples
  switch (f.kind) {
    case 'csv': samples = decodeCsvShard(bytes, f); break
    case 'jsonl': samples = decodeJsonLinesShard(bytes, f); break
    case 'image-records': samples = decodeImageRecordsShard(bytes, f); break
    case 'text': return decodeTextShard(bytes, f, options)
  }
  if (samples.count === 0) throw new InvalidMessageError(`${f.kind} shard holds no samples`)
  if (options.samples != null && samples.count !== options.samples) {
    throw new InvalidMessageError(`${f.kind} shard holds ${samples.count} samples, its manifest says ${options.samples}`)
  }
  return samples
}

function utf8 (bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new InvalidMessageError(`${what} is not valid UTF-8`)
  }
}

export function decodeJsonLinesShard (bytes: Uint8Array, format: z.infer<typeof JsonLinesFormat>): Samples {
  const lines = utf8(bytes, 'jsonl shard').split('\n').filter(l => l.trim().length > 0)
  const width = format.shape?.reduce((a, b) => a * b, 1)
  const rows: Array<{ features: number[], label: number }> = lines.map((line, i) => {
    let obj: unknown
    try {
      obj = JSON.parse(line)
    } catch (err) {
      throw new InvalidMessageError(`jsonl shard line ${i}: not JSON (${(err as Error).message})`)
    }
    if (obj == null || typeof obj !== 'object' || Array.isArray(obj)) throw new InvalidMessageError(`jsonl shard line ${i}: not a JSON object`)
    const features = (obj as Record<string, unknown>)[format.features]
    const label = (obj as Record<string, unknown>)[format.label]
    if (!Array.isArray(features) || features.some(v => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new InvalidMessageError(`jsonl shard line ${i}: "${format.features}" is not an array of finite numbers`)
    }
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= format.numClasses) {
      throw new InvalidMessageError(`jsonl shard line ${i}: "${format.label}" is ${JSON.stringify(label)}, not an integer in [0, ${format.numClasses})`)
    }
    return { features, label }
  })
  const per = width ?? rows[0]?.features.length ?? 0
  const x = new Float32Array(rows.length * per)
  const y = new Int32Array(rows.length)
  rows.forEach((r, i) => {
    if (r.features.length !== per) throw new InvalidMessageError(`jsonl shard line ${i}: ${r.features.length} features, expected ${per}${width != null ? ` (shape [${format.shape?.join(', ')}])` : ' (as line 0)'}`)
    for (let k = 0; k < per; k++) x[i * per + k] = r.features[k] * format.featureScale
    y[i] = r.label
  })
  return { x, y, count: rows.length, featureShape: format.shape ?? [per], numClasses: format.numClasses }
}

export function decodeImageRecordsShard (bytes: Uint8Array, format: z.infer<typeof ImageRecordsFormat>): Samples {
  const per = format.shape[0] * format.shape[1] * format.shape[2]
  const recordBytes = 1 + per
  if (bytes.byteLength % recordBytes !== 0) {
    throw new InvalidMessageError(`image-records shard: ${bytes.byteLength} bytes is not a whole number of ${recordBytes}-byte records (1 label byte + ${format.shape.join('x')} pixels)`)
  }
  const count = bytes.byteLength / recordBytes
  const x = new Float32Array(count * per)
  const y = new Int32Array(count)
  for (let i = 0; i < count; i++) {
    const at = i * recordBytes
    const label = bytes[at]
    if (label >= format.classes.length) throw new InvalidMessageError(`image-records shard record ${i}: label ${label} outside the ${format.classes.length} classes`)
    y[i] = label
    for (let k = 0; k < per; k++) x[i * per + k] = bytes[at + 1 + k] * format.featureScale
  }
  return { x, y, count, featureShape: [...format.shape], numClasses: format.classes.length }
}

/** Number of token ids the vocabulary defined by `options` has (256 for bytes). */
export function textVocabSize (options: TextVocabOptions = {}): number {
  return options.vocab == null ? BYTE_VOCAB_SIZE : vocabIndex(options).size
}

function vocabIndex (options: TextVocabOptions): Map<string, number> {
  const chars = Array.from(options.vocab ?? '')
  const index = new Map(chars.map((c, i) => [c, i]))
  if (index.size !== chars.length) throw new RangeError('text vocab lists a character twice')
  if (index.size < 2) throw new RangeError('text vocab needs at least two characters')
  if (options.unknown != null && !index.has(options.unknown)) throw new RangeError(`unknown character ${JSON.stringify(options.unknown)} is not in the vocab`)
  return index
}

/** Token ids of UTF-8 text under the vocabulary `options` defines. */
export function encodeText (bytes: Uint8Array, options: TextVocabOptions = {}, what = 'text'): Int32Array {
  const text = utf8(bytes, what)
  if (options.vocab == null) return Int32Array.from(bytes)
  const index = vocabIndex(options)
  const fallback = options.unknown != null ? index.get(options.unknown) : undefined
  const chars = Array.from(text)
  const ids = new Int32Array(chars.length)
  chars.forEach((c, i) => {
    const id = index.get(c) ?? fallback
    if (id == null) throw new InvalidMessageError(`${what}: character ${JSON.stringify(c)} (U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}) at character ${i} is not in the vocabulary`)
    ids[i] = id
  })
  return ids
}

/** Text of token ids (inverse of encodeText; bytes that are not valid UTF-8 become U+FFFD). */
export function decodeTokens (ids: ArrayLike<number>, options: TextVocabOptions = {}): string {
  if (options.vocab == null) return new TextDecoder().decode(Uint8Array.from(ids as ArrayLike<number>))
  const chars = Array.from(options.vocab)
  return Array.from(ids, id => chars[id] ?? '\ufffd').join('')
}

export function decodeTextShard (bytes: Uint8Array, _format: z.infer<typeof TextFormat>, options: DecodeShardOptions): Samples {
  const { context } = options
  if (context == null) throw new RangeError('text shards need the context option (the model\'s context length)')
  if (!Number.isInteger(context) || context < 1) throw new RangeError(`context must be a positive integer, got ${context}`)
  const stride = options.stride ?? context
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`)
  const tokens = encodeText(bytes, options, 'text shard')
  if (tokens.length < context + 1) throw new InvalidMessageError(`text shard holds ${tokens.length} tokens, fewer than one window of context ${context} plus its next token`)
  const last = tokens.length - context - 1
  const starts: number[] = []
  for (let s = 0; s <= last; s += stride) starts.push(s)
  // A last window flush with the end, so that the shard's tail is not dropped.
  if (starts[starts.length - 1] !== last) starts.push(last)
  const x = new Float32Array(starts.length * context)
  const y = new Int32Array(starts.length * context)
  starts.forEach((s, i) => {
    for (let j = 0; j < context; j++) {
      x[i * context + j] = tokens[s + j]
      y[i * context + j] = tokens[s + j + 1]
    }
  })
  return { x, y, count: starts.length, featureShape: [context], labelShape: [context], numClasses: textVocabSize(options) }
}
