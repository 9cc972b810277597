/**
 * How the bytes of a dataset shard are laid out, so that any peer can decode the samples it was assigned.
 * The storage layer writes shards in one of these formats (split on sample boundaries, never mid-sample);
 * the training layer decodes them. The format travels inside the dataset manifest.
 */
import { z } from 'zod'

/** One side of a sample's shape (an image's height or width): bounds what a decoder derives from it. */
export const MAX_SHAPE_DIMENSION = 65_536

/** Comma-separated rows, no header in the shard (the column names are here). One row per sample. */
export const CsvFormat = z.object({
  kind: z.literal('csv'),
  columns: z.array(z.string().min(1).max(1024)).min(2).max(100_000),
  /** Name of the column holding the integer class label. */
  label: z.string().min(1).max(1024),
  /** Number of classes; labels are integers in [0, numClasses). */
  numClasses: z.number().int().min(2).max(1_000_000),
  /** Each feature value is multiplied by this (e.g. 1/255 for pixel bytes). */
  featureScale: z.number().positive().max(1e12).default(1),
  /** Optional [height, width, channels] so that image models can reshape the feature vector. */
  shape: z.array(z.number().int().positive().max(MAX_SHAPE_DIMENSION)).min(1).max(4).optional()
}).strict()

/** One JSON object per line: `{ "<features>": number[], "<label>": int }`. */
export const JsonLinesFormat = z.object({
  kind: z.literal('jsonl'),
  features: z.string().min(1).max(1024),
  label: z.string().min(1).max(1024),
  numClasses: z.number().int().min(2).max(1_000_000),
  featureScale: z.number().positive().max(1e12).default(1),
  shape: z.array(z.number().int().positive().max(MAX_SHAPE_DIMENSION)).min(1).max(4).optional()
}).strict()

/** Raw UTF-8 text for character-level language models; a shard is a contiguous slice split on a line break. */
export const TextFormat = z.object({
  kind: z.literal('text'),
  encoding: z.literal('utf-8').default('utf-8')
}).strict()

/**
 * An image folder (one subfolder per class), stored as fixed-size raw pixel records:
 * one label byte followed by height*width*channels bytes, per sample.
 */
export const ImageRecordsFormat = z.object({
  kind: z.literal('image-records'),
  classes: z.array(z.string().min(1).max(1024)).min(2).max(65_536),
  shape: z.tuple([z.number().int().positive().max(MAX_SHAPE_DIMENSION), z.number().int().positive().max(MAX_SHAPE_DIMENSION), z.number().int().min(1).max(4)]),
  featureScale: z.number().positive().max(1e12).default(1 / 255)
}).strict()

export const DatasetFormat = z.discriminatedUnion('kind', [CsvFormat, JsonLinesFormat, TextFormat, ImageRecordsFormat])
export type DatasetFormat = z.infer<typeof DatasetFormat>
