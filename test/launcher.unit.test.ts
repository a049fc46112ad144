import { describe, expect, it } from 'vitest'
import { bunxRuntime, runtimeName } from '../cli/launcher.ts'

const node = { node: '20.20.2' }
const bunx = { npm_lifecycle_event: 'bunx', npm_lifecycle_script: 'clnrm', npm_config_user_agent: 'bun/1.4.5 npm/? node/v26.3.0 linux x64', npm_execpath: '/opt/bun/bin/bun' }

describe('the bin\'s runtime decision (spawned through bunx in package.test.ts)', () => {
  it('relaunches on Bun only when bunx started clnrm itself under Node', () => {
    expect(bunxRuntime(bunx, node)).toBe('/opt/bun/bin/bun')
    expect(bunxRuntime({ ...bunx, npm_lifecycle_script: 'clnrm@0.1.0' }, node)).toBe('/opt/bun/bin/bun')
    // Already on Bun (bunx --bun, bun cli/bin.ts, a compiled binary) or Deno.
    expect(bunxRuntime(bunx, { ...node, bun: '1.4.5' })).toBeUndefined()
    expect(bunxRuntime(bunx, { ...node, deno: '2.9.6' })).toBeUndefined()
    // npx, node, a Node tool bunx started that spawns clnrm, or an explicit opt-out.
    expect(bunxRuntime({ npm_lifecycle_event: 'npx', npm_lifecycle_script: 'clnrm' }, node)).toBeUndefined()
    expect(bunxRuntime({}, node)).toBeUndefined()
    expect(bunxRuntime({ ...bunx, npm_lifecycle_script: 'vitest' }, node)).toBeUndefined()
    expect(bunxRuntime({ ...bunx, CLNRM_RUNTIME: 'node' }, node)).toBeUndefined()
  })

  it('bunx run from an npm script keeps npm\'s npm_execpath: Bun then comes from the PATH', () => {
    expect(bunxRuntime({ ...bunx, npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js', npm_config_user_agent: 'npm/11.0.0 node/v20.20.2' }, node)).toBe('bun')
    expect(bunxRuntime({ ...bunx, npm_execpath: 'C:\\bun\\bun.exe' }, node)).toBe('C:\\bun\\bun.exe')
  })

  it('names the runtime', () => {
    expect(runtimeName({ node: '20.20.2' })).toBe('node 20.20.2')
    expect(runtimeName({ node: '24.3.0', bun: '1.4.5' })).toBe('bun 1.4.5')
    expect(runtimeName({ node: '20.11.1', deno: '2.9.6' })).toBe('deno 2.9.6')
  })
})
