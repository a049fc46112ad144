import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isTestFile } from '../core/index.ts'
import { fixture, fixtureLoader } from './helpers.ts'

// Each invalid fixture states what it must produce on its first line:
// `# expect: CODE line:column` (or `# expect: CODE partial.eta line:column`).
const dir = fixture('invalid')
const cases = readdirSync(dir).filter(isTestFile).sort()

describe('invalid test files', () => {
  const loader = fixtureLoader()

  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30)
  })

  it.each(cases)('%s', async (name) => {
    const file = `${dir}/${name}`
    const expectation = /^# expect: (\w+)(?: (\S+\.eta))?(?: (\d+):(\d+))?$/m.exec(readFileSync(file, 'utf8'))
    expect(expectation, 'fixture needs an # expect: line').not.toBeNull()
    const [, code, otherFile, line, column] = expectation!
    const result = await loader.load(file)
    expect(result.spec).toBeUndefined()
    const errors = result.diagnostics.filter(d => d.severity === 'error')
    expect(errors.map(e => e.code)).toContain(code)
    const error = errors.find(e => e.code === code)!
    expect(error.file).toBe(otherFile ? `${dir}/${otherFile}` : file)
    if (line) expect({ line: error.line, column: error.column }).toEqual({ line: Number(line), column: Number(column) })
    else expect(error.line).toBeGreaterThan(0)
    expect(error.message.length).toBeGreaterThan(10)
    expect(error.hint, `${code} should say what to do`).toBeTruthy()
  })
})
