/**
 * Image folders, one subfolder per class, of binary netpbm images: PGM (P5, grey) and PPM (P6, RGB) with
 * 8-bit samples. They are written as the image-records DatasetFormat: per sample one label byte (the
 * class's index in sorted subfolder order) then height*width*channels pixel bytes. PNG and JPEG are not
 * decoded: no decoder ships offline with this project; convert them to netpbm first
 * (`convert x.png x.pgm`, `pngtopnm`).
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_SHAPE_DIMENSION } from '../../../protocol/dataset-format.ts'
import { UnsupportedInputError } from '../errors.ts'
import { describeBytes, MAX_IMAGE_FOLDER_BYTES, MAX_IMPORT_SAMPLE_BYTES } from '../limits.ts'
import { memorySource, SampleOffsets, type SampleSource } from './source.ts'

export interface NetpbmImage { width: number, height: number, channels: 1 | 3, pixels: Uint8Array }

const IMAGE_EXTENSIONS = ['.pgm', '.ppm', '.pnm']

/** Decodes a binary PGM (P5) or PPM (P6) with maxval <= 255. */
export function decodeNetpbm (bytes: Uint8Array, name = 'image'): NetpbmImage {
  let at = 0
  const token = (): string => {
    for (;;) {
      while (at < bytes.length && (bytes[at] === 0x20 || bytes[at] === 0x0a || bytes[at] === 0x0d || bytes[at] === 0x09)) at++
      if (bytes[at] === 0x23) { while (at < bytes.length && bytes[at] !== 0x0a) at++; continue } // # comment
      break
    }
    const start = at
    while (at < bytes.length && !(bytes[at] === 0x20 || bytes[at] === 0x0a || bytes[at] === 0x0d || bytes[at] === 0x09)) at++
    return Buffer.from(bytes.subarray(start, at)).toString('ascii')
  }
  const magic = token()
  if (magic !== 'P5' && magic !== 'P6') throw new UnsupportedInputError(`${name}: only binary PGM (P5) and PPM (P6) are supported, found "${magic.slice(0, 2)}"`)
  const width = Number(token())
  const height = Number(token())
  const maxval = Number(token())
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new UnsupportedInputError(`${name}: bad size`)
  if (width > MAX_SHAPE_DIMENSION || height > MAX_SHAPE_DIMENSION) throw new UnsupportedInputError(`${name}: ${width}x${height} exceeds the limit of ${MAX_SHAPE_DIMENSION} pixels a side (MAX_SHAPE_DIMENSION)`)
  if (!Number.isInteger(maxval) || maxval < 1 || maxval > 255) throw new UnsupportedInputError(`${name}: only 8-bit samples (maxval <= 255) are supported`)
  at++ // the single whitespace byte after maxval
  const channels = magic === 'P5' ? 1 : 3
  const size = width * height * channels
  if (bytes.length - at < size) throw new UnsupportedInputError(`${name}: truncated pixel data`)
  let pixels = bytes.slice(at, at + size)
  if (maxval !== 255) pixels = pixels.map(v => Math.round(v * 255 / maxval))
  return { width, height, channels, pixels }
}

/** Reads `<dir>/<class>/*.pgm|ppm` into image records held in memory. */
export async function imageFolderSource (dir: string, signal?: AbortSignal): Promise<SampleSource> {
  const classes = (await readdir(dir, { withFileTypes: true })).filter(e => e.isDirectory()).map(e => e.name).sort()
  if (classes.length < 2) throw new UnsupportedInputError(`${dir}: an image folder needs one subfolder per class (at least two)`)
  if (classes.length > 256) throw new UnsupportedInputError(`${dir}: image-records hold the label in one byte: at most 256 classes`)
  let shape: [number, number, number] | undefined
  const records: Uint8Array[] = []
  let held = 0
  for (const [label, cls] of classes.entries()) {
    const files = (await readdir(join(dir, cls))).filter(f => IMAGE_EXTENSIONS.some(ext => f.toLowerCase().endsWith(ext))).sort()
    for (const file of files) {
      signal?.throwIfAborted()
      const path = join(dir, cls, file)
      const info = await stat(path)
      if (!info.isFile()) continue
      if (info.size > MAX_IMPORT_SAMPLE_BYTES) throw new UnsupportedInputError(`${path}: ${describeBytes(info.size)} exceeds the limit of ${describeBytes(MAX_IMPORT_SAMPLE_BYTES)} for one sample (MAX_IMPORT_SAMPLE_BYTES)`)
      const img = decodeNetpbm(await readFile(path), path)
      shape ??= [img.height, img.width, img.channels]
      if (img.height !== shape[0] || img.width !== shape[1] || img.channels !== shape[2]) {
        throw new UnsupportedInputError(`${path}: ${img.height}x${img.width}x${img.channels} differs from the first image's ${shape.join('x')}; all images must share one shape`)
      }
      const record = new Uint8Array(1 + img.pixels.length)
      record[0] = label
      record.set(img.pixels, 1)
      records.push(record)
      held += record.byteLength
      if (held > MAX_IMAGE_FOLDER_BYTES) throw new UnsupportedInputError(`${dir}: the images add up to more than ${describeBytes(MAX_IMAGE_FOLDER_BYTES)}, the limit of an image folder decoded in memory (MAX_IMAGE_FOLDER_BYTES); split it into several datasets`)
    }
  }
  if (shape == null || records.length === 0) throw new UnsupportedInputError(`${dir}: no .pgm/.ppm images found in the class subfolders (PNG/JPEG are not decoded; convert them to netpbm)`)
  const recordBytes = records[0].length
  const bytes = new Uint8Array(recordBytes * records.length)
  const sampleEnds = new SampleOffsets()
  records.forEach((r, i) => { bytes.set(r, i * recordBytes); sampleEnds.push((i + 1) * recordBytes) })
  return memorySource(bytes, {
    format: { kind: 'image-records', classes, shape, featureScale: 1 / 255 },
    schema: { sample: 'image-record', features: recordBytes - 1, numClasses: classes.length, recordBytes },
    sampleEnds
  })
}

/** Encodes a binary PGM/PPM (tests and tools that need sample images). */
export function encodeNetpbm (img: NetpbmImage): Uint8Array {
  const header = Buffer.from(`${img.channels === 1 ? 'P5' : 'P6'}\n${img.width} ${img.height}\n255\n`, 'ascii')
  return Buffer.concat([header, img.pixels])
}
