import type { DevSession, TestFilter } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { printable } from './output.ts'

/** The keys of `clnrm dev`, as `h` lists them. */
export const DEV_KEYS_HELP: string = [
  'Keys:',
  '  a, r  rerun all tests (within the filters)',
  '  f     rerun the failed tests',
  '  p     filter test files by path: substrings, space-separated (empty clears)',
  '  t     filter tests and steps by name: a regular expression (empty clears)',
  '  c     clear the filters and rerun all',
  '  h     show this help',
  '  q     quit',
].join('\n')

/** What the keys act on. */
export interface DevKeyTarget {
  session: Pick<DevSession, 'rerun' | 'setFilter' | 'filter'>
  quit: () => void
  /** Ctrl-C read as a raw key. */
  interrupt: () => void
}

/** The filters as one line: `files "api" · names /login/`, or undefined when none is set. */
export function describeFilter(filter: TestFilter): string | undefined {
  const parts = [
    ...(filter.files?.length ? [`files ${filter.files.map(f => JSON.stringify(f)).join(' or ')}`] : []),
    ...(filter.pattern ? [`names ${filter.pattern}`] : []),
  ]
  return parts.length ? printable(parts.join(' · ')) : undefined
}

/**
 * The dev loop's keys, as Vitest's watch mode has them: fed characters as they come (a raw-mode
 * terminal) or whole lines (a piped stdin, where `p api` sets the filter at once). `p` and `t`
 * prompt for their value; in a terminal the typed text is echoed, Backspace edits, Esc cancels.
 * Filters stick across saves until cleared.
 */
export function createDevKeys(ctx: CommandContext, target: DevKeyTarget): { feed: (chars: string) => void; line: (text: string) => void } {
  const { c } = ctx
  const say = (text: string): void => ctx.stdout(`${text}\n`)
  let prompt: { key: 'p' | 't'; text: string } | undefined

  const rerunAll = (why: string): void => {
    say(c.dim(why))
    if (!target.session.rerun('all')) say(c.yellow(`No test files match ${describeFilter(target.session.filter()) ?? 'the filter'}; c clears it`))
  }

  const submit = (key: 'p' | 't', text: string): void => {
    const value = text.trim()
    const current = target.session.filter()
    if (key === 'p') {
      target.session.setFilter({ ...current, files: value ? value.split(/\s+/) : undefined })
    }
    else {
      let pattern: RegExp | undefined
      try {
        pattern = value ? new RegExp(value) : undefined
      }
      catch (error) {
        say(`${c.red('error')} ${printable((error as Error).message)}; the name filter is unchanged`)
        return
      }
      target.session.setFilter({ ...current, pattern })
    }
    rerunAll(`filter: ${describeFilter(target.session.filter()) ?? 'none'}`)
  }

  const onKey = (key: string): void => {
    switch (key) {
      case 'q': return target.quit()
      case '\u0003': return target.interrupt()
      case 'a':
      case 'r': return rerunAll('rerun all')
      case 'f':
        if (!target.session.rerun('failed')) say(c.dim(describeFilter(target.session.filter()) ? 'No failed tests to rerun within the filters' : 'No failed tests to rerun'))
        return
      case 'c':
        target.session.setFilter({})
        return rerunAll('filters cleared')
      case 'h': return say(`\n${DEV_KEYS_HELP}\n${c.dim(`filters: ${describeFilter(target.session.filter()) ?? 'none'}`)}`)
      case 'p':
      case 't':
        prompt = { key, text: '' }
        ctx.stdout(c.cyan(key === 'p' ? '\nfilter files by path (substrings; empty clears): ' : '\nfilter by test or step name (regex; empty clears): '))
        return
      default:
        // Enter and stray control bytes are not keys worth a note.
        if (key.trim() && key >= ' ') say(c.dim(`unknown key ${JSON.stringify(key)}; h shows the keys`))
    }
  }

  const feed = (chars: string): void => {
    for (const ch of chars) {
      if (!prompt) {
        onKey(ch)
        continue
      }
      if (ch === '\r' || ch === '\n') {
        const { key, text } = prompt
        prompt = undefined
        ctx.stdout('\n')
        submit(key, text)
      }
      else if (ch === '\u0003') {
        prompt = undefined
        target.interrupt()
      }
      else if (ch === '\u001B') {
        prompt = undefined
        say(c.dim(' (cancelled)'))
      }
      else if (ch === '\u007F' || ch === '\b') {
        if (prompt.text) {
          prompt.text = prompt.text.slice(0, -1)
          ctx.stdout('\b \b')
        }
      }
      else if (ch >= ' ') {
        prompt.text += ch
        ctx.stdout(printable(ch))
      }
    }
  }

  return {
    feed,
    line(text) {
      if (prompt) return feed(`${text}\r`)
      const inline = /^([pt])\s+(.*)$/.exec(text)
      if (inline) return feed(`${inline[1]}${inline[2]}\r`)
      if (text.length === 1) return feed(text)
      say(c.dim(`unknown key ${JSON.stringify(printable(text))}; h shows the keys`))
    },
  }
}
