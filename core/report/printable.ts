// C0 and C1 controls, DEL, and the Unicode line separators; the multi-line variant keeps tab and newline.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001F\u007F-\u009F\u2028\u2029]/g
// eslint-disable-next-line no-control-regex
const CONTROL_KEEP_LINES_RE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u2028\u2029]/g
const NAMED: Record<string, string> = { '\0': '\\0', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '\u001B': '\\x1b' }

/**
 * Text from test files and containers made safe for a terminal: control characters (ESC, NUL,
 * CR…) are shown escaped (`\x1b`, `\0`, `\r`), so a name cannot move the cursor, recolor the
 * screen or overwrite a `✗` with a `✓`. `multiline` keeps newlines and tabs.
 */
export function printable(text: string, multiline = false): string {
  return text.replace(multiline ? CONTROL_KEEP_LINES_RE : CONTROL_RE, ch => NAMED[ch] ?? (ch.charCodeAt(0) < 0x100 ? `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`))
}
