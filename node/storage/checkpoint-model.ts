/**
 * Loading a fetched checkpoint into TensorFlow.js without file:// or http://: a tf.io IOHandler that
 * hands over artifacts already in memory (and checked). Kept apart from checkpoints.ts so that storage
 * code that never builds a model does not load TensorFlow.js.
 */
import * as tf from '@tensorflow/tfjs'
import type { FetchedCheckpoint } from './checkpoints.ts'

export function checkpointIOHandler (artifacts: tf.io.ModelArtifacts): tf.io.IOHandler {
  return { load: async () => artifacts }
}

export async function loadCheckpointModel (checkpoint: Pick<FetchedCheckpoint, 'artifacts'>): Promise<tf.LayersModel> {
  return await tf.loadLayersModel(checkpointIOHandler(checkpoint.artifacts))
}

/** Artifacts of an in-memory model, as `publishCheckpoint` takes them. */
export async function modelArtifacts (model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } }
  }))
  if (captured == null) throw new Error('the model saved no artifacts')
  return captured
}
