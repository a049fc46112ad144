import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { codeFrame } from '../plugin-vite/code-frame.ts'
import { overlayError } from '../plugin-vite/overlay.ts'

// Vite's overlay renders `frame` only when its own pattern finds a code frame in it: read the
// pattern from the installed client, so a change in Vite fails here rather than in a page.
const client = readFileSync(join(createRequire(import.meta.url).resolve('vite/package.json'), '../dist/client/client.mjs'), 'utf8')
const source = /const codeframeRE = (\/.*\/gm);/.exec(client)![1]!
const codeframeRE = new RegExp(source.slice(1, source.lastIndexOf('/')), 'gm')

const toml = '[meta]\nname = "a"\n\n[[steps]]\nname = "prints"\nrun = "echo hi"\n  expected_output_regex = "^bye"\ncontinue_on_failure = true\n'

describe('the overlay\'s code frame', () => {
  it('has the shape Vite\'s overlay renders, marks the failing line and underlines the key', () => {
    const frame = codeFrame(toml, { line: 7, column: 3 })
    expect(frame.split('\n')).toEqual([
      '  5 | name = "prints"',
      '  6 | run = "echo hi"',
      '> 7 |   expected_output_regex = "^bye"',
      '    |   ^^^^^^^^^^^^^^^^^^^^^',
      '  8 | continue_on_failure = true',
    ])
    codeframeRE.lastIndex = 0
    expect(codeframeRE.test(`${frame}\n`)).toBe(true)
  })

  it('says nothing for a line the file does not have', () => {
    expect(codeFrame(toml, { line: 99, column: 1 })).toBe('')
  })

  it('keeps output lines in the message from being taken for a frame', async () => {
    const err = await overlayError({
      file: '/nowhere/a.clnrm.toml',
      relative: 'a.clnrm.toml',
      name: 'a',
      status: 'fail',
      failure: { step: 'prints', expectation: 'expected_output_regex = "^bye"', message: 'stdout does not match', excerpt: ' 12 | looks like a frame\nhi\n', location: { file: '/nowhere/a.clnrm.toml', line: 7, column: 3 } },
    })
    codeframeRE.lastIndex = 0
    expect(codeframeRE.test(err.message)).toBe(false)
    expect(err.message).toContain('│  12 | looks like a frame')
    expect(err.message.split('\n').slice(0, 2)).toEqual(['a: step "prints": stdout does not match', 'expected_output_regex = "^bye"'])
    expect(err.loc).toEqual({ file: '/nowhere/a.clnrm.toml', line: 7, column: 3 })
    // The file cannot be read: no frame, the rest stays.
    expect(err.frame).toBe('')
  })
})
