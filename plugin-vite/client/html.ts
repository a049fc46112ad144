import type { SourceLocation } from '../protocol.ts'
import { h } from './dom.ts'

/** Vite's middleware that opens a file in the editor (`LAUNCH_EDITOR` picks which). */
export const OPEN_IN_EDITOR = '/__open-in-editor'

/**
 * A real link (focusable, Enter follows it) to a place in a test file. The panel's click handler
 * fetches its `data-open` target instead of navigating, so the page stays where it is.
 */
export function link(location: SourceLocation, label: string): HTMLAnchorElement {
  const target = `${location.file}:${location.line}:${location.column}`
  return h('a', { 'href': `${OPEN_IN_EDITOR}?file=${encodeURIComponent(target)}`, 'data-open': target, 'title': `open ${target} in the editor` }, label)
}
