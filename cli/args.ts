import { parseArgs } from 'node:util'
import { closest, distance } from 'fastest-levenshtein'
import type { CommandArgs, CommandDef, OptionDef } from './command.ts'
import { COMMON_OPTIONS } from './command.ts'
import { UsageError } from './errors.ts'

/**
 * The closest of `candidates` when it is a near miss (a typo, not another word), else `undefined`:
 * one edit per three letters, at least one, and two swapped neighbours count as one edit
 * (`rnu` is `run`; `foo` is not `root`).
 */
export function nearest(input: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined
  const swapped = candidates.find(candidate => isSwap(input, candidate))
  if (swapped) return swapped
  const best = closest(input, [...candidates])
  return distance(input, best) <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined
}

/** Whether `a` is `b` with two neighbouring letters swapped. */
function isSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  const diff = [...a].flatMap((ch, i) => (ch === b[i] ? [] : [i]))
  return diff.length === 2 && diff[1] === diff[0]! + 1 && a[diff[0]!] === b[diff[1]!] && a[diff[1]!] === b[diff[0]!]
}

/** `Unknown command "rnu". Did you mean "run"?`, or the list of commands when nothing is close. */
export function unknownCommand(name: string, commands: readonly CommandDef[]): UsageError {
  if (name.startsWith('-')) return new UsageError(`Unknown command "${name}"`, 'Put the command first: clnrm <command> [options].')
  const guess = nearest(name, commands.map(cmd => cmd.name))
  if (guess) return new UsageError(`Unknown command "${name}". Did you mean "${guess}"?`)
  return new UsageError(`Unknown command "${name}"`, `Commands: ${commands.map(cmd => cmd.name).join(', ')}.`)
}

/**
 * Parses a command's arguments strictly. `parseArgs` reports what is wrong in its own words
 * (`'-o, --output <value>' argument missing`) and differently on Bun and Deno; a failure is
 * therefore diagnosed again here, from the command's own option table, so the message names the
 * option as `--help` does and suggests the option that was meant.
 */
export function parseCommandArgs(command: CommandDef, argv: readonly string[], others: readonly CommandDef[] = []): CommandArgs {
  const defs = { ...command.options, ...COMMON_OPTIONS }
  const options = Object.fromEntries(Object.entries(defs).map(([key, def]) => [key, {
    type: def.type,
    ...(def.short && { short: def.short }),
    ...(def.multiple && { multiple: true }),
  }]))
  // parseArgs has no optional values: a bare `--changed` becomes `--changed=HEAD` (OptionDef.implicit).
  const args = argv.map(arg => (arg.startsWith('--') && command.options[arg.slice(2)]?.implicit !== undefined ? `${arg}=${command.options[arg.slice(2)]!.implicit}` : arg))
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true })
    for (const [key, def] of Object.entries(command.options)) {
      if (values[key] === undefined && def.default !== undefined) (values as Record<string, unknown>)[key] = def.default
    }
    return { positionals, options: values as CommandArgs['options'] }
  }
  catch (error) {
    throw diagnoseArgs(command, args, others) ?? new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, ''))
  }
}

/** How `--help` names an option: `-o, --output <file>`. */
export function optionLabel(name: string, def: OptionDef): string {
  return `${def.short ? `-${def.short}, ` : ''}--${name}${def.value ? ` ${def.value}` : ''}`
}

/** The first unknown option or missing value in `argv`, as a usage error; `undefined` when none is found. */
export function diagnoseArgs(command: CommandDef, argv: readonly string[], others: readonly CommandDef[] = []): UsageError | undefined {
  const defs: Record<string, OptionDef> = { ...command.options, ...COMMON_OPTIONS }
  const shorts = new Map(Object.entries(defs).flatMap(([name, def]) => (def.short ? [[def.short, name] as const] : [])))
  // A value that starts with a dash is taken for an option by parseArgs: `-o --reporter json` lacks -o's value.
  const lacksValue = (next: string | undefined): boolean => next === undefined || (next.startsWith('-') && next !== '-')
  const missing = (name: string): UsageError => {
    const def = defs[name]!
    return new UsageError(`Option ${optionLabel(name, def)} needs a value`, `${def.description}. Give it as --${name} ${def.value ?? '<value>'}${def.short ? ` or -${def.short} ${def.value ?? '<value>'}` : ''}.`)
  }
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!
    if (token === '--') break
    if (token.startsWith('--')) {
      const eq = token.indexOf('=')
      const name = token.slice(2, eq === -1 ? undefined : eq)
      const def = defs[name]
      if (!def) return unknownOption(`--${name}`, command, defs, others)
      if (def.type === 'string' && eq === -1) {
        if (lacksValue(argv[i + 1])) return missing(name)
        i++
      }
    }
    else if (token.startsWith('-') && token.length > 1) {
      // A group of short flags (`-hj4`): the first one that takes a value takes the rest, or the next token.
      for (let k = 1; k < token.length; k++) {
        const name = shorts.get(token[k]!)
        if (!name) return unknownOption(`-${token[k]}`, command, defs, others)
        if (defs[name]!.type !== 'string') continue
        if (k === token.length - 1) {
          if (lacksValue(argv[i + 1])) return missing(name)
          i++
        }
        break
      }
    }
  }
  return undefined
}

function unknownOption(flag: string, command: CommandDef, defs: Record<string, OptionDef>, others: readonly CommandDef[]): UsageError {
  const where = `Unknown option ${flag} for "clnrm ${command.name}"`
  if (flag.startsWith('--')) {
    const guess = nearest(flag.slice(2), Object.keys(defs))
    if (guess) return new UsageError(`${where}. Did you mean --${guess}?`)
    const owners = others.filter(other => other !== command && Object.hasOwn(other.options, flag.slice(2))).map(other => `clnrm ${other.name}`)
    if (owners.length) return new UsageError(where, `${flag} is an option of ${owners.join(' and ')}.`)
  }
  const shortList = Object.entries(defs).map(([name, def]) => (def.short ? `-${def.short}/--${name}` : `--${name}`)).join(', ')
  return new UsageError(where, `Options of clnrm ${command.name}: ${shortList}.`)
}
