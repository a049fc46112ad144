import { bench, describe } from 'vitest'
import { createTemplateRenderer } from '../core/index.ts'
import { complexTemplate, simpleTemplate, templateVars } from './fixtures.ts'

const root = process.cwd()
const file = `${root}/bench.clnrm.toml.eta`

describe('template render', () => {
  // A warm renderer: compiled templates come from the cache, as in the dev loop.
  const warm = createTemplateRenderer({ root })
  warm.render({ file, source: simpleTemplate, vars: templateVars })
  warm.render({ file, source: complexTemplate, vars: templateVars })

  bench('simple (10 vars, cached compile)', () => {
    warm.render({ file, source: simpleTemplate, vars: templateVars })
  })
  bench('complex (10×10 nested loops, cached compile)', () => {
    warm.render({ file, source: complexTemplate, vars: templateVars })
  })
  bench('simple, compiled every time (cache miss)', () => {
    createTemplateRenderer({ root }).render({ file, source: simpleTemplate, vars: templateVars })
  })
  bench('complex, compiled every time (cache miss)', () => {
    createTemplateRenderer({ root }).render({ file, source: complexTemplate, vars: templateVars })
  })
})
