import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { isImageReference, toTomlValue } from '../../core/index.ts'
import type { CommandDef } from '../command.ts'
import { EXIT, UsageError } from '../errors.ts'
import { detectProject, nextSteps } from '../next-steps.ts'
import { displayPath } from '../output.ts'

const DEFAULT_IMAGE = 'busybox:1.36'

/** The files `clnrm init` writes, relative to the target directory. */
export function exampleProject(image: string): Record<string, string> {
  const img = toTomlValue(image)
  return {
    'clnrm.toml': `# clnrm project file: settings shared by every test under this directory.

[vars]
# Templates read these as it.<name>; override them with --var name=value.
image = ${img}
greeting = "hello"
`,
    'tests/hello.clnrm.toml': `[meta]
name = "hello"
description = "One container, two steps, each checked inside the container"

[services.box]
image = ${img}

[[steps]]
name = "say hello"
run = "echo hello from $(hostname)"
expected_output_regex = "^hello from "

[[steps]]
name = "each run starts in a fresh directory"
run = "test ! -e marker && touch marker && ls"
expected_output_regex = "marker"
`,
    'tests/_box.eta': `[services.box]
image = <%~ toml(it.image) %>
`,
    'tests/greeting.clnrm.toml.eta': `[meta]
name = "greeting (a template)"

<%~ include('./_box.eta') -%>
<% for (const who of ['world', 'clnrm']) { -%>

[[steps]]
name = <%~ toml(\`greet \${who}\`) %>
run = <%~ toml(\`echo "\${it.greeting}, \${who}"\`) %>
expected_output_regex = <%~ toml(\`(?m)^\${it.greeting}, \${who}$\`) %>
<% } -%>
`,
  }
}

/** `clnrm init`: a small working project. Never overwrites a file. */
export const initCommand: CommandDef = {
  name: 'init',
  args: '[dir]',
  summary: 'Write a working example project: clnrm.toml, a test, and a template with a partial.',
  details: 'Existing files are never overwritten; they are listed as skipped.',
  examples: ['clnrm init', 'clnrm init my-tests --image alpine:3.20'],
  options: {
    image: { type: 'string', value: '<ref>', description: 'The image the example tests use (it needs `sh`)', default: DEFAULT_IMAGE },
  },
  async run(args, ctx) {
    const { c } = ctx
    const dir = resolve(ctx.cwd, args.positionals[0] ?? '.')
    const image = (args.options.image as string | undefined) ?? DEFAULT_IMAGE
    // The example files would be invalid with it, and nothing could run them.
    if (!isImageReference(image)) throw new UsageError(`--image ${JSON.stringify(image)} is not an image reference`, 'Give one such as busybox:1.36 or alpine:3.20 (lowercase name, optional :tag).')
    const files = exampleProject(image)
    let written = 0
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, name)
      await mkdir(dirname(path), { recursive: true })
      try {
        await writeFile(path, text, { flag: 'wx' })
        written++
        ctx.stdout(`${c.green('created')} ${displayPath(ctx, path)}\n`)
      }
      catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        ctx.stdout(`${c.yellow('skipped')} ${displayPath(ctx, path)} ${c.dim('(exists)')}\n`)
      }
    }
    if (!written) return EXIT.ok
    // Bun and Deno set npm_config_user_agent too when they install, but not when they run: ask the runtime.
    const setup = detectProject(dir, ctx.env, { deno: typeof (process.versions as Record<string, string | undefined>).deno === 'string' })
    const next = nextSteps(setup, args.positionals[0], dir)
    const lines = ['', 'Next:', ...next.commands.map(command => `  ${c.cyan(command)}`)]
    if (next.vite) lines.push('', `In ${displayPath(ctx, next.vite.config)}, add the plugin so \`vite dev\` runs the tests too:`, ...next.vite.lines.map(line => `  ${c.cyan(line)}`))
    ctx.stdout(`${lines.join('\n')}\n`)
    return EXIT.ok
  },
}
