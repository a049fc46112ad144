import { TestFileError } from '../core/index.ts'
import pkg from '../package.json' with { type: 'json' }
import { parseCommandArgs, unknownCommand } from './args.ts'
import type { CommandDef } from './command.ts'
import { commandHelp, COMMON_OPTIONS } from './command.ts'
import { devCommand } from './commands/dev.ts'
import { dryRunCommand } from './commands/dry-run.ts'
import { fmtCommand } from './commands/fmt.ts'
import { initCommand } from './commands/init.ts'
import { mergeReportsCommand } from './commands/merge-reports.ts'
import { migrateCommand } from './commands/migrate.ts'
import { renderCommand } from './commands/render.ts'
import { runCommand } from './commands/run.ts'
import { doctorCommand } from './commands/doctor.ts'
import { schemaCommand } from './commands/schema.ts'
import { validateCommand } from './commands/validate.ts'
import type { CliContext, CommandContext } from './context.ts'
import { processContext, resolveColors } from './context.ts'
import { EXIT, EXIT_CODES_HELP, UsageError } from './errors.ts'
import { exitWhenDone, isDebug } from './exit-guard.ts'
import { runtimeName } from './launcher.ts'
import { formatDiagnostic } from './output.ts'

export type { CliContext } from './context.ts'
export { EXIT, INTERRUPT_EXIT, UsageError } from './errors.ts'
export type { Interrupt } from './errors.ts'

/** clnrm's version. */
export const version: string = pkg.version

/** Every command, in the order `--help` lists them. */
export const commands: readonly CommandDef[] = [devCommand, runCommand, validateCommand, dryRunCommand, renderCommand, fmtCommand, migrateCommand, mergeReportsCommand, initCommand, schemaCommand, doctorCommand]

function mainHelp(): string {
  const width = Math.max(...commands.map(cmd => `${cmd.name} ${cmd.args}`.length))
  return [
    `clnrm ${version}: hermetic integration tests in containers`,
    '',
    'Usage: clnrm <command> [options]',
    '',
    'Commands:',
    ...commands.map(cmd => `  ${`${cmd.name} ${cmd.args}`.padEnd(width)}  ${cmd.summary}`),
    '',
    'Options:',
    '  -h, --help     Show help (also after a command: clnrm validate --help)',
    '  -v, --version  Show the version',
    '',
    EXIT_CODES_HELP,
    '',
  ].join('\n')
}

/**
 * Runs the CLI in-process and returns the exit code. Only `runMain` touches the process;
 * tests call this with a buffered context.
 */
export async function main(argv: readonly string[], context: CliContext = processContext()): Promise<number> {
  const [name, ...rest] = argv
  const plain = resolveColors(context, argv.includes('--no-color'))
  const stderrColors = resolveColors({ ...context, isTTY: context.stderrIsTTY ?? context.isTTY }, argv.includes('--no-color'))
  const ctx: CommandContext = { ...context, c: plain, stderrColors }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? commands.find(cmd => cmd.name === rest[0]) : undefined
    if (name === 'help' && rest[0] !== undefined && !topic && !rest[0].startsWith('-')) {
      const error = unknownCommand(rest[0], commands)
      ctx.stderr(`${ctx.c.red('error')} ${error.message}\n${error.hint ? `${ctx.c.cyan('hint:')} ${error.hint}\n` : ''}Run \`clnrm --help\` for usage.\n`)
      return EXIT.usage
    }
    ctx.stdout(topic ? commandHelp(topic) : mainHelp())
    return EXIT.ok
  }
  if (name === '--version' || name === '-v') {
    ctx.stdout(`${version}\n`)
    return EXIT.ok
  }
  try {
    const command = commands.find(cmd => cmd.name === name)
    if (!command) throw unknownCommand(name, commands)
    const args = parseCommandArgs(command, rest, commands)
    if (args.options.help) {
      ctx.stdout(commandHelp(command))
      return EXIT.ok
    }
    const reporter = args.options.reporter
    if (reporter !== undefined && reporter !== 'human' && reporter !== 'json' && command !== runCommand && command !== devCommand && command !== mergeReportsCommand) {
      throw new UsageError(`Unknown reporter "${reporter}"`, 'Use --reporter human or --reporter json.')
    }
    return await command.run(args, ctx)
  }
  catch (error) {
    if (error instanceof UsageError) {
      ctx.stderr(`${ctx.c.red('error')} ${error.message}\n${error.hint ? `${ctx.c.cyan('hint:')} ${error.hint}\n` : ''}Run \`clnrm ${commands.some(c => c.name === name) ? `${name} ` : ''}--help\` for usage.\n`)
      return EXIT.usage
    }
    if (error instanceof TestFileError) {
      // Only the project file reaches here: test files report through their command.
      for (const d of error.diagnostics) ctx.stderr(formatDiagnostic(ctx, d))
      return EXIT.usage
    }
    throw error
  }
}

/**
 * The process edge: runs `main` with the real process, sets the exit code, and makes sure the
 * process ends. An internal error prints a one-line cause (the stack with `DEBUG=clnrm`) and exits 70.
 */
export async function runMain(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const context = processContext()
  // Which runtime runs clnrm is not always the one typed (bunx, a shebang, a compiled binary).
  if (isDebug(context.env)) context.stderr(`clnrm: ${version} on ${runtimeName()}\n`)
  let code: number
  try {
    code = await main(argv, context)
  }
  catch (error) {
    const debug = isDebug(context.env)
    const cause = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message.split('\n')[0]}` : String(error)
    context.stderr(`clnrm: internal error: ${cause}\n${debug ? `${(error as Error)?.stack ?? ''}\n` : 'Run again with DEBUG=clnrm for the stack, and please report it.\n'}`)
    code = EXIT.internal
  }
  process.exitCode = code
  exitWhenDone(code, context)
}
