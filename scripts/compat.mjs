#!/usr/bin/env node
// `npm run compat`: how much of upstream clnrm's own test files this implementation takes.
// Reads ../shared/upstream-clnrm/files (or the directory given as the first argument) from a
// temporary copy, never writing into it, and runs the built CLI (`npm run build` first) there:
//   0. which of the 145 test files (*.toml) upstream's own loader accepts, by the model in
//      scripts/upstream-model.mjs (its Tera files judged on the render of their migration);
//   1. `clnrm validate` on the files as upstream wrote them, and the agreement with upstream;
//   2. `clnrm migrate` on the copy, then `clnrm render` of every migrated Tera file, each render
//      parsed as TOML, and `clnrm validate` of the migrated tests (target: ≥ 95% of the files
//      upstream accepts validate).
//   --run: also run the migrated files upstream accepts, images replaced by the local busybox.
// Not part of `npm test`: the project's tests never read ../shared.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { parse } from 'smol-toml'
import { glob } from 'tinyglobby'
import { upstreamIsTemplate, upstreamLoads } from './upstream-model.mjs'

const repo = resolve(import.meta.dirname, '..')
const source = resolve(process.argv.slice(2).find(a => !a.startsWith('--')) ?? join(repo, '../shared/upstream-clnrm/files'))
const bin = join(repo, 'dist/cli/bin.mjs')
if (!existsSync(bin)) fail('dist/cli/bin.mjs is missing: run `npm run build` first.')
if (!existsSync(source)) fail(`${source} does not exist: pass upstream's files as the first argument.`)

// Upstream renders every template with these variables (TemplateContext::with_defaults in
// crates/clnrm-template/src/context.rs), at the top level and under vars; matrix and otel are empty.
// Steps without a service run in upstream's default image (CleanroomConfig::default() in
// crates/clnrm-core/src/config/project.rs: alpine:latest), as they would with no cleanroom.toml.
const UPSTREAM_DEFAULTS = `[containers]
default_image = "alpine:latest"

[vars]
svc = "clnrm"
env = "ci"
endpoint = "http://localhost:4318"
exporter = "otlp"
image = "registry/clnrm:1.0.0"
freeze_clock = "2025-01-01T00:00:00Z"
token = ""
matrix = {}
otel = {}
`

