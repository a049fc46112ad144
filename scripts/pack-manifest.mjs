#!/usr/bin/env node
// The package.json that ships: `prepack` runs `clean`, `postpack` runs `restore`.
//
// The repository's scripts are for working on clnrm: they run scripts/*.sh, bench/ and the
// playground, none of which is in the tarball, and `prepare` builds dist/ after `npm ci`. In an
// installed package they could only fail, and a lifecycle script would run on the user's machine.
// So the packed package.json has no scripts (and no devDependencies, which no consumer reads);
// the working copy is put back after packing, byte for byte.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const manifest = join(root, 'package.json')
const backup = join(root, '.package.json.prepack')
const mode = process.argv[2]

if (mode === 'clean') {
  // A backup left by a pack that failed half-way is the real manifest: never overwrite it.
  if (existsSync(backup)) {
    console.error(`pack-manifest: ${backup} exists (a pack stopped before postpack). Run \`node scripts/pack-manifest.mjs restore\` first.`)
    process.exit(1)
  }
  const text = readFileSync(manifest, 'utf8')
  const pkg = JSON.parse(text)
  delete pkg.scripts
  delete pkg.devDependencies
  writeFileSync(backup, text)
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`)
}
else if (mode === 'restore') {
  if (existsSync(backup)) renameSync(backup, manifest)
}
else {
  console.error('usage: node scripts/pack-manifest.mjs clean|restore')
  process.exit(2)
}
