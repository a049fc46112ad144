import type { Problem, TestView } from '../protocol.ts'
import type { Child } from './dom.ts'
import { h, patchSection, setAttribute, setText } from './dom.ts'
import { link } from './html.ts'
import { hasSpans, spansSection } from './waterfall.ts'

const ICONS: Record<TestView['status'], string> = { pass: '✓', fail: '✗', error: '✗', invalid: '!', running: '…' }
const SAID: Record<TestView['status'], string> = { pass: 'passed', fail: 'failed', error: 'error', invalid: 'invalid', running: 'running' }

/** The parts of a row the update patches, found once when it is created. */
interface RowParts {
  toggle: HTMLButtonElement
  icon: HTMLElement
  name: HTMLElement
  file: HTMLElement
  duration: HTMLElement
  rerun: HTMLButtonElement
  details: HTMLElement
  failure: HTMLElement
  spans: HTMLElement
  problems: HTMLElement
  notes: HTMLElement
}

const parts = new WeakMap<HTMLElement, RowParts>()
let rows = 0

/**
 * A test's row: a disclosure button (its status and name) that shows or hides the details, a link
 * to the file, its duration and a rerun button; then the details, in sections patched separately.
 */
export function createRow(): HTMLElement {
  const id = `clnrm-test-${++rows}`
  const p: RowParts = {
    toggle: h('button', { 'class': 'toggle', 'type': 'button', 'aria-expanded': 'true', 'aria-controls': id }),
    icon: h('span', { 'class': 'icon', 'role': 'img' }),
    name: h('span', { class: 'name' }),
    file: h('span', { class: 'file' }),
    duration: h('span', { class: 'dim duration' }),
    rerun: h('button', { 'class': 'rerun-test', 'type': 'button', 'data-rerun': 'test' }, '↻ rerun'),
    details: h('div', { class: 'details', id }),
    failure: h('div', { class: 'failure' }),
    spans: h('div', { class: 'spans-part' }),
    problems: h('div', { class: 'problems' }),
    notes: h('div', { class: 'notes' }),
  }
  p.toggle.append(h('span', { 'class': 'chevron', 'aria-hidden': 'true' }), p.icon, p.name)
  p.details.append(p.failure, p.spans, p.problems, p.notes)
  // Spaces between the parts keep their words apart in the row's text (what copy and search see).
  const row = h('li', {}, h('div', { class: 'row' }, p.toggle, ' ', p.file, ' ', p.duration, ' ', p.rerun), ' ', p.details)
  parts.set(row, p)
  return row
}

/** Brings a row up to date with its test, touching only what changed. `expanded`: details shown. */
export function updateRow(row: HTMLElement, test: TestView, expanded: boolean): void {
  const p = parts.get(row)
  if (!p) return
  setAttribute(row, 'data-status', test.status)
  setAttribute(row, 'data-file', test.relative)
  setAttribute(row, 'data-warnings', test.warnings?.length || undefined)
  setAttribute(p.toggle, 'aria-expanded', String(expanded))
  setAttribute(p.toggle, 'title', `${expanded ? 'hide' : 'show'} the details of ${test.name}`)
  setText(p.toggle.firstElementChild!, expanded ? '▾' : '▸')
  setText(p.icon, ICONS[test.status])
  setAttribute(p.icon, 'aria-label', SAID[test.status])
  setText(p.name, test.name)
  patchSection(p.file, `${test.file}\n${test.relative}`, () => [link({ file: test.file, line: 1, column: 1 }, test.relative)])
  setText(p.duration, test.durationMs !== undefined && test.status !== 'running' ? `${test.durationMs}ms` : '')
  setAttribute(p.rerun, 'aria-label', `rerun ${test.name}`)
  setAttribute(p.rerun, 'data-file', test.file)
  setAttribute(p.details, 'hidden', !expanded)

  const failure = test.failure
  patchSection(p.failure, JSON.stringify([failure, test.relative]), () => (failure
    ? [
        h('div', {}, failure.step && 'step ', failure.step && h('b', {}, failure.step), failure.step && ': ', failure.message),
        ' ',
        h('div', { class: 'dim' }, failure.expectation, failure.location && ' · ', failure.location && link(failure.location, `${test.relative}:${failure.location.line}:${failure.location.column}`)),
        failure.excerpt.trim() && ' ',
        failure.excerpt.trim() && h('pre', { tabindex: 0 }, failure.excerpt),
      ]
    : []))
  // The waterfall is rebuilt only when its data changed; then it keeps the fold the user chose.
  const open = p.spans.querySelector('details')?.open ?? true
  patchSection(p.spans, hasSpans(test) ? JSON.stringify([test.spans, test.spanRules, test.name, test.relative]) : '', () => spansSection(test, open))
  patchSection(p.problems, JSON.stringify([test.problems, test.warnings, test.relative]), () => [
    ...(test.problems ?? []).map(q => problem(test, q, 'problem')),
    ...(test.warnings ?? []).map(q => problem(test, q, 'warning')),
  ])
  patchSection(p.notes, JSON.stringify(test.truncated ?? []), () => (test.truncated ?? []).map(note => h('div', { class: 'warning truncated' }, `note: ${note}`)))
}

function problem(test: TestView, p: Problem, kind: 'problem' | 'warning'): Child {
  return h('div', { class: kind },
    link(p.location, `${test.relative}:${p.location.line}:${p.location.column}`),
    ` ${kind === 'warning' ? 'warning ' : ''}${p.code}: ${p.message}`,
    p.hint && h('div', { class: 'dim' }, p.hint))
}
