import type { SourceLocation } from '../protocol.ts'

/** Text made safe for innerHTML (content and quoted attributes): test files and spans choose it. */
export function escape(text: string): string {
  return text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' })[c]!)
}

/** A link that opens a place in a test file in the editor (the panel's click handler reads `data-open`). */
export function link(location: SourceLocation, label: string): string {
  return `<a data-open="${escape(`${location.file}:${location.line}:${location.column}`)}">${escape(label)}</a>`
}
