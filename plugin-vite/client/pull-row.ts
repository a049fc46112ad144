import type { PullView } from '../protocol.ts'
import { h, patchSection, setAttribute, setText } from './dom.ts'

const ICONS: Record<PullView['state'], string> = { pulling: '↓', pulled: '✓', failed: '✗' }

/** The parts of a pull's line the update patches. */
interface PullParts {
  icon: HTMLElement
  text: HTMLElement
  amounts: HTMLElement
  bar: HTMLProgressElement
  error: HTMLElement
}

const parts = new WeakMap<HTMLElement, PullParts>()

/**
 * One image's line: its state and name on one line that never wraps (the name is cut with an
 * ellipsis, the amounts keep their place), a progress bar while it is pulled, and the reason with
 * the next step when it failed. Progress updates patch text and the bar's value only, so the
 * panel's layout does not move while bytes arrive.
 */
export function createPullRow(): HTMLElement {
  const p: PullParts = {
    icon: h('span', { 'class': 'icon', 'role': 'img' }),
    text: h('span', { class: 'pull-text' }),
    amounts: h('span', { class: 'dim amounts' }),
    bar: h('progress', { class: 'pull-bar' }),
    error: h('div', { class: 'pull-error' }),
  }
  const row = h('li', {}, h('div', { class: 'pull-line' }, p.icon, ' ', p.text, ' ', p.amounts), p.bar, p.error)
  parts.set(row, p)
  return row
}

/** Brings an image's line up to date. */
export function updatePullRow(row: HTMLElement, pull: PullView): void {
  const p = parts.get(row)
  if (!p) return
  setAttribute(row, 'data-image', pull.image)
  setAttribute(row, 'data-state', pull.state)
  setText(p.icon, ICONS[pull.state])
  setAttribute(p.icon, 'aria-label', pull.state)
  const text = pull.state === 'pulling' ? `pulling ${pull.image}` : pull.state === 'pulled' ? `pulled ${pull.image} in ${pull.took ?? ''}` : `could not pull ${pull.image} from ${pull.registry}${pull.took ? ` after ${pull.took}` : ''}`
  setText(p.text, text)
  setAttribute(p.text, 'title', text)
  setText(p.amounts, pull.state === 'failed' ? '' : pull.amounts || (pull.state === 'pulling' ? 'asking the registry…' : ''))
  // Indeterminate until the engine knows the sizes; hidden (its space kept) once the pull ended.
  setAttribute(p.bar, 'max', pull.bytes.total || undefined)
  setAttribute(p.bar, 'value', pull.bytes.total ? Math.min(pull.bytes.current, pull.bytes.total) : undefined)
  setAttribute(p.bar, 'aria-label', `${pull.image}: ${pull.amounts || 'waiting'}`)
  setAttribute(p.bar, 'data-done', pull.state !== 'pulling' || undefined)
  setAttribute(p.bar, 'hidden', pull.state === 'failed')
  patchSection(p.error, JSON.stringify(pull.error ?? null), () => (pull.error
    ? [h('div', {}, pull.error.reason), ' ', h('div', { class: 'dim' }, `hint: ${pull.error.hint}`)]
    : []))
}

/** What the live region says when a pull starts, ends or fails (not on every byte). */
export function pullAnnouncement(pulls: readonly PullView[]): string {
  return `clnrm: ${pulls.map(p => p.state === 'pulling'
    ? `pulling ${p.image}, tests wait for it`
    : p.state === 'pulled'
      ? `pulled ${p.image}`
      : `could not pull ${p.image}: ${p.error?.reason ?? 'failed'}. ${p.error?.hint ?? ''}`.trim()).join('; ')}`
}

/** A signature of what `pullAnnouncement` would say: announced again only when it changes. */
export function pullStates(pulls: readonly PullView[]): string {
  return pulls.map(p => `${p.image}\0${p.state}\0${p.error?.reason ?? ''}`).join('\n')
}
