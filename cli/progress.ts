import type { PoolEvent } from '../core/index.ts'
import { createPullHeartbeat, formatBytes, formatDuration, formatPullAmounts, formatPullBeat, pullHeartbeatMs } from '../core/index.ts'
import type { CommandContext } from './context.ts'
import { displayPath, printable } from './output.ts'

/** At most this many live lines; the rest are counted on one more. */
const MAX_LIVE_LINES = 8

/** `text` cut to `width` columns with an ellipsis, so a line never wraps (a wrapped line could not be erased). */
export function fitWidth(text: string, width: number): string {
  const chars = [...text]
  if (chars.length <= width) return text
  return width <= 1 ? chars.slice(0, width).join('') : `${chars.slice(0, width - 1).join('')}…`
}

// Shared with Vite's terminal and the panel; re-exported where the CLI's tests and modules import them.
export { formatBytes, formatPullAmounts }

/** The terminal's width: the stream's own, else `COLUMNS`, else 80. */
export function terminalColumns(ctx: Pick<CommandContext, 'columns' | 'env'>): number {
  const own = ctx.columns?.()
  if (own && own > 0) return own
  const env = Number(ctx.env.COLUMNS)
  return Number.isInteger(env) && env > 0 ? env : 80
}

/**
 * Shows which services are starting, on stderr so reports on stdout stay clean. When stderr is a terminal:
 * live lines, one per test with its services (`starting tests/api.clnrm.toml: db, web…`), each
 * cut to the terminal's width so that a narrow terminal never wraps them and they can be erased
 * exactly. Elsewhere (CI logs): plain lines, `starting box (image) for <file>` and
 * `ready box for <file> in 0.4s`, so each `ready` says which test it belongs to. Image pulls: one
 * live line per image in a terminal (`pulling <image>: 2/3 layers, 12.1 MB/30.5 MB`); in a log, a
 * line when each pull starts, when each layer is done, and when it ends (`pulled … in 1.2s`, or
 * `could not pull … from <registry>: <reason>` with its hint), and one every `PULL_HEARTBEAT_MS`
 * a pull goes without another (`pulling <image>: 0/2 layers, 1.0 MB/8.0 MB, 1m 10s so far`).
 */
export function createProgress(ctx: CommandContext): { onEvent: (event: PoolEvent) => void; clear: () => void } {
  // Drawn on stderr: whether it is a terminal decides, not stdout (`clnrm run > out.txt` keeps live
  // lines, `2> log` gets plain ones); its colors likewise.
  const live = ctx.stderrIsTTY ?? ctx.isTTY
  const c = ctx.stderrColors ?? ctx.c
  // Per test file, its starting services in start order.
  const starting = new Map<string, Map<string, string>>()
  const pulling = new Map<string, string>()
  const pulledLayers = new Map<string, number>()
  let drawn = 0
  // A log has no live line: a pull of one large layer would say nothing for minutes.
  const heartbeat = live ? undefined : createPullHeartbeat({ intervalMs: pullHeartbeatMs(ctx.env), onBeat: beat => say(c.dim(`${formatPullBeat(beat)}\n`)) })

  const erase = (): string => (drawn ? `\x1B[${drawn}A\r\x1B[J` : '\r\x1B[2K')
  const render = (): void => {
    if (!live) return
    const width = Math.max(1, terminalColumns(ctx) - 1)
    const lines = [
      ...[...pulling].map(([image, status]) => `pulling ${image}: ${status}`),
      ...[...starting].filter(([, services]) => services.size).map(([file, services]) => `starting ${displayPath(ctx, file)}: ${[...services.values()].join(', ')}…`),
    ]
    const shown = lines.length > MAX_LIVE_LINES ? [...lines.slice(0, MAX_LIVE_LINES - 1), `… and ${lines.length - MAX_LIVE_LINES + 1} more starting`] : lines
    ctx.stderr(`${erase()}${shown.map(line => `${c.dim(fitWidth(printable(line), width))}\n`).join('')}`)
    drawn = shown.length
  }
  // A line printed while live lines are up goes above them.
  const say = (text: string): void => {
    if (live && drawn) {
      ctx.stderr(erase())
      drawn = 0
    }
    ctx.stderr(text)
  }

  return {
    onEvent(event) {
      heartbeat?.onEvent(event)
      switch (event.type) {
        case 'pool:container-starting': {
          const services = starting.get(event.file) ?? new Map<string, string>()
          starting.set(event.file, services)
          // The image is left to the plain lines: in a terminal the width is for the test and its services.
          services.set(event.service, event.service)
          if (!live) say(c.dim(`starting ${printable(`${event.service} (${event.image})`)} for ${displayPath(ctx, event.file)}\n`))
          break
        }
        case 'pool:container-ready': {
          const services = starting.get(event.file)
          services?.delete(event.service)
          if (services && !services.size) starting.delete(event.file)
          pulling.delete(event.image)
          if (!live) say(c.dim(`ready ${printable(event.service)} for ${displayPath(ctx, event.file)} in ${formatDuration(event.ms)}\n`))
          break
        }
        case 'pool:container-replaced':
          say(`${c.yellow('replaced')} ${printable(`${event.service}: ${event.reason}`)}\n`)
          break
        case 'pool:image-pull-start':
          pulling.set(event.image, 'waiting')
          if (!live) say(c.dim(`pulling ${printable(event.image)} from ${printable(event.registry)}\n`))
          break
        case 'pool:image-pull': {
          // Logs get a line each time a layer is done; a terminal keeps one live line per image.
          const amounts = formatPullAmounts(event)
          if (!live && event.layers.done !== pulledLayers.get(event.image) && event.layers.done) {
            say(c.dim(`pulling ${printable(event.image)}: ${amounts}\n`))
            heartbeat?.said(event.image)
          }
          pulledLayers.set(event.image, event.layers.done)
          pulling.set(event.image, amounts || event.status)
          break
        }
        case 'pool:image-pull-done':
          pulling.delete(event.image)
          pulledLayers.delete(event.image)
          if (event.error) say(`${c.red('could not pull')} ${printable(event.image)} from ${printable(event.registry)} ${c.dim(`after ${formatDuration(event.ms)}`)}: ${printable(event.error.reason)}\n  ${c.cyan('hint:')} ${printable(event.error.hint)}\n`)
          else say(c.dim(`pulled ${printable(event.image)} in ${formatDuration(event.ms)} (${formatPullAmounts(event)})\n`))
          break
        case 'pool:orphans-removed':
          say(c.dim(`removed ${event.containers} container(s) left by an earlier clnrm process\n`))
          break
        default:
          return
      }
      render()
    },
    clear() {
      if (live && drawn) ctx.stderr(erase())
      drawn = 0
    },
  }
}
