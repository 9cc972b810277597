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

/**
 * Artifacts of an in-memory model, as `publishCheckpoint` takes them, with canonical layer names (see
 * canonicalLayerNames): the same model and weights give the same model.json, hence the same checkpoint CID,
 * in every process.
 */
export async function modelArtifacts (model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } }
  }))
  if (captured == null) throw new Error('the model saved no artifacts')
  return canonicalLayerNames(captured)
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/**
 * TensorFlow.js names layers and models from process-wide counters (`dense_Dense3` in the second model a
 * process builds, `model2`), so two peers holding the same model and weights would write different
 * model.json bytes and publish the same state under different CIDs, and validators could not agree on one.
 * This renames the model to `model` and every layer to `<class>_<position>` (`dense_1`), in the topology
 * (names, inbound nodes, input and output layers) and in the weight specs (`dense_1/kernel`), which is
 * all tf.loadLayersModel matches weights by.
 */
export function canonicalLayerNames (artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const topology = artifacts.modelTopology
  if (topology == null || topology instanceof ArrayBuffer) return artifacts
  const config = (topology as { config?: { name?: unknown, layers?: unknown } }).config
  if (config == null || !Array.isArray(config.layers)) return artifacts
  const renames = new Map<string, string>()
  if (typeof config.name === 'string') renames.set(config.name, 'model')
  config.layers.forEach((layer: { name?: unknown, class_name?: unknown, config?: { name?: unknown } }, i: number) => {
    const name = typeof layer.name === 'string' ? layer.name : layer.config?.name
    const cls = typeof layer.class_name === 'string' ? layer.class_name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() : 'layer'
    if (typeof name === 'string') renames.set(name, `${cls}_${i}`)
  })
  const rename = (v: Json): Json => {
    if (typeof v === 'string') return renames.get(v) ?? v
    if (Array.isArray(v)) return v.map(rename)
    if (v != null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rename(x)]))
    return v
  }
  const weightSpecs = artifacts.weightSpecs?.map(spec => {
    const slash = spec.name.indexOf('/')
    const layer = slash < 0 ? spec.name : spec.name.slice(0, slash)
    const renamed = renames.get(layer)
    return renamed == null ? spec : { ...spec, name: renamed + spec.name.slice(layer.length) }
  })
  return { ...artifacts, modelTopology: rename(topology as Json) as tf.io.ModelArtifacts['modelTopology'], weightSpecs }
}
