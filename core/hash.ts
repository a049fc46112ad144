import { createHash } from 'node:crypto'

/** A content hash for cache keys: stable across runs and runtimes. */
export function contentHash(...parts: string[]): string {
  const hash = createHash('sha1')
  for (const part of parts) hash.update(part).update('\0')
  return hash.digest('base64url')
}
