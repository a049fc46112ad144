import { bench, describe } from 'vitest'
import { createTestLoader } from '../core/index.ts'
import { testFileOfLines } from './fixtures.ts'

const root = process.cwd()
const project = { root, vars: {}, determinism: {} }
const small = testFileOfLines(100)
const large = testFileOfLines(2000)

describe('config parse (TOML + validation, no cache)', () => {
  let n = 0
  const loader = createTestLoader({ project })
  // A unique comment defeats the config cache, so every iteration parses and checks.
  bench('100-line test file', () => {
    loader.loadSource(`${root}/small.clnrm.toml`, `${small}# ${n++}\n`)
  })
  bench('2000-line test file', () => {
    loader.loadSource(`${root}/large.clnrm.toml`, `${large}# ${n++}\n`)
  })
})

describe('config cache: hit vs miss (100-line file)', () => {
  let n = 0
  const loader = createTestLoader({ project })
  loader.loadSource(`${root}/small.clnrm.toml`, small)
  bench('hit (unchanged text)', () => {
    loader.loadSource(`${root}/small.clnrm.toml`, small)
  })
  bench('miss (changed text)', () => {
    loader.loadSource(`${root}/small.clnrm.toml`, `${small}# ${n++}\n`)
  })
})
