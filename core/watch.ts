import { basename, join } from 'node:path'

/** What a session needs of a chokidar watcher: the CLI's own, or Vite's `server.watcher`. */
export interface ChokidarLike {
  on: (event: 'add' | 'change' | 'unlink' | 'raw', listener: (...args: any[]) => void) => unknown
}

/**
 * Feeds a watcher's changes to a session's `notify`. chokidar drops a 'change' that follows
 * another within 50 ms for the same file, which would lose the last of two quick saves, so raw
 * (unthrottled) events are fed too; the session compares content hashes, so duplicates cost one
 * read at most.
 */
export function feedChanges(watcher: ChokidarLike, notify: (path: string) => void, ignore: (path: string) => boolean = () => false): void {
  const onPath = (path: string): void => {
    if (!ignore(path)) notify(path)
  }
  for (const event of ['add', 'change', 'unlink'] as const) watcher.on(event, onPath)
  watcher.on('raw', (_event: string, name: unknown, details: unknown) => {
    const watched = (details as { watchedPath?: string } | undefined)?.watchedPath
    // A file watch reports the file's own name; a directory watch, the entry's.
    if (watched && name) onPath(basename(watched) === String(name) ? watched : join(watched, String(name)))
  })
}
