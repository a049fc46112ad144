import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestLoader, isImageReference } from '../core/index.ts'
import type { Diagnostic, LoadedTestFile } from '../core/index.ts'
import { findTemplateMarks } from '../core/format/template-marks.ts'
import { tempDir } from './helpers.ts'

// In-process checks of the rules that depend on the file system (symlinks, missing paths) on
// real temporary projects, and of the pure scanners. The CLI's behaviour is in format-cli.test.ts.

const test = (extra: { service?: string; tail?: string } = {}): string =>
  `[meta]\nname = "t"\n[services.app]\nimage = "busybox:1.36"\n${extra.service ?? ''}[[steps]]\nrun = "true"\n${extra.tail ?? ''}`
const codes = (diagnostics: Diagnostic[]): Array<[string, string, number, number]> => diagnostics.map(d => [d.code, d.severity, d.line, d.column])

describe('file-system rules, symlinks resolved', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let outsideDir: string
  let cleanupOutside: () => Promise<void>
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('clnrm-format-'))
    ;({ dir: outsideDir, cleanup: cleanupOutside } = await tempDir('clnrm-outside-'))
    writeFileSync(join(outsideDir, 'secret.txt'), 'host secret\n')
    writeFileSync(join(outsideDir, '_secret.eta'), 'host = "secret"\n')
    mkdirSync(join(dir, 'data'))
    writeFileSync(join(dir, 'data', 'a.txt'), 'a\n')
  })
  afterEach(async () => {
    await cleanup()
    await cleanupOutside()
  })
  const load = (name: string, text: string): LoadedTestFile => {
    const file = join(dir, name)
    writeFileSync(file, text)
    return createTestLoader({ project: { root: dir, vars: {}, determinism: {} } }).loadSource(file, text)
  }

  it('rejects a volume whose host_path leads through a symlink outside the root', () => {
    symlinkSync(outsideDir, join(dir, 'rootlink'))
    const result = load('t.clnrm.toml', test({ service: 'volumes = [{ host_path = "rootlink", container_path = "/x" }]\n' }))
    expect(result.spec).toBeUndefined()
    expect(codes(result.diagnostics)).toEqual([['CLNRM_VOLUME_OUTSIDE_ROOT', 'error', 5, 26]])
    expect(result.diagnostics[0]!.message).toContain(outsideDir)
  })

  it('also through a symlinked directory on the way (rootlink/secret.txt)', () => {
    symlinkSync(outsideDir, join(dir, 'rootlink'))
    const result = load('t.clnrm.toml', test({ service: 'volumes = [{ host_path = "rootlink/secret.txt", container_path = "/x" }]\n' }))
    expect(result.diagnostics.map(d => d.code)).toEqual(['CLNRM_VOLUME_OUTSIDE_ROOT'])
  })

  it('mounts the real path of a symlink that stays inside the root', () => {
    symlinkSync(join(dir, 'data'), join(dir, 'datalink'))
    const result = load('t.clnrm.toml', test({ service: 'volumes = [{ host_path = "datalink", container_path = "/x" }]\n' }))
    expect(result.diagnostics).toEqual([])
    expect(result.spec!.services.app!.volumes[0]!.hostPath).toBe(join(dir, 'data'))
  })

  it('rejects a volume host_path that does not exist (the engine would create it)', () => {
    const result = load('t.clnrm.toml', test({ service: 'volumes = [{ host_path = "dta", container_path = "/x" }]\n' }))
    expect(result.spec).toBeUndefined()
    expect(codes(result.diagnostics)).toEqual([['CLNRM_VOLUME_NOT_FOUND', 'error', 5, 26]])
  })

  it('checks the file system again on every load, though the text is cached', () => {
    const text = test({ service: 'volumes = [{ host_path = "later", container_path = "/x" }]\n' })
    const file = join(dir, 't.clnrm.toml')
    writeFileSync(file, text)
    const loader = createTestLoader({ project: { root: dir, vars: {}, determinism: {} } })
    expect(loader.loadSource(file, text).spec).toBeUndefined()
    mkdirSync(join(dir, 'later'))
    const second = loader.loadSource(file, text)
    expect(second.cache.config).toBe('hit')
    expect(second.spec?.services.app!.volumes[0]!.hostPath).toBe(join(dir, 'later'))
  })

  it('rejects [watch] files that lead through a symlink outside the root', () => {
    symlinkSync(outsideDir, join(dir, 'rootlink'))
    const result = load('t.clnrm.toml', test({ tail: '[watch]\nfiles = ["rootlink/**/*.txt"]\n' }))
    expect(result.spec).toBeUndefined()
    expect(codes(result.diagnostics)).toEqual([['CLNRM_WATCH_OUTSIDE_ROOT', 'error', 8, 10]])
  })

  it('warns, located, about [watch] files and modules that match nothing, and still loads', () => {
    const result = load('t.clnrm.toml', test({ tail: '[watch]\nfiles = ["data/*.txt", "dta/**", "data/a.txt", "data/b.txt"]\nmodules = ["src/mian.ts"]\n' }))
    expect(result.spec).toBeDefined()
    expect(codes(result.diagnostics)).toEqual([
      ['CLNRM_WATCH_NO_MATCH', 'warning', 8, 24],
      ['CLNRM_WATCH_NO_MATCH', 'warning', 8, 48],
      ['CLNRM_WATCH_NO_MATCH', 'warning', 9, 12],
    ])
    // The match found last time is remembered; once it is gone, the glob is walked again.
    const once = test({ tail: '[watch]\nfiles = ["data/*.txt"]\n' })
    expect(load('w.clnrm.toml', once).diagnostics).toEqual([])
    rmSync(join(dir, 'data', 'a.txt'))
    expect(codes(load('w.clnrm.toml', once).diagnostics)).toEqual([['CLNRM_WATCH_NO_MATCH', 'warning', 8, 10]])
    mkdirSync(join(dir, 'src'))
    writeFileSync(join(dir, 'src', 'mian.tsx'), '')
    expect(load('t.clnrm.toml', test({ tail: '[watch]\nmodules = ["src/mian"]\n' })).diagnostics).toEqual([])
  })

  it('rejects an include() of a symlink that leads outside the root, and follows one that stays inside', () => {
    symlinkSync(join(outsideDir, '_secret.eta'), join(dir, '_passwd.eta'))
    const bad = load('t.clnrm.toml.eta', `<%~ include('./_passwd.eta') %>\n${test()}`)
    expect(bad.spec).toBeUndefined()
    expect(bad.diagnostics.map(d => [d.code, d.line])).toEqual([['CLNRM_TEMPLATE_INCLUDE', 1]])
    expect(bad.diagnostics[0]!.message).toContain('symlink')
    expect(bad.toml).toBeUndefined()

    writeFileSync(join(dir, 'data', '_real.eta'), '# from a partial\n')
    symlinkSync(join(dir, 'data', '_real.eta'), join(dir, '_inside.eta'))
    const good = load('u.clnrm.toml.eta', `<%~ include('./_inside.eta') %>\n${test()}`)
    expect(good.diagnostics).toEqual([])
    expect(good.toml).toContain('# from a partial')
  })
})

