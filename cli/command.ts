import type { CommandContext } from './context.ts'
import { EXIT_CODES_HELP } from './errors.ts'

/** One option of a command: how `parseArgs` reads it and how `--help` shows it. */
export interface OptionDef {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Placeholder shown in help, e.g. `<file>`. */
  value?: string
  description: string
  default?: string | boolean
  /** A string option that may be given bare (`--changed`), meaning this value (`--changed=HEAD`). */
  implicit?: string
}

/** Parsed arguments of a command. */
export interface CommandArgs {
  positionals: string[]
  options: Record<string, string | boolean | string[] | undefined>
}

/** A CLI command: its help and what it does. Returns the exit code. */
export interface CommandDef {
  name: string
  /** `<file>` or `[paths...]`, shown after the name. */
  args: string
  summary: string
  /** Longer text for `--help`. */
  details?: string
  examples?: string[]
  options: Record<string, OptionDef>
  run: (args: CommandArgs, ctx: CommandContext) => Promise<number>
}

/** Options every command takes. */
export const COMMON_OPTIONS: Record<string, OptionDef> = {
  'root': { type: 'string', value: '<dir>', description: 'Project root (default: the nearest directory with clnrm.toml, else the working directory)' },
  'no-color': { type: 'boolean', description: 'Plain output (NO_COLOR is honoured too)' },
  'help': { type: 'boolean', short: 'h', description: 'Show this help' },
}

/** `--var key=value` and `--render-timeout`, for commands that render templates. */
export const VAR_OPTION: Record<string, OptionDef> = {
  'var': { type: 'string', multiple: true, value: '<key=value>', description: 'Set a template var, overriding clnrm.toml [vars] (repeatable)' },
  'render-timeout': { type: 'string', value: '<duration>', description: 'Stop a template render after this long and report it (overrides render_timeout in clnrm.toml; default 2s)' },
}

/** `--reporter human|json`. */
export const REPORTER_OPTION: Record<string, OptionDef> = {
  reporter: { type: 'string', value: '<human|json>', description: 'Output format', default: 'human' },
}

/** The `--help` text of a command. */
export function commandHelp(command: CommandDef): string {
  const lines = [`clnrm ${command.name} ${command.args}`.trimEnd(), '', command.summary]
  if (command.details) lines.push('', command.details)
  lines.push('', 'Options:')
  const rows = Object.entries({ ...command.options, ...COMMON_OPTIONS }).map(([name, def]) => {
    const flag = `${def.short ? `-${def.short}, ` : '    '}--${name}${def.value ? ` ${def.value}` : ''}`
    const suffix = def.default !== undefined ? ` (default: ${def.default})` : ''
    return [flag, def.description + suffix] as const
  })
  const width = Math.max(...rows.map(([flag]) => flag.length))
  for (const [flag, text] of rows) lines.push(`  ${flag.padEnd(width)}  ${text}`)
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map(e => `  ${e}`))
  lines.push('', EXIT_CODES_HELP)
  return `${lines.join('\n')}\n`
}
