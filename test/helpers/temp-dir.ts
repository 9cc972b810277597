/** Removing the folders tests create. */
import { rm } from 'node:fs/promises'

/**
 * Options that remove a folder where nodes ran: a stopping node's datastore can still add an entry while
 * the folder is being removed (ENOTEMPTY), so the removal is retried.
 */
export const REMOVE_DIR_OPTIONS = { recursive: true, force: true, maxRetries: 5, retryDelay: 200 } as const

export async function removeDir (path: string): Promise<void> {
  await rm(path, REMOVE_DIR_OPTIONS)
}
