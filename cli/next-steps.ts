import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'

/** The package managers (and Deno) whose commands `clnrm init` prints. */
export type PackageManager = 'npm' | 'pnpm' | 'yarn' | 'bun' | 'deno'

const LOCKFILES: ReadonlyArray<readonly [string, PackageManager]> = [
  ['pnpm-lock.yaml', 'pnpm'],
  ['yarn.lock', 'yarn'],
  ['bun.lock', 'bun'],
  ['bun.lockb', 'bun'],
  ['deno.lock', 'deno'],
  ['package-lock.json', 'npm'],
  ['npm-shrinkwrap.json', 'npm'],
]

const VITE_CONFIGS = ['vite.config.ts', 'vite.config.mts', 'vite.config.js', 'vite.config.mjs', 'vite.config.cts', 'vite.config.cjs']

/** What `detectProject` found around the directory `clnrm init` wrote into. */
export interface ProjectSetup {
  manager: PackageManager
  /** Whether the nearest package.json lists clnrm (a dependency of any kind). */
  installed: boolean
  /** The Vite config beside the project or above it, within the package. */
  viteConfig?: string
}

/** `pnpm/9.1.0 npm/? node/v20…` → `pnpm`: the tool that started this process (npx, pnpm dlx, yarn dlx, bunx). */
export function managerFromUserAgent(agent: string | undefined): PackageManager | undefined {
  const name = /^(npm|pnpm|yarn|bun|deno)\//.exec(agent ?? '')?.[1]
  return name as PackageManager | undefined
}

/**
 * Which package manager the project uses, whether clnrm is installed, and where its Vite config is.
 * The tool that started clnrm wins (`npm_config_user_agent`, or Deno itself), then the lockfile of
 * the nearest package, then npm.
 */
export function detectProject(dir: string, env: Readonly<Record<string, string | undefined>>, runtime: { deno: boolean }): ProjectSetup {
  let manager = runtime.deno ? 'deno' : managerFromUserAgent(env.npm_config_user_agent)
  let installed = false
  let viteConfig: string | undefined
  // Up to the package that holds the directory: its package.json, lockfile and Vite config.
  for (let at = dir; ; at = dirname(at)) {
    viteConfig ??= VITE_CONFIGS.map(name => join(at, name)).find(existsSync)
    manager ??= LOCKFILES.find(([name]) => existsSync(join(at, name)))?.[1]
    const pkg = join(at, 'package.json')
    if (existsSync(pkg)) {
      installed = listsClnrm(pkg)
      break
    }
    if (dirname(at) === at) break
  }
  return { manager: manager ?? 'npm', installed, ...(viteConfig && { viteConfig }) }
}

function listsClnrm(file: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    return ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'].some(key => Object.hasOwn((pkg[key] ?? {}) as object, 'clnrm'))
  }
  catch {
    return false
  }
}

/** How to run an installed clnrm with this package manager: `npx clnrm`, `pnpm exec clnrm`, … */
export function clnrmCommand(manager: PackageManager): string {
  switch (manager) {
    case 'npm': return 'npx clnrm'
    case 'pnpm': return 'pnpm exec clnrm'
    case 'yarn': return 'yarn clnrm'
    case 'bun': return 'bunx clnrm'
    case 'deno': return 'deno run -A npm:clnrm'
  }
}

/** How to add clnrm as a dev dependency; Deno runs it from npm: without an install. */
export function installCommand(manager: PackageManager): string | undefined {
  switch (manager) {
    case 'npm': return 'npm install -D clnrm'
    case 'pnpm': return 'pnpm add -D clnrm'
    case 'yarn': return 'yarn add -D clnrm'
    case 'bun': return 'bun add -d clnrm'
    case 'deno': return undefined
  }
}

/**
 * The lines `clnrm init` ends with: the exact commands to type next, and the plugin lines for a
 * Vite config. `target` is the directory as the user named it (`undefined` for the working directory).
 */
export function nextSteps(setup: ProjectSetup, target: string | undefined, dir: string): { commands: string[]; vite?: { config: string; lines: string[] } } {
  const run = clnrmCommand(setup.manager)
  const where = target && target !== '.' ? ` ${target}` : ''
  const install = setup.installed ? undefined : installCommand(setup.manager)
  const commands = [
    ...(install ? [install] : []),
    `${run} validate${where}`,
    `${run} run${where}`,
    `${run} dev${where}`,
  ]
  if (!setup.viteConfig) return { commands }
  // The plugin's default globs are relative to the Vite root; tests elsewhere need `tests`.
  const fromVite = relative(dirname(setup.viteConfig), dir).split(sep).join('/')
  const call = fromVite ? `clnrm({ tests: '${fromVite}/tests/**/*.clnrm.toml{,.eta}' })` : 'clnrm()'
  return { commands, vite: { config: setup.viteConfig, lines: [`import { clnrm } from 'clnrm/vite'`, `plugins: [${call}]`] } }
}
