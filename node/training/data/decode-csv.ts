/**
 * Decodes a csv-format shard (no header; the column names are in the format) into training samples.
 * Blank lines are skipped and a trailing '\r' is ignored, as the csv importer allows both.
 */
import type { z } from 'zod'
import type { CsvFormat } from '../../../protocol/dataset-format.ts'
import { InvalidMessageError } from '../../../protocol/errors.ts'
import type { Samples } from '../local-trainer.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })

export function decodeCsvShard (bytes: Uint8Array, format: z.infer<typeof CsvFormat>): Samples {
  const labelIndex = format.columns.indexOf(format.label)
  if (labelIndex < 0) throw new InvalidMessageError(`csv format: label column "${format.label}" is not among the columns`)
  const per = format.columns.length - 1
  const featureShape = format.shape ?? [per]
  if (featureShape.reduce((a, b) => a * b, 1) !== per) throw new InvalidMessageError(`csv format: shape [${featureShape.join(', ')}] does not hold the ${per} feature columns`)
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw new InvalidMessageError('csv shard is not valid UTF-8')
  }
  const lines = text.split('\n').map(l => l.replace(/\r$/, '')).filter(l => l.trim().length > 0)
  const x = new Float32Array(lines.length * per)
  const y = new Int32Array(lines.length)
  lines.forEach((line, row) => {
    const cells = line.split(',')
    if (cells.length !== format.columns.length) throw new InvalidMessageError(`csv shard row ${row}: ${cells.length} cells, expected ${format.columns.length}`)
    let k = 0
    cells.forEach((cell, col) => {
      // Number('') is 0: an empty cell would silently become a zero feature.
      const v = cell.trim() === '' ? NaN : Number(cell)
      if (!Number.isFinite(v)) throw new InvalidMessageError(`csv shard row ${row}, column ${format.columns[col]}: "${cell}" is not a number`)
      if (col === labelIndex) {
        if (!Number.isInteger(v) || v < 0 || v >= format.numClasses) throw new InvalidMessageError(`csv shard row ${row}: label ${cell} outside [0, ${format.numClasses})`)
        y[row] = v
      } else {
        x[row * per + k++] = v * format.featureScale
      }
    })
  })
  return { x, y, count: lines.length, featureShape, numClasses: format.numClasses }
}
