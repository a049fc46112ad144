import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseToml } from '../core/format/toml-parse.ts'
import { tempDir } from './helpers.ts'
import { spawnCli } from './cli-process.ts'

const head = '[meta]\nname = "t"\n'

describe('TOML syntax errors say the mistake and the fix', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeEach(async () => ({ dir, cleanup } = await tempDir()))
  afterEach(() => cleanup())

  it('clnrm validate: an unterminated string is named as such at file:line:col, with how to close it', async () => {
    await writeFile(join(dir, 'a.clnrm.toml'), `${head}description = "oops\n[services.app]\nimage = "busybox:1.36"\n`)
    const cli = spawnCli(['validate', 'a.clnrm.toml'], dir)
    expect((await cli.exited).code).toBe(1)
    const out = cli.output()
    expect(out).toMatch(/a\.clnrm\.toml:3:20 .*CLNRM_TOML_SYNTAX/)
    expect(out).toContain('unterminated string: it needs its closing quote on the same line')
    expect(out).toMatch(/hint: Close it with " \(or '\) on the same line, or use """…""" for text over several lines\./)
    expect(out).not.toContain('control characters')
  })

  it.each([
    ['a pattern with a backslash in a basic string', 'expected_output_regex = "\\d+"', /unknown escape sequence/, /'literal string'/],
    ['a duplicate key', 'name = "again"', /"name" is already defined/, /may appear once/],
    ['two values on a line', 'x = 1 2', /unexpected text after the value/, /own/],
    ['an unquoted word', 'x = hello', /this value is not TOML/, /Quote text/],
    ['an unclosed array', 'x = [1, 2', /unclosed array|a comma or the closing bracket/, /,|\]/],
    ['a leading zero', 'x = 08', /leading zero/, /"08"/],
    ['a key without a value', 'justakey', /a key without "= value"/, /key = value/],
  ])('%s', (_, line, message, hint) => {
    const parsed = parseToml(`${head}${line}\n`)
    expect('error' in parsed).toBe(true)
    if (!('error' in parsed)) return
    expect(parsed.error.message).toMatch(/^TOML syntax error: /)
    expect(parsed.error.message).toMatch(message)
    expect(parsed.error.hint ?? '').toMatch(hint)
    // An unclosed array is found where the file ends.
    expect(parsed.error.line).toBeGreaterThanOrEqual(3)
  })
})
