import { createHash } from 'node:crypto'

/** A content hash for cache keys: stable across runs and runtimes. */
export function contentHash(...parts: string[]): string {
  // One update of the joined text: the same digest as one update per part and separator, with
  // one call into the native hash instead of two per part.
  return createHash('sha1').update(parts.length === 0 ? '' : `${parts.join('\0')}\0`).digest('base64url')
}
