/** Quotes a word for POSIX sh: `it's` → `'it'\''s'`. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll('\'', '\'\\\'\'')}'`
}

/** Valid names for `export NAME=…`. */
export const ENV_NAME_RE: RegExp = /^[A-Za-z_]\w*$/
