import type { SpanBar, TestView } from '../protocol.ts'
import type { Child } from './dom.ts'
import { h } from './dom.ts'
import { link } from './html.ts'

/**
 * Colours for services, in order of first appearance within a test. Each is a custom property the
 * stylesheet sets per colour scheme, readable as text on the panel's light and dark backgrounds.
 * Past eight services they repeat; the service name written in each row tells them apart.
 */
export const SERVICE_PALETTE: readonly string[] = Array.from({ length: 8 }, (_, i) => `var(--service-${i})`)

/** The waterfall's part of the panel's stylesheet. */
export const WATERFALL_STYLE: string = `
details.spans { margin-top: 6px; }
details.spans > summary { cursor: pointer; color: var(--dim); }
.rule-failure { margin: 4px 0; padding: 4px 8px; border-left: 3px solid var(--fail); background: var(--fail-tint); }
.rule-failure .rule { font-weight: 600; color: var(--fail-strong); }
.rule-failure ul { margin: 2px 0 0; padding-left: 1.2em; list-style: none; }
.rule-failure li { padding: 0; border: 0; color: var(--warn); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 4px 0; color: var(--dim); }
.legend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.waterfall { display: grid; grid-template-columns: minmax(0, 34%) minmax(0, 14%) 1fr 56px; column-gap: 8px; align-items: center; }
.span-row { display: contents; }
.span-row > * { padding: 1px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.span-row[data-highlighted] > * { background: var(--fail-tint); }
.span-row[data-highlighted] .span-name { font-weight: 600; color: var(--fail-strong); }
.span-name .error, .span-name .flag { color: var(--fail); }
.span-service { font-size: 11px; }
.track { position: relative; height: 12px; background: var(--bg-raised); border-radius: 2px; }
.bar { position: absolute; top: 1px; bottom: 1px; min-width: 2px; border-radius: 2px; }
.span-row[data-highlighted] .bar { outline: 2px solid var(--fail); outline-offset: 1px; }
.span-ms { text-align: right; color: var(--dim); }
.axis { display: flex; justify-content: space-between; color: var(--dim); font-size: 11px; margin-left: calc(48% + 16px); margin-right: 64px; }
`

const ms = (value: number): string => (value < 1 ? `${value.toFixed(2)}ms` : value < 10 ? `${value.toFixed(1)}ms` : value < 1000 ? `${Math.round(value)}ms` : `${(value / 1000).toFixed(2)}s`)

/** A colour per service, by first appearance in the bars (so a test's colours do not shift between runs). */
export function serviceColours(bars: readonly SpanBar[]): Map<string, string> {
  const colours = new Map<string, string>()
  for (const bar of bars) if (!colours.has(bar.service)) colours.set(bar.service, SERVICE_PALETTE[colours.size % SERVICE_PALETTE.length]!)
  return colours
}

/** Whether a test has anything for the spans section. */
export const hasSpans = (test: TestView): boolean => Boolean(test.spanRules || test.spans?.length)

/**
 * A test's spans: the failed rules (expected, actual, closest candidate, a link to the rule), then
 * a folding legend and waterfall, one row per span with its name (indented by depth), its service
 * written out, a bar placed by start and duration, and its duration. Texts are text nodes.
 */
export function spansSection(test: TestView, open: boolean): Child[] {
  const rules = test.spanRules
  const bars = test.spans ?? []
  if (!hasSpans(test)) return []
  const failures = (rules?.failures ?? []).map(f => h('div', { 'class': 'rule-failure', 'data-rule': f.rule },
    // The spaces between blocks are not drawn; they keep the words apart in its text (copy, search).
    h('div', {}, h('span', { class: 'rule' }, `✗ ${f.rule}`), f.location && ' · ', f.location && link(f.location, `${test.relative}:${f.location.line}`)),
    ' ',
    h('div', {}, h('span', { class: 'dim' }, 'expected'), ` ${f.expected}`),
    ' ',
    h('div', {}, h('span', { class: 'dim' }, 'actual'), ` ${f.actual}`),
    f.closest && ' ',
    f.closest && h('div', {}, h('span', { class: 'dim' }, 'closest'), ` ${f.closest.name} `, h('span', { class: 'dim' }, `in ${f.closest.service} (${f.closest.spanId})`)),
    f.closest && ' ',
    f.closest && h('ul', {}, f.closest.differences.map(d => h('li', {}, `≠ ${d}`))),
  ))
  const failed = rules?.failures.length ?? 0
  const total = rules?.spans ?? bars.length
  const summary = rules
    ? `${failed ? `${failed} of ${rules.checked}` : rules.checked} span rule${rules.checked === 1 ? '' : 's'} ${failed ? 'failed' : 'held'} over ${total} span${total === 1 ? '' : 's'}${rules.settleMs ? ` · settled in ${rules.settleMs}ms` : ''}`
    : `${total} span${total === 1 ? '' : 's'}`
  const colours = serviceColours(bars)
  const end = Math.max(...bars.map(b => b.startMs + b.durationMs), 0.001)
  const pct = (value: number): string => `${Math.min(100, Math.max(0, (value / end) * 100)).toFixed(3)}%`
  const rows = bars.map((bar) => {
    const colour = colours.get(bar.service)!
    const title = `${bar.name} · ${bar.service} · ${ms(bar.durationMs)} · ${bar.status}${bar.highlighted ? ' · named by a failed rule' : ''}`
    return h('div', { 'class': 'span-row', 'role': 'row', 'data-span-id': bar.id, 'data-service': bar.service, 'data-status': bar.status, 'data-highlighted': bar.highlighted },
      h('span', { class: 'span-name', role: 'cell', style: `padding-left:${Math.min(bar.depth, 8) * 10}px`, title: bar.name },
        bar.highlighted && h('span', { class: 'flag', title: 'named by a failed rule' }, '▸ '), bar.name, bar.status === 'error' && ' ', bar.status === 'error' && h('span', { class: 'error' }, '(error)')),
      // Whitespace between grid cells is not laid out; it separates the cells' words in the text.
      ' ',
      h('span', { class: 'span-service', role: 'cell', style: `color:${colour}` }, bar.service),
      ' ',
      h('span', { class: 'track', role: 'cell' }, h('span', { class: 'bar', style: `left:${pct(bar.startMs)};width:${pct(bar.durationMs)};background:${colour}`, title })),
      ' ',
      h('span', { class: 'span-ms', role: 'cell' }, ms(bar.durationMs)),
    )
  })
  const legend = [...colours].map(([service, colour]) => h('span', {}, h('span', { class: 'swatch', style: `background:${colour}` }), service))
  const details = h('details', { 'class': 'spans', 'data-spans-for': test.file, 'open': open },
    h('summary', {}, summary),
    ...(bars.length
      ? [
          h('div', { 'class': 'legend', 'aria-label': 'services' }, legend),
          h('div', { 'class': 'waterfall', 'role': 'table', 'aria-label': `spans of ${test.name}` }, rows),
          h('div', { 'class': 'axis', 'aria-hidden': 'true' }, h('span', {}, '0'), h('span', {}, ms(end))),
          total > bars.length && h('div', { class: 'dim' }, `… ${total - bars.length} more spans not drawn`),
        ]
      : [h('div', { class: 'dim' }, 'no spans received')]),
  )
  return [...failures, details]
}
