// The trainer worker's entry: a worker thread does not inherit the tsx loader that `nearai` registers with
// tsx's API on the main thread, so it registers its own before loading the TypeScript worker.
import { register } from 'tsx/esm/api'

register()
await import('./worker-main.ts')
