/** Where a task is written in the file the user edits (1-based). */
export interface SourcePosition {
  line: number
  column: number
}

/** One Vitest test of a clnrm file: a step, or the verdict on spans or assertions. */
export interface PlannedTest {
  name: string
  /** Vitest's timeout for this test, from the step's `timeout` in the TOML (see `vitestTimeout`). */
  timeoutMs: number
  at: SourcePosition
  /** Which entry of the run it reports: a step by index, the span verdict, or the assertions. */
  kind: 'step' | 'spans' | 'assertions'
}

/** One `describe`: a clnrm test, or one `[matrix]` combination of it. */
export interface PlannedSuite {
  name: string
  at: SourcePosition
  /** The combination's index in the spec's `variants`, for a `[matrix]` file. */
  variant?: number
  tests: PlannedTest[]
}

/**
 * What Vitest collects from one clnrm file, decided at transform time: a `describe` named after
 * the test (one per combination of a `[matrix]`) with one test per step, plus `spans`/`assertions`
 * when declared; or, for a file that does not load, one test that fails with the located diagnostics.
 */
export interface FilePlan {
  file: string
  suites: PlannedSuite[]
  /** The file is invalid: the message (every diagnostic, located) its one test fails with. */
  invalid?: { message: string; at: SourcePosition }
  /** Warnings of a valid file, located: annotations of each describe's first test. */
  warnings?: string[]
}

/** The generated module and its source map back to the TOML (or template) lines. */
export interface GeneratedModule {
  code: string
  map: { version: 3; file: string; sources: string[]; sourcesContent: string[]; names: string[]; mappings: string }
}

/** The name of the invalid file's one test, as Vitest shows it. */
const INVALID_TEST_NAME = 'is a valid clnrm test'

/**
 * The JavaScript a clnrm file becomes: each `describe`/test call on its own line, and a source map
 * sending that line to the TOML line of its `[[steps]]` entry, so Vitest's task locations (taken
 * from the call's stack frame, source-mapped) and error frames point at the step in the file.
 * The calls are written as Vitest's static collector recognises them (callees named `describe`
 * and `test`/`…Test`, each name a string literal first): `experimental_parseSpecifications`, with
 * which VS Code's Vitest extension lists a file's tests before any run, then finds every step at
 * its line without running the file. The indexes after the name say which planned test it is.
 */
export function generateModule(plan: FilePlan, runtime: string, source: string): GeneratedModule {
  const lines: Array<{ code: string; at?: SourcePosition }> = [
    { code: `import { defineClnrmFile } from ${JSON.stringify(runtime)};` },
    { code: `const { describe, test, invalidTest } = defineClnrmFile(${JSON.stringify(plan)});` },
  ]
  plan.suites.forEach((suite, s) => {
    lines.push({ code: `describe(${literal(suite.name)}, ${s}, () => {`, at: suite.at })
    if (plan.invalid) lines.push({ code: `  invalidTest(${literal(INVALID_TEST_NAME)});`, at: plan.invalid.at })
    suite.tests.forEach((test, t) => lines.push({ code: `  test(${literal(test.name)}, ${s}, ${t});`, at: test.at }))
    lines.push({ code: '});' })
  })
  return {
    code: `${lines.map(l => l.code).join('\n')}\n`,
    map: { version: 3, file: plan.file, sources: [plan.file], sourcesContent: [source], names: [], mappings: encodeMappings(lines.map(l => l.at)) },
  }
}

/**
 * A string literal of `text` that holds the text as it reads where it can (in double quotes, or in
 * single quotes when it has a double one): Vitest's static collector takes a name as written
 * between the quotes, escapes included. Otherwise JSON's escapes.
 */
export function literal(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what must be escaped
  if (!/[\u0000-\u001F\u007F\\\u2028\u2029]/.test(text)) {
    const quote = ['"', '\''].find(q => !text.includes(q))
    if (quote) return `${quote}${text}${quote}`
  }
  return JSON.stringify(text)
}

/** Source map `mappings` with one segment per mapped line, at column 0 (deltas, base64 VLQ). */
export function encodeMappings(lines: ReadonlyArray<SourcePosition | undefined>): string {
  let previousLine = 0
  let previousColumn = 0
  return lines.map((at) => {
    if (!at) return ''
    // Fields: generated column (reset each line), source index, source line, source column.
    const segment = vlq(0) + vlq(0) + vlq(at.line - 1 - previousLine) + vlq(at.column - 1 - previousColumn)
    previousLine = at.line - 1
    previousColumn = at.column - 1
    return segment
  }).join(';')
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

function vlq(value: number): string {
  let rest = value < 0 ? (-value << 1) | 1 : value << 1
  let out = ''
  do {
    let digit = rest & 31
    rest >>>= 5
    if (rest > 0) digit |= 32
    out += BASE64[digit]
  } while (rest > 0)
  return out
}