describe('template syntax in plain files', () => {
  it('finds Tera and Eta tags with their place, outside comments', () => {
    const text = 'a = "{{ x }}"\n# {{ in a comment }}\nb = \'<%= it.y %>\'\n{% for x in y %}\nc = "{# note #}"\n'
    expect(findTemplateMarks(text).map(m => [m.open, m.line, m.column])).toEqual([['{{', 1, 6], ['<%', 3, 6], ['{%', 4, 1], ['{#', 5, 6]])
  })

  it('leaves shell and Go templates alone', () => {
    for (const text of [
      'run = "echo ${HOME} ${#PATH} $((1 + 2))"\n',
      'run = "awk \'{print $1}\' f | sed \'s/{/[/\'"\n',
      'run = "docker inspect -f \'{{.State.Running}}\' x"\n',
      'run = "echo {{"\n',
      'run = "a < b %"\n',
      'run = """\nif [ -n "${#X}" ]; then echo \'{ok}\'; fi\n"""\n',
    ]) expect(findTemplateMarks(text), text).toEqual([])
  })
})

describe('image references', () => {
  it('accepts what the engine accepts and rejects paths, empty and uppercase names', () => {
    for (const ok of ['busybox', 'busybox:1.36', 'clnrm-examples/busybox:1', 'ghcr.io/org/app:v1.2', 'localhost:5000/a/b_c__d:latest', `app@sha256:${'a'.repeat(64)}`, 'Registry.Example.com/app']) {
      expect(isImageReference(ok), ok).toBe(true)
    }
    for (const bad of ['', ' ', '/abs', '../x', './x', 'BusyBox', 'busybox:', 'busybox:-x', 'a//b', 'app@sha256:xyz']) {
      expect(isImageReference(bad), bad).toBe(false)
    }
  })
})
