import { readFile, stat } from 'node:fs/promises'
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path'

/** What `followImports` found from a test's `[watch] modules`. */
export interface ModuleClosure {
  /** Every project file the entries import, directly or not, the entries included (absolute). */
  files: Set<string>
  /** Package imports (`react`, `node:fs`) and absolute ones: not followed, dependencies do not change while you edit. */
  bare: Set<string>
  /** `import(…)` calls, as `file:line`: what they load is known only when the code runs. */
  dynamic: string[]
  /** Relative imports that name no file, as `file:line → specifier`. */
  unresolved: string[]
  /** Files the lexer could not read (JSX, a syntax error), as `file:line: message`; they are watched but not followed. */
  unreadable: string[]
}

// As Vite and TypeScript resolve a relative specifier: as written, then with an extension, then a directory's index.
const EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs']
const LEXED = new Set(EXTENSIONS)
// TypeScript's ESM style names the output: `./util.js` is `./util.ts` in the sources.
const SOURCE_OF: Record<string, string[]> = { '.js': ['.ts', '.tsx'], '.jsx': ['.tsx'], '.mjs': ['.mts'], '.cjs': ['.cts'] }

let lexer: Promise<typeof import('es-module-lexer')> | undefined
/** es-module-lexer (Vite's own lexer, WebAssembly) loads once, on first use. */
function loadLexer(): Promise<typeof import('es-module-lexer')> {
  return lexer ??= import('es-module-lexer').then(async (m) => {
    await m.init
    return m
  })
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false
}

/** The file a relative specifier names, or `undefined`. */
export async function resolveModule(from: string, specifier: string): Promise<string | undefined> {
  const base = resolve(dirname(from), specifier.replace(/[?#].*$/, ''))
  return resolveEntry(base)
}

/** An entry as written in `[watch] modules` (absolute): the file itself, with an extension, or a directory's index. */
export async function resolveEntry(base: string): Promise<string | undefined> {
  const ext = extname(base)
  const candidates = [
    base,
    ...(SOURCE_OF[ext] ?? []).map(source => base.slice(0, -ext.length) + source),
    ...EXTENSIONS.map(e => base + e),
    ...EXTENSIONS.map(e => resolve(base, `index${e}`)),
  ]
  for (const candidate of candidates) if (await isFile(candidate)) return candidate
  return undefined
}

const lineAt = (text: string, index: number): number => text.slice(0, Math.max(0, index)).split('\n').length

/**
 * Follows the static imports (and re-exports) of entry modules, recursively, within `root`: the
 * files whose change should rerun the test. Relative specifiers only; packages, `node_modules`,
 * files outside the root and dynamic `import()` are not followed but reported, so the caller can say so.
 */
export async function followImports(entries: readonly string[], root: string): Promise<ModuleClosure> {
  const closure: ModuleClosure = { files: new Set(), bare: new Set(), dynamic: [], unresolved: [], unreadable: [] }
  const inProject = (path: string): boolean => {
    const rel = relative(root, path)
    return !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(/[\\/]/).includes('node_modules')
  }
  const queue: string[] = []
  for (const entry of entries) {
    const file = await resolveEntry(entry)
    if (file) queue.push(file)
  }
  const { parse } = await loadLexer()
  while (queue.length) {
    const file = queue.shift()!
    if (closure.files.has(file)) continue
    closure.files.add(file)
    // A .vue or .svelte entry is watched, not read: its imports live in a block only their compiler knows.
    if (!LEXED.has(extname(file))) continue
    const text = await readFile(file, 'utf8').catch(() => undefined)
    if (text === undefined) continue
    const shown = relative(root, file)
    let imports: ReturnType<typeof parse>[0]
    try {
      [imports] = parse(text, file)
    }
    catch (error) {
      const at = (error as { idx?: number }).idx
      closure.unreadable.push(`${shown}${at === undefined ? '' : `:${lineAt(text, at)}`}: ${(error as Error).message.split('\n')[0]}`)
      continue
    }
    for (const imp of imports) {
      // d: -1 a static import or re-export, -2 import.meta, else where a dynamic import() starts.
      if (imp.d === -2) continue
      if (imp.d > -1) {
        closure.dynamic.push(`${shown}:${lineAt(text, imp.ss)}`)
        continue
      }
      const specifier = imp.n
      if (specifier === undefined) continue
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) {
        closure.bare.add(specifier)
        continue
      }
      const target = await resolveModule(file, specifier)
      if (!target) closure.unresolved.push(`${shown}:${lineAt(text, imp.ss)} → ${specifier}`)
      else if (inProject(target)) queue.push(target)
    }
  }
  return closure
}
