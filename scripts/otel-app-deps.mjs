// Prints the directories (relative to the repository) of the packages the OpenTelemetry fixture
// app needs at run time: the dependency closure of its imports, found the way Node resolves
// them (the nearest node_modules up the tree), one `name@version<TAB>dir` a line, sorted.
// scripts/build-otel-image.sh copies exactly these into the image and hashes this list.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const roots = [
  '@opentelemetry/api',
  '@opentelemetry/sdk-trace-node',
  '@opentelemetry/exporter-trace-otlp-proto',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/resources',
  '@opentelemetry/instrumentation',
  '@opentelemetry/instrumentation-http',
]

/** The directory of `name` as Node finds it from a package at `from`. */
function locate(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dir === root || dir === dirname(dir)) throw new Error(`${name} not found from ${from}`)
  }
}

const seen = new Map()
const queue = roots.map((name) => locate(name, root))
while (queue.length > 0) {
  const dir = queue.pop()
  if (seen.has(dir)) continue
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  seen.set(dir, `${pkg.name}@${pkg.version}`)
  const optional = new Set(Object.keys(pkg.peerDependenciesMeta ?? {}).filter((n) => pkg.peerDependenciesMeta[n].optional))
  // Peer dependencies are satisfied by the closure itself (the API); optional ones may be absent.
  for (const name of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]) {
    // Type declarations only (protobufjs lists @types/node as a dependency): nothing to run.
    if (name.startsWith('@types/')) continue
    try {
      queue.push(locate(name, dir))
    } catch (error) {
      if (!(name in (pkg.optionalDependencies ?? {})) && !optional.has(name)) throw error
    }
  }
}
const lines = [...seen].map(([dir, id]) => `${id}\t${relative(root, dir)}`).sort()
process.stdout.write(lines.join('\n') + '\n')
