#!/usr/bin/env node
// Entry point of the `nearai` program: loads the TypeScript sources through tsx, so no build step is needed.
import { register } from 'tsx/esm/api'
register()
await import('./main.ts')
