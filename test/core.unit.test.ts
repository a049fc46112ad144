import { parse } from 'smol-toml'
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compilePattern, createTestLoader, formatTestFile, MemoryCache, parseDuration, serviceDefinitionHash, toTomlValue } from '../core/index.ts'
import { JUDGE_LIMIT_BYTES, OUTPUT_CAP_BYTES, OutputCapture } from '../core/engine/exec/types.ts'
import { lineAnchorHint, patternError } from '../core/format/regex.ts'
import { createHelperSet, createTemplateHelpers } from '../core/format/template-helpers.ts'
import { literalDeterminism, literalTableText } from '../core/format/template-tables.ts'
import { createEmitter } from '../core/events.ts'
import { contentHash } from '../core/hash.ts'

describe('parseDuration', () => {
  it.each([
    ['250ms', 250], ['5s', 5000], ['2m', 120_000], ['1h', 3_600_000], ['1m30s', 90_000], ['1.5s', 1500], [1200, 1200], ['300', 300],
  ] as const)('%s → %i ms', (input, ms) => expect(parseDuration(input)).toBe(ms))
  it.each(['5 seconds', 'soon', '', '-1s', -5, 1.5, '5q'])('rejects %j', input => expect(parseDuration(input)).toBeUndefined())
})

describe('compilePattern (RE2 syntax, as upstream clnrm)', () => {
  it('reuses a compiled pattern while it is in use, however many other patterns a big project compiles', () => {
    const used = compilePattern('^ready \\d+$')
    for (let i = 0; i < 3000; i++) {
      compilePattern(`^step ${i} of many$`)
      if (i % 100 === 0) expect(compilePattern('^ready \\d+$')).toBe(used)
    }
    expect(compilePattern('^ready \\d+$')).toBe(used)
  })
  it('takes inline flags (?i), (?m), (?s), also scoped', () => {
    expect(compilePattern('(?i)hello').test('HELLO')).toBe(true)
    expect(compilePattern('hello').test('HELLO')).toBe(false)
    expect(compilePattern('a(?i:B)c').test('abc')).toBe(true)
    expect(compilePattern('(?s)a.b').test('a\nb')).toBe(true)
    expect(compilePattern('a.b').test('a\nb')).toBe(false)
  })
  it('anchors ^ and $ at the whole text unless (?m)', () => {
    expect(compilePattern('^two$').test('one\ntwo\n')).toBe(false)
    expect(compilePattern('(?m)^two$').test('one\ntwo\n')).toBe(true)
    expect(compilePattern('^one\ntwo\n$').test('one\ntwo\n')).toBe(true)
    expect(lineAnchorHint('^two$', 'one\ntwo\n')).toBe('would match with (?m) (^ and $ at each line): write "(?m)^two$"')
    expect(lineAnchorHint('^three$', 'one\ntwo\n')).toBeUndefined()
  })
  it('matches a catastrophic pattern in linear time', () => {
    const start = performance.now()
    expect(compilePattern('^(a+)+$').test(`${'a'.repeat(33)}b`)).toBe(false)
    expect(compilePattern('^(a+)+$').test('a'.repeat(100_000))).toBe(true)
    // Generous: a backtracking engine takes minutes on the first input.
    expect(performance.now() - start).toBeLessThan(5000)
  })
  it('compiles each source once', () => {
    expect(compilePattern('cached (pattern)')).toBe(compilePattern('cached (pattern)'))
  })
  it.each([
    ['(a)\\1', /backreferences .* not supported/],
    ['foo(?=bar)', /lookahead and lookbehind are not supported/],
    ['(?<!x)y', /lookahead and lookbehind are not supported/],
    ['(unclosed', /missing closing \)/],
  ])('reports %s with a reason', (pattern, reason) => {
    expect(patternError(pattern)).toMatch(reason)
    expect(() => compilePattern(pattern)).toThrow(SyntaxError)
  })
})

