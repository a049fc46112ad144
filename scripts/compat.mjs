#!/usr/bin/env node
// `npm run compat`: how much of upstream clnrm's own test files this implementation takes.
// Reads ../shared/upstream-clnrm/files (or the directory given as the first argument) from a
// temporary copy, never writing into it, and runs the built CLI (`npm run build` first) there:
//   1. `clnrm validate` on the files as upstream wrote them;
//   2. `clnrm migrate` on the copy, then `clnrm render` of every migrated Tera file, each render
//      parsed as TOML, and `clnrm validate` of the migrated tests.
// Not part of `npm test`: the project's tests never read ../shared.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { parse } from 'smol-toml'
import { glob } from 'tinyglobby'

const repo = resolve(import.meta.dirname, '..')
const source = resolve(process.argv[2] ?? join(repo, '../shared/upstream-clnrm/files'))
const bin = join(repo, 'dist/cli/bin.mjs')
if (!existsSync(bin)) fail('dist/cli/bin.mjs is missing: run `npm run build` first.')
if (!existsSync(source)) fail(`${source} does not exist: pass upstream's files as the first argument.`)

// Upstream renders every template with these variables (TemplateContext::with_defaults in
// crates/clnrm-template/src/context.rs), at the top level and under vars; matrix and otel are empty.
const UPSTREAM_DEFAULTS = `[vars]
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

  // 1. Upstream's files as written.
  const all = await glob(['**/*'], { cwd: root, absolute: true, ignore: ['clnrm.toml'] })
  const before = validate(clnrm, root)
  console.log(`upstream files: ${all.length}`)
  console.log(`validate (as written): ${before.files.length} test files, ${before.valid} valid, ${before.files.length - before.valid} invalid`)
  printCodes(before.codes)

  // 2. Migration of the Tera files.
  const tera = []
  for (const file of all) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.tera') || /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\}/.test(text)) tera.push(file)
  }
  const migrated = clnrm('migrate', root)
  const todoLines = migrated.stderr.split('\n').filter(line => line.startsWith('TODO '))
  console.log(`\nTera files: ${tera.length} (${tera.filter(f => f.endsWith('.tera')).length} .tera, ${tera.filter(f => !f.endsWith('.tera')).length} others with Tera inside)`)
  console.log(`migrate: exit ${migrated.status}, ${migrated.stdout.split('\n').filter(l => l.startsWith('migrated ')).length} files written, ${todoLines.length} TODOs`)

  const results = []
  for (const file of tera) {
    const target = file.endsWith('.tera') ? `${file.slice(0, -5)}.eta` : `${file}.eta`
    if (!existsSync(target)) {
      results.push({ file: rel(file), ok: false, reason: `not migrated: ${firstLine(migrated.stderr, rel(file)) ?? 'no output file'}` })
      continue
    }
    const todos = todoLines.filter(line => line.includes(` ${rel(file)}:`))
    const rendered = clnrm('render', target)
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

  const after = validate(clnrm, root)
  const migratedTests = after.files.filter(f => f.file.endsWith('.eta'))
  console.log(`\nvalidate (after migrate): ${after.files.length} test files, ${after.valid} valid; migrated templates: ${migratedTests.length}, ${migratedTests.filter(f => f.valid).length} valid`)
  printCodes(after.codes)
}
finally {
  rmSync(work, { recursive: true, force: true })
}

function validate(clnrm, root) {
  const result = clnrm('validate', root, '--reporter', 'json')
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