const work = mkdtempSync(join(tmpdir(), 'clnrm-compat-'))
try {
  const root = join(work, 'files')
  cpSync(source, root, { recursive: true })
  if (!existsSync(join(root, 'clnrm.toml'))) writeFileSync(join(root, 'clnrm.toml'), UPSTREAM_DEFAULTS)
  const clnrm = (...args) => spawnSync(process.execPath, [bin, ...args, '--root', root, '--no-color'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20 })
  const rel = file => relative(root, file)

  // 0. What upstream's own loader makes of each of the 145 test files (scripts/upstream-model.mjs).
  const all = await glob(['**/*'], { cwd: root, absolute: true, ignore: ['clnrm.toml'] })
  const tests = all.filter(f => f.endsWith('.toml')).sort()
  const upstream = new Map()
  for (const file of tests) {
    const text = readFileSync(file, 'utf8')
    upstream.set(file, upstreamIsTemplate(text) ? { template: true } : upstreamLoads(text))
  }

  // 1. clnrm on upstream's files as written.
  const before = validate(clnrm, tests)
  console.log(`upstream files: ${all.length}; test files (.toml): ${tests.length}`)
  console.log(`validate (as written): ${before.files.length} test files, ${before.valid} valid, ${before.files.length - before.valid} invalid`)
  printCodes(before.codes)

  // 2. Migration (Tera → Eta and the schema rewrites).
  const tera = []
  for (const file of all) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.tera') || /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\}/.test(text)) tera.push(file)
  }
  const migrated = clnrm('migrate', root)
  const todoLines = migrated.stderr.split('\n').filter(line => line.startsWith('TODO '))
  const notChecked = migrated.stderr.split('\n').filter(line => line.startsWith('not checked '))
  console.log(`\nTera files: ${tera.length} (${tera.filter(f => f.endsWith('.tera')).length} .tera, ${tera.filter(f => !f.endsWith('.tera')).length} others with Tera inside)`)
  console.log(`migrate: exit ${migrated.status}, ${migrated.stdout.split('\n').filter(l => l.startsWith('migrated ')).length} files written, ${todoLines.length} TODOs, ${notChecked.length} claims turned into "# not checked:" comments`)

  const results = []
  const renders = new Map()
  for (const file of tera) {
    const target = file.endsWith('.tera') ? `${file.slice(0, -5)}.eta` : `${file}.eta`
    if (!existsSync(target)) {
      results.push({ file: rel(file), ok: false, reason: `not migrated: ${firstLine(migrated.stderr, rel(file)) ?? 'no output file'}` })
      continue
    }
    const todos = todoLines.filter(line => line.includes(` ${rel(file)}:`))
    const rendered = clnrm('render', target)
    renders.set(file, rendered)
    if (rendered.status !== 0) {
      results.push({ file: rel(file), ok: false, reason: `render fails: ${rendered.stderr.split('\n').find(Boolean)?.trim()}`, todos })
      continue
    }
    try {
      parse(rendered.stdout)
    }
    catch (error) {
      results.push({ file: rel(file), ok: false, reason: `renders to invalid TOML: ${String(error.message).split('\n')[0]}`, todos })
      continue
    }
    // Eta prints a variable nobody defined as "undefined" where Tera would stop: count those apart.
    results.push({ file: rel(file), ok: true, todos, undefinedVars: /\bundefined\b/.test(rendered.stdout) })
  }
  const ok = results.filter(r => r.ok)
  console.log(`migrate + render to valid TOML: ${ok.length} of ${tera.length}`)
  console.log(`  of which ${ok.filter(r => !r.todos?.length && !r.undefinedVars).length} with no TODO and no "undefined" in the output`)
  for (const r of results.filter(r => r.ok && (r.todos?.length || r.undefinedVars))) console.log(`  ok, but ${[r.todos?.length && `${r.todos.length} TODO(s)`, r.undefinedVars && '"undefined" printed (a variable upstream\'s defaults lack)'].filter(Boolean).join(', ')}: ${r.file}`)
  for (const r of results.filter(r => !r.ok)) {
    console.log(`  ✗ ${r.file}: ${r.reason}`)
    for (const todo of r.todos ?? []) console.log(`      ${todo}`)
  }

  // Upstream renders a templated test file with Tera before parsing it: the migrated file's render
  // stands in for Tera's (a render that fails or prints "undefined" is a Tera error upstream).
  for (const file of tests) {
    if (!upstream.get(file).template) continue
    const rendered = renders.get(file)
    if (!rendered || rendered.status !== 0) upstream.set(file, { ok: false, template: true, reason: 'Tera rendering fails' })
    else if (/\bundefined\b/.test(rendered.stdout)) upstream.set(file, { ok: false, template: true, reason: 'Tera: a variable is not defined' })
    else upstream.set(file, { ...upstreamLoads(rendered.stdout), template: true })
  }
  const accepted = tests.filter(f => upstream.get(f).ok)
  console.log(`\nupstream's loader (model: scripts/upstream-model.mjs) accepts ${accepted.length} of ${tests.length} test files (${accepted.filter(f => upstream.get(f).template).length} of them Tera-rendered)`)
  for (const f of accepted) console.log(`  + ${rel(f)}`)
  const reasons = new Map()
  for (const f of tests.filter(f => !upstream.get(f).ok)) {
    const key = upstream.get(f).reason.replace(/'[^']*'|`[^`]*`/g, '…').replace(/\[\d+\]/g, '[n]').replace(/^(Service|Step|Scenario) \S+/, '$1 …').replace(/^[\w.]+\.(\w+(?:\[n\])?):/, '….$1:')
    reasons.set(key, (reasons.get(key) ?? 0) + 1)
  }
  console.log(`  rejects ${tests.length - accepted.length}: ${[...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${n}× ${r}`).join('; ')}`)

  // 3. Agreement: an upstream-rejected file must be refused; an upstream-accepted one accepted, or
  // refused only for keys upstream dropped without a word (CLNRM_UNKNOWN_KEY / CLNRM_NOT_SUPPORTED).
  const silent = new Set(['CLNRM_UNKNOWN_KEY', 'CLNRM_NOT_SUPPORTED'])
  const byFile = new Map(before.files.map(f => [f.file, f]))
  const errorCodes = f => [...new Set((f?.diagnostics ?? []).filter(d => d.severity === 'error').map(d => d.code))]
  const accepts = f => f && (f.valid || errorCodes(f).every(c => silent.has(c)))
  const wronglyAccepted = tests.filter(f => !upstream.get(f).ok && byFile.get(f)?.valid)
  const wronglyRefused = tests.filter(f => upstream.get(f).ok && !accepts(byFile.get(f)))
  const agree = tests.length - wronglyAccepted.length - wronglyRefused.length
  console.log(`\nagreement (as written): ${agree} of ${tests.length} (${pct(agree, tests.length)})`)
  console.log(`  upstream rejects, clnrm accepts: ${wronglyAccepted.length}`)
  for (const f of wronglyAccepted) console.log(`    ${rel(f)} (upstream: ${upstream.get(f).reason})`)
  console.log(`  upstream accepts, clnrm refuses for other reasons: ${wronglyRefused.length}${wronglyRefused.some(f => upstream.get(f).template) ? ` (${wronglyRefused.filter(f => upstream.get(f).template).length} are Tera files, which clnrm takes after \`clnrm migrate\`)` : ''}`)
  for (const f of wronglyRefused) console.log(`    ${rel(f)}: ${errorCodes(byFile.get(f)).filter(c => !silent.has(c)).join(', ') || 'not validated'}`)

  // 4. After migrate: the migrated file is the same path, or <path>.eta for a Tera one.
  const migratedPath = f => existsSync(f) ? f : existsSync(`${f}.eta`) ? `${f}.eta` : undefined
  const afterFiles = tests.map(migratedPath).filter(Boolean)
  const after = validate(clnrm, afterFiles)
  const afterByFile = new Map(after.files.map(f => [f.file, f]))
  console.log(`\nvalidate (after migrate): ${after.files.length} test files, ${after.valid} valid`)
  printCodes(after.codes)
  const acceptedValid = accepted.filter(f => afterByFile.get(migratedPath(f))?.valid)
  console.log(`  of the ${accepted.length} files upstream accepts, ${acceptedValid.length} validate after migrate (${pct(acceptedValid.length, accepted.length)}; target ≥ 95%)`)
  for (const f of accepted.filter(f => !acceptedValid.includes(f))) {
    const d = afterByFile.get(migratedPath(f))?.diagnostics?.filter(x => x.severity === 'error') ?? []
    console.log(`    ✗ ${rel(f)}: ${d.slice(0, 3).map(x => `${x.line ?? '?'}:${x.column ?? '?'} ${x.code} ${x.message}`).join(' | ') || 'missing after migrate'}`)
  }
  if (process.argv.includes('--run')) runMigrated(clnrm, root, acceptedValid.map(migratedPath), rel)
  const stillAccepted = tests.filter(f => !upstream.get(f).ok && afterByFile.get(migratedPath(f))?.valid)
  console.log(`  upstream-rejected files valid after migrate: ${stillAccepted.length}${stillAccepted.length ? `: ${stillAccepted.map(rel).join(', ')}` : ''}`)
}
finally {
  rmSync(work, { recursive: true, force: true })
}

// 5. `--run`: the migrated files upstream accepts, with every image replaced by the local busybox,
// run for real; each verdict is compared with the one the file's own comments state
// ("Expected: FAIL …", "This test should PASS …"), and upstream's red-team files must fail.
function runMigrated(clnrm, root, files, rel) {
  const image = 'clnrm-examples/busybox:1'
  writeFileSync(join(root, 'clnrm.toml'), readFileSync(join(root, 'clnrm.toml'), 'utf8').replace(/^default_image = .*$/m, `default_image = "${image}"`))
  const stated = new Map()
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace(/^(\s*(?:#\s*not checked:\s*)?image\s*=\s*)("[^"\n]*"|'[^'\n]*')/gm, `$1"${image}"`).replace(/(\{[^}\n]*\bimage\s*=\s*)("[^"\n]*"|'[^'\n]*')/g, `$1"${image}"`))
    const verdict = /^#.*?\b(?:Expected:\s*|[Ss]hould\s+)(PASS|FAIL)\b/m.exec(text)?.[1]
    if (verdict) stated.set(file, verdict === 'PASS' ? 'pass' : 'fail')
  }
  console.log(`\nrun (images → ${image}): ${files.length} files`)
  const result = spawnSync(process.execPath, [bin, 'run', ...files, '--root', root, '--reporter', 'json', '-j', '2', '--no-color'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20, timeout: 20 * 60_000 })
  let report
  try {
    report = JSON.parse(result.stdout)
  }
  catch {
    console.log(`  run did not print JSON (exit ${result.status}${result.error ? `, ${result.error.message}` : ''}): ${result.stderr.split('\n').slice(0, 5).join(' | ')}`)
    return
  }
  const verdicts = new Map()
  for (const t of report.tests ?? []) verdicts.set(t.file, verdicts.get(t.file) === 'fail' || t.status !== 'pass' ? (t.status === 'pass' ? 'fail' : t.status) : 'pass')
  for (const f of report.invalid ?? []) verdicts.set(f.file, 'invalid')
  const count = status => [...verdicts.values()].filter(v => v === status).length
  console.log(`  passed ${count('pass')}, failed ${count('fail')}, errors ${count('error')}, invalid ${count('invalid')} (summary: ${JSON.stringify(report.summary)})`)
  const withStated = files.filter(f => stated.has(f))
  const asStated = withStated.filter(f => (verdicts.get(f) === 'pass' ? 'pass' : 'fail') === stated.get(f))
  console.log(`  files whose comments state a verdict: ${withStated.length}; verdict as stated: ${asStated.length}`)
  for (const f of withStated) console.log(`    ${asStated.includes(f) ? '✓' : '✗'} ${rel(f)}: stated ${stated.get(f)}, got ${verdicts.get(f) ?? 'no result'}`)
  const redTeam = files.filter(f => /red[-_]?team/i.test(rel(f)) && !/legitimate/.test(rel(f)))
  console.log(`  red-team files (attacks): ${redTeam.length}, failing: ${redTeam.filter(f => verdicts.get(f) !== 'pass').length}`)
  for (const f of redTeam) console.log(`    ${verdicts.get(f) !== 'pass' ? '✓ fails' : '✗ PASSES'}: ${rel(f)}`)
}

function validate(clnrm, paths) {
  const result = clnrm('validate', ...paths, '--reporter', 'json')
  let report
  try {
    report = JSON.parse(result.stdout)
  }
  catch {
    fail(`validate did not print JSON (exit ${result.status}):\n${result.stderr}`)
  }
  const files = report.files ?? []
  const codes = new Map()
  for (const f of files) for (const d of f.diagnostics ?? []) if (d.severity === 'error') codes.set(d.code, (codes.get(d.code) ?? 0) + 1)
  return { files, valid: files.filter(f => f.valid).length, codes }
}

function pct(n, of) {
  return `${(100 * n / Math.max(of, 1)).toFixed(1)}%`
}

function printCodes(codes) {
  const sorted = [...codes].sort((a, b) => b[1] - a[1])
  if (sorted.length) console.log(`  errors by code: ${sorted.map(([code, n]) => `${code} ${n}`).join(', ')}`)
}

function firstLine(text, needle) {
  return text.split('\n').find(line => line.includes(needle))?.trim()
}

function fail(message) {
  console.error(`compat: ${message}`)
  process.exit(2)
}