describe('OutputCapture', () => {
  it('keeps a stream whole for judging, and a head-and-tail excerpt for display', () => {
    const capture = new OutputCapture()
    capture.push(Buffer.from('HEAD'))
    capture.push(Buffer.alloc(2 * OUTPUT_CAP_BYTES, 'x'))
    capture.push(Buffer.from('TAIL'))
    expect(capture.whole()).toHaveLength(2 * OUTPUT_CAP_BYTES + 8)
    expect(capture.truncated).toBe(true)
    const excerpt = capture.excerpt()
    expect(excerpt.startsWith('HEADx')).toBe(true)
    expect(excerpt.endsWith('xTAIL')).toBe(true)
    expect(excerpt).toContain(`[… ${OUTPUT_CAP_BYTES + 8} bytes not shown …]`)
  })
  it('gives up the whole stream past the judging bound, keeping head and tail', () => {
    const capture = new OutputCapture()
    capture.push(Buffer.from('FIRST'))
    for (let sent = 0; sent <= JUDGE_LIMIT_BYTES; sent += OUTPUT_CAP_BYTES) capture.push(Buffer.alloc(OUTPUT_CAP_BYTES, 'y'))
    capture.push(Buffer.from('LAST'))
    expect(capture.whole()).toBeUndefined()
    expect(capture.bytes).toBe(JUDGE_LIMIT_BYTES + OUTPUT_CAP_BYTES + 9)
    const excerpt = capture.excerpt()
    expect(excerpt.startsWith('FIRSTy')).toBe(true)
    expect(excerpt.endsWith('yLAST')).toBe(true)
    expect(excerpt.length).toBeLessThan(OUTPUT_CAP_BYTES + 100)
  })
})

describe('toTomlValue', () => {
  const roundTrip = (value: unknown): unknown => parse(`v = ${toTomlValue(value)}`).v
  it.each([
    'plain', 'quote " and backslash \\ and\nnewline\tand tab', 'control \u0001 char', 'unicode ✓ é',
  ])('encodes the string %j so TOML reads it back', value => expect(roundTrip(value)).toBe(value))
  it('encodes numbers, booleans, arrays and inline tables', () => {
    expect(roundTrip(42)).toBe(42)
    expect(roundTrip(1.5)).toBe(1.5)
    expect(roundTrip(true)).toBe(true)
    expect(roundTrip(['a', 1, [true]])).toEqual(['a', 1, [true]])
    expect(roundTrip({ a: 1, 'b c': 'x', nested: { d: [1] } })).toEqual({ a: 1, 'b c': 'x', nested: { d: [1] } })
    expect(toTomlValue(Number.NaN)).toBe('nan')
    expect(toTomlValue(new Date('2025-01-01T00:00:00Z'))).toBe('2025-01-01T00:00:00.000Z')
  })
  it('refuses values TOML cannot hold', () => {
    expect(() => toTomlValue(null)).toThrow(/null/)
    expect(() => toTomlValue(undefined)).toThrow(/undefined/)
  })
})

