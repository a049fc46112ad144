import type { SpanBar, TestView } from '../protocol.ts'
import { escape, link } from './html.ts'

/**
 * Colours for services, in order of first appearance within a test: distinct on the panel's dark
 * background. Past eight services they repeat; the service name written in each row tells them apart.
 */
export const SERVICE_PALETTE: readonly string[] = ['#60a5fa', '#f472b6', '#34d399', '#fbbf24', '#a78bfa', '#fb923c', '#22d3ee', '#a3e635']

/** The waterfall's part of the panel's stylesheet. */
export const WATERFALL_STYLE: string = `
details.spans { margin-top: 6px; }
details.spans > summary { cursor: pointer; color: #8b949e; }
.rule-failure { margin: 4px 0; padding: 4px 8px; border-left: 3px solid #f87171; background: #f8717114; }
.rule-failure .rule { font-weight: 600; color: #fca5a5; }
.rule-failure ul { margin: 2px 0 0; padding-left: 1.2em; list-style: none; }
.rule-failure li { padding: 0; border: 0; color: #fbbf24; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 4px 0; color: #8b949e; }
.legend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.waterfall { display: grid; grid-template-columns: minmax(0, 34%) minmax(0, 14%) 1fr 56px; column-gap: 8px; align-items: center; }
.span-row { display: contents; }
.span-row > * { padding: 1px 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.span-row[data-highlighted] > * { background: #f8717126; }
.span-row[data-highlighted] .span-name { font-weight: 600; color: #fca5a5; }
.span-name .error, .span-name .flag { color: #f87171; }
.span-service { font-size: 11px; }
.track { position: relative; height: 12px; background: #1b1f24; border-radius: 2px; }
.bar { position: absolute; top: 1px; bottom: 1px; min-width: 2px; border-radius: 2px; }
.span-row[data-highlighted] .bar { outline: 2px solid #f87171; outline-offset: 1px; }
.span-ms { text-align: right; color: #8b949e; }
.axis { display: flex; justify-content: space-between; color: #8b949e; font-size: 11px; margin-left: calc(48% + 16px); margin-right: 64px; }
`

const ms = (value: number): string => (value < 1 ? `${value.toFixed(2)}ms` : value < 10 ? `${value.toFixed(1)}ms` : value < 1000 ? `${Math.round(value)}ms` : `${(value / 1000).toFixed(2)}s`)

/** A colour per service, by first appearance in the bars (so a test's colours do not shift between runs). */
export function serviceColours(bars: readonly SpanBar[]): Map<string, string> {
  const colours = new Map<string, string>()
  for (const bar of bars) if (!colours.has(bar.service)) colours.set(bar.service, SERVICE_PALETTE[colours.size % SERVICE_PALETTE.length]!)
  return colours
}

/**
 * A test's spans as HTML: the failed rules (expected, actual, closest candidate, a link to the
 * rule), then a legend and a waterfall, one row per span with its name (indented by depth), its
 * service written out, a bar placed by start and duration, and its duration. Every text is escaped.
 */
export function spansSection(test: TestView, open: boolean): string {
  const rules = test.spanRules
  const bars = test.spans ?? []
  if (!rules && !bars.length) return ''
  const failures = (rules?.failures ?? []).map(f => `<div class="rule-failure" data-rule="${escape(f.rule)}">
      <div><span class="rule">✗ ${escape(f.rule)}</span>${f.location ? ` · ${link(f.location, `${test.relative}:${f.location.line}`)}` : ''}</div>
      <div><span class="dim">expected</span> ${escape(f.expected)}</div>
      <div><span class="dim">actual</span> ${escape(f.actual)}</div>
      ${f.closest ? `<div><span class="dim">closest</span> ${escape(f.closest.name)} <span class="dim">in ${escape(f.closest.service)} (${escape(f.closest.spanId)})</span></div>
      <ul>${f.closest.differences.map(d => `<li>≠ ${escape(d)}</li>`).join('')}</ul>` : ''}
    </div>`).join('')
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
    return `<div class="span-row" role="row" data-span-id="${escape(bar.id)}" data-service="${escape(bar.service)}" data-status="${bar.status}"${bar.highlighted ? ' data-highlighted' : ''}>
        <span class="span-name" role="cell" style="padding-left:${Math.min(bar.depth, 8) * 10}px" title="${escape(bar.name)}">${bar.highlighted ? '<span class="flag" title="named by a failed rule">▸ </span>' : ''}${escape(bar.name)}${bar.status === 'error' ? ' <span class="error">(error)</span>' : ''}</span>
        <span class="span-service" role="cell" style="color:${colour}">${escape(bar.service)}</span>
        <span class="track" role="cell"><span class="bar" style="left:${pct(bar.startMs)};width:${pct(bar.durationMs)};background:${colour}" title="${escape(title)}"></span></span>
        <span class="span-ms" role="cell">${ms(bar.durationMs)}</span>
      </div>`
  }).join('')
  const legend = [...colours].map(([service, colour]) => `<span><span class="swatch" style="background:${colour}"></span>${escape(service)}</span>`).join('')
  const more = total > bars.length ? `<div class="dim">… ${total - bars.length} more spans not drawn</div>` : ''
  return `${failures}<details class="spans" data-spans-for="${escape(test.file)}"${open ? ' open' : ''}>
      <summary>${escape(summary)}</summary>
      ${bars.length ? `<div class="legend" aria-label="services">${legend}</div>
      <div class="waterfall" role="table" aria-label="${escape(`spans of ${test.name}`)}">${rows}</div>
      <div class="axis" aria-hidden="true"><span>0</span><span>${ms(end)}</span></div>${more}` : '<div class="dim">no spans received</div>'}
    </details>`
}
