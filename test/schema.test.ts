import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Ajv } from 'ajv'
import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { createJsonSchema } from '../core/index.ts'
import { fixture } from './helpers.ts'

const root = resolve(import.meta.dirname, '..')
const readJson = (file: string) => JSON.parse(readFileSync(resolve(root, file), 'utf8'))

describe('editor schema', () => {
  const schema = createJsonSchema()

  it('the committed clnrm.schema.json is generated from the current definitions', () => {
    // Regenerate with `npm run schema` after changing core/format/definition.ts.
    expect(readJson('clnrm.schema.json')).toEqual(JSON.parse(JSON.stringify(schema)))
  })

  it('lets free-text metadata extras through, as clnrm does with a warning', () => {
    const validate = new Ajv({ strict: false }).compile(schema)
    const doc = parse('[meta]\nname = "t"\ntags = ["smoke"]\n[services.app]\nimage = "busybox:1.36"\n[[steps]]\nrun = "true"\n')
    expect(validate(JSON.parse(JSON.stringify(doc))), JSON.stringify(validate.errors)).toBe(true)
  })

  it('accepts the valid fixtures and rejects wrong types and unknown keys', () => {
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema)
    const check = (file: string) => validate(JSON.parse(JSON.stringify(parse(readFileSync(file, 'utf8')))))
    for (const name of ['flat-schema.clnrm.toml', 'modern.clnrm.toml', 'otel-expect.clnrm.toml', 'upstream-plugin-type.clnrm.toml', 'scenario-run-and-steps.clnrm.toml', 'step-contains-should-fail.clnrm.toml', 'upstream-descriptions.clnrm.toml']) {
      expect(check(fixture('valid', name)), JSON.stringify(validate.errors)).toBe(true)
    }
    for (const name of ['meta-name-type', 'service-image-type', 'step-command-string', 'step-exit-code-string', 'service-port-range', 'expect-span-kind-invalid', 'expect-span-attrs-string', 'expect-status-invalid', 'expect-hermeticity-flag-string', 'expect-order-string', 'expect-window-contains-missing', 'otel-sample-ratio-range']) {
      expect(check(fixture('invalid', `${name}.clnrm.toml`)), name).toBe(false)
    }
    // `plugin = "surrealdb"` is rejected by clnrm but not by the schema: whether a plugin value is a
    // label depends on `type` beside it, a rule the schema leaves to `clnrm validate`.
    // Editors flag what clnrm rejects: typos, upstream keys it does not check, impossible values.
    for (const name of ['unknown-step-key', 'unsupported-expect-chaos', 'otel-validation-performance', 'unsupported-service-strict', 'service-image-empty', 'service-image-absolute-path', 'step-exit-code-range', 'step-env-name-hyphen', 'service-id-leading-hyphen', 'meta-name-empty']) {
      expect(check(fixture('invalid', `${name}.clnrm.toml`)), name).toBe(false)
    }
  })
})

describe('package exports', () => {
  it('jsr.json exports the same keys as package.json, pointing at sources that exist', () => {
    const pkg = readJson('package.json')
    const jsr = readJson('jsr.json')
    expect(Object.keys(jsr.exports).sort()).toEqual(Object.keys(pkg.exports).sort())
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './cli', './vite', './vitest'])
    for (const target of Object.values<string>(jsr.exports)) expect(() => readFileSync(resolve(root, target))).not.toThrow()
    expect(jsr.version).toBe(pkg.version)
  })

  it('lists types first in every package.json export, and the built files exist', () => {
    const pkg = readJson('package.json')
    for (const entry of Object.values<Record<string, string>>(pkg.exports)) {
      expect(Object.keys(entry)[0]).toBe('types')
      for (const file of Object.values(entry)) expect(() => readFileSync(resolve(root, file))).not.toThrow()
    }
  })
})