describe('template helpers', () => {
  const make = (seed?: number, reads: string[] = []) => createTemplateHelpers({ seed, freezeClock: '2025-01-01T00:00:00.000Z', env: { A: '1' }, onEnvRead: r => reads.push(r.name) })
  it('are deterministic under a seed, and differ between seeds', () => {
    const a = make(1)
    const b = make(1)
    const c = make(2)
    const sample = (h: ReturnType<typeof make>) => [h.uuid(), h.fake.name(), h.fake.email(), h.fake.int(1, 6), h.fake.word()]
    expect(sample(a)).toEqual(sample(b))
    expect(sample(make(1))).not.toEqual(sample(c))
    expect(make(1).uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
  it('honour the frozen clock and record env reads', () => {
    const reads: string[] = []
    const h = make(undefined, reads)
    expect(h.now()).toBe('2025-01-01T00:00:00.000Z')
    expect(h.env('A')).toBe('1')
    expect(h.env('B', 'fallback')).toBe('fallback')
    expect(() => h.env('C')).toThrow(/not set/)
    expect(reads).toEqual(['A', 'B', 'C'])
    expect(h.sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
  it('of a helper set give each render what fresh helpers would: its seeded values, env, reads and clock', () => {
    const set = createHelperSet()
    const sample = (h: ReturnType<typeof make>) => [h.uuid(), h.fake.name(), h.fake.email(), h.fake.int(1, 6), h.fake.word(), h.uuid_v4(), h.fake_name(), h.trace_id(), h.pick([1, 2, 3, 4])]
    const reads: string[] = []
    set.use({ seed: 1, freezeClock: '2025-01-01T00:00:00.000Z', env: { A: '1' }, onEnvRead: r => reads.push(r.name) })
    const first = sample(set.helpers)
    expect(first).toEqual(sample(make(1)))
    expect(set.helpers.env('A')).toBe('1')
    expect(set.helpers.now()).toBe('2025-01-01T00:00:00.000Z')
    // The next render: a fresh generator (the same values again), its own env, reads and clock.
    const later: string[] = []
    set.use({ seed: 1, env: { A: '2' }, onEnvRead: r => later.push(r.name) })
    expect(sample(set.helpers)).toEqual(first)
    expect(set.helpers.env('A')).toBe('2')
    expect(set.helpers.now()).not.toBe('2025-01-01T00:00:00.000Z')
    expect([reads, later]).toEqual([['A'], ['A']])
    set.use({ seed: 2, env: {}, onEnvRead: () => {} })
    expect(sample(set.helpers)).toEqual(sample(make(2)))
    // Unseeded: random values, a v4 uuid.
    set.use({ env: {}, onEnvRead: () => {} })
    expect(set.helpers.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(set.helpers.uuid()).not.toBe(set.helpers.uuid())
  })
  it('find a literal table in template text however its header is spelled, keeping its lines, and nothing else', () => {
    const text = '[meta]\nname = "x"\n  [ "vars" ] # data\na = 1\n[vars.db]\nb = 2\n[[vars]]\nc = 3\n[variables]\nd = 4\n'
    expect(literalTableText(text, 'vars')).toBe('\n\n  [ "vars" ] # data\na = 1\n[vars.db]\nb = 2\n\n\n\n\n')
    expect(literalTableText('[meta]\nname = "[vars]"\n[[vars]]\n[variables]\n', 'vars')).toBeUndefined()
    expect(literalTableText('x = 1\n[vars.db]\nb = 2', 'vars')).toBe('\n[vars.db]\nb = 2')
    expect(literalTableText('[meta]\n', 'matrix')).toBeUndefined()
  })
  it('read a literal [determinism] table from template text', () => {
    expect(literalDeterminism('[meta]\nname="x"\n[determinism]\nseed = 9\nfreeze_clock = "2024-02-03T04:05:06Z"\n[watch]\n')).toEqual({ seed: 9, freezeClock: '2024-02-03T04:05:06.000Z' })
    expect(literalDeterminism('[meta]\nname="x"\n')).toEqual({})
  })
})

describe('a loaded template\'s inputs', () => {
  it('list each partial and variable once, however often it was read, in one render or in every matrix combination', () => {
    const root = mkdtempSync(join(tmpdir(), 'clnrm-inputs-'))
    try {
      writeFileSync(join(root, '_svc.eta'), '[services.app]\nimage = "busybox:1.36"\nenv = { U = <%~ toml(env("CLNRM_INPUT_A", "x")) %> }\n')
      const body = '<%~ include("./_svc.eta") %>\n[[steps]]\nname = "s"\nrun = "true"\n'
      writeFileSync(join(root, 'one.clnrm.toml.eta'), `[meta]\nname = <%~ toml(env("CLNRM_INPUT_A", "x") + env("CLNRM_INPUT_B", "y") + env("CLNRM_INPUT_A", "x")) %>\n${body}`)
      writeFileSync(join(root, 'matrix.clnrm.toml.eta'), `[meta]\nname = "<%= it.matrix.os %> <%= env("CLNRM_INPUT_B", "y") %>"\n[matrix]\nos = ["a", "b"]\n${body}`)
      const loader = createTestLoader({ project: { root, vars: {}, determinism: {} }, env: { CLNRM_INPUT_A: '1' } })
      for (const name of ['one.clnrm.toml.eta', 'matrix.clnrm.toml.eta']) {
        const file = join(root, name)
        const loaded = loader.loadSource(file, readFileSync(file, 'utf8'))
        expect(loaded.diagnostics).toEqual([])
        expect(loaded.inputs).toEqual({ template: file, partials: [join(root, '_svc.eta')], env: expect.any(Array) })
        expect(loaded.inputs.env.map(read => read.name).sort()).toEqual(['CLNRM_INPUT_A', 'CLNRM_INPUT_B'])
        expect(loaded.inputs.env.find(read => read.name === 'CLNRM_INPUT_A')?.value).toBe('1')
      }
    }
    finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('contentHash', () => {
  it('gives the digests it always gave (cache keys and pool keys are made from it)', () => {
    expect(contentHash()).toBe('2jmj7l5rSw0yVb_vlWAYkK_YBwk')
    expect(contentHash('a', 'b')).toBe('W0CFQB4lnzkY-xcB09k5nCyMznM')
    expect(contentHash('a', 'b')).not.toBe(contentHash('ab'))
  })
})

describe('serviceDefinitionHash', () => {
  it('is the hash it always was, whatever the key order or the id, label and description: pooled containers carry keys made from it', () => {
    const service = { id: 'app', label: 'x', description: 'd', plugin: 'generic_container', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 1'], env: { Z: '1', A: 'é' }, ports: [8080, 53], volumes: [{ hostPath: '/p/data', containerPath: '/data', readOnly: false }], healthCheck: undefined, waitFor: { kind: 'log' as const, pattern: 'ready', timeoutMs: 30000 }, reset: undefined, reuse: true, limits: { memoryMb: 64 } }
    // The value the former implementation (entries, sort, map, join) gave for this definition.
    expect(serviceDefinitionHash(service as never)).toBe('uwL79trOsLlxFHVywIjalOWxtOs')
    expect(serviceDefinitionHash({ ...service, env: { A: 'é', Z: '1' }, id: 'other', label: undefined, description: undefined } as never)).toBe('uwL79trOsLlxFHVywIjalOWxtOs')
    expect(serviceDefinitionHash({ ...service, ports: [53, 8080] } as never)).not.toBe('uwL79trOsLlxFHVywIjalOWxtOs')
  })
})

describe('MemoryCache', () => {
  it('evicts the least recently used entry and counts hits, misses and evictions', () => {
    const cache = new MemoryCache<string, number>({ max: 2 })
    cache.set('a', 1)
    cache.set('b', 2)
    expect(cache.get('a')).toBe(1)
    cache.set('c', 3)
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toBe(1)
    expect(cache.stats()).toEqual({ hits: 2, misses: 1, evictions: 1, hitRate: 2 / 3, size: 2 })
    cache.invalidate('a')
    expect(cache.get('a')).toBeUndefined()
    cache.clear()
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0, size: 0 })
  })
  it('expires entries after their TTL', async () => {
    const cache = new MemoryCache<string, number>({ ttl: 20 })
    cache.set('a', 1)
    expect(cache.get('a')).toBe(1)
    await new Promise(r => setTimeout(r, 40))
    expect(cache.get('a')).toBeUndefined()
    expect(cache.stats().evictions).toBe(1)
  })
  it('reserve grows the capacity, keeping every entry, its recency and the counters; it never shrinks', () => {
    const cache = new MemoryCache<string, number>({ max: 2 })
    cache.set('a', 1)
    cache.set('b', 2)
    expect(cache.get('a')).toBe(1)
    cache.reserve(3)
    expect(cache.max).toBeGreaterThanOrEqual(3)
    expect(cache.stats()).toMatchObject({ hits: 1, size: 2, evictions: 0 })
    cache.set('c', 3)
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 0 })
    // Filled up: the least recently used ('b', since 'a' was read before growing) goes first.
    for (let i = cache.stats().size; i <= cache.max; i++) cache.set(`x${i}`, i)
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toBe(1)
    const max = cache.max
    cache.reserve(1)
    expect(cache.max).toBe(max)
  })
})

describe('formatTestFile', () => {
  const messy = `# top comment
[meta]
description = "d"
name = "n"   # the name

[services.app]
# the image
image = "busybox:1.36"
env = { B = "2", A = "1" }
plugin = "generic_container"

[[steps]]
expected_output_regex = "hi"
# what to run
run = """
echo hi
"""
name = "s"
`
  it('orders keys within tables, keeping comments with their keys', () => {
    const result = formatTestFile(messy)
    expect('output' in result && result.output).toBe(`# top comment
[meta]
name = "n"   # the name
description = "d"

[services.app]
plugin = "generic_container"
# the image
image = "busybox:1.36"
env = { B = "2", A = "1" }

[[steps]]
name = "s"
# what to run
run = """
echo hi
"""
expected_output_regex = "hi"
`)
  })
  it('is idempotent and leaves formatted files untouched', () => {
    const once = formatTestFile(messy)
    if (!('output' in once)) throw new Error('expected output')
    expect(formatTestFile(once.output)).toEqual({ output: once.output, changed: false })
  })
  it('reports syntax errors instead of formatting', () => {
    expect(formatTestFile('[meta\nname = 1')).toMatchObject({ error: { line: 1 } })
  })
})

describe('createEmitter', () => {
  it('removes a handler registered for two event types from each type it names', () => {
    const emitter = createEmitter<{ a: number; b: number }>(() => {})
    const seen: string[] = []
    const handler = (n: number): void => void seen.push(String(n))
    emitter.on('a', handler)
    emitter.on('b', handler)
    emitter.off('a', handler)
    emitter.emit('a', 1)
    emitter.emit('b', 2)
    emitter.off('b', handler)
    emitter.emit('b', 3)
    expect(seen).toEqual(['2'])
  })

  it('reports a throwing listener and still runs the others', () => {
    const errors: string[] = []
    const emitter = createEmitter<{ a: number }>(type => void errors.push(String(type)))
    let ran = false
    emitter.on('a', () => { throw new Error('boom') })
    const unsubscribe = emitter.on('a', () => { ran = true })
    emitter.emit('a', 1)
    expect([errors, ran]).toEqual([['a'], true])
    unsubscribe()
    ran = false
    emitter.emit('a', 2)
    expect(ran).toBe(false)
  })
})
