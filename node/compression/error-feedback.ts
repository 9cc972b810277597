/**
 * Error feedback for lossy codecs: the sender adds what quantization lost last time to the next vector,
 * so the error is carried forward instead of accumulating across rounds.
 */
import type { VectorCodec } from './codec.ts'

export class ErrorFeedback {
  private residual: Float32Array | undefined
  constructor (private readonly codec: VectorCodec) {}

  /** Encodes `values` plus the carried residual and keeps the new residual. */
  encode (values: Float32Array): Uint8Array {
    if (this.residual === undefined || this.residual.length !== values.length) this.residual = new Float32Array(values.length)
    const r = this.residual
    const corrected = new Float32Array(values.length)
    for (let i = 0; i < values.length; i++) corrected[i] = values[i] + r[i]
    const bytes = this.codec.encode(corrected)
    const sent = this.codec.decode(bytes)
    for (let i = 0; i < values.length; i++) r[i] = corrected[i] - sent[i]
    return bytes
  }

  /** The residual carried into the next call (a checkpointable copy). */
  getResidual (): Float32Array { return this.residual?.slice() ?? new Float32Array(0) }
  reset (): void { this.residual = undefined }
}
