import type {} from '../custom-events.ts'
import type { Problem, ResultsPayload, TestView } from '../protocol.ts'
import { CLIENT_READY_EVENT, RESULTS_EVENT } from '../protocol.ts'
import { escape, link } from './html.ts'
import { WATERFALL_STYLE, spansSection } from './waterfall.ts'

const STYLE = `
:host { all: initial; position: fixed; right: 12px; bottom: 12px; z-index: 2147483000; font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #e6e6e6; }
button.badge { all: unset; cursor: pointer; display: flex; gap: 8px; align-items: center; padding: 6px 10px; border-radius: 999px; background: #1b1f24; box-shadow: 0 2px 8px #0006; }
.badge .pass { color: #4ade80; } .badge .warned { color: #fbbf24; } .badge .fail { color: #f87171; } .badge .running { color: #fbbf24; }
:host([data-status="fail"]) button.badge { outline: 2px solid #f87171; }
.panel { position: absolute; right: 0; bottom: 40px; width: min(640px, 90vw); max-height: 70vh; overflow: auto; background: #111418; border: 1px solid #2d333b; border-radius: 8px; box-shadow: 0 8px 24px #0008; }
.panel[hidden] { display: none; }
header { padding: 8px 12px; border-bottom: 1px solid #2d333b; display: flex; justify-content: space-between; }
ul { list-style: none; margin: 0; padding: 0; }
li { padding: 8px 12px; border-bottom: 1px solid #22272e; }
.row { display: flex; gap: 8px; align-items: baseline; }
.warning { color: #fbbf24; }
.name { font-weight: 600; } .dim { color: #8b949e; } .icon { width: 1em; }
li[data-status="pass"] .icon { color: #4ade80; } li[data-status="fail"] .icon, li[data-status="error"] .icon, li[data-status="invalid"] .icon { color: #f87171; } li[data-status="running"] .icon { color: #fbbf24; }
a { color: #79c0ff; cursor: pointer; text-decoration: underline; }
pre { margin: 6px 0 0; padding: 6px 8px; background: #0b0d10; border-radius: 4px; white-space: pre-wrap; max-height: 12em; overflow: auto; }
footer { padding: 8px 12px; color: #8b949e; }
${WATERFALL_STYLE}`

const ICONS: Record<TestView['status'], string> = { pass: '✓', fail: '✗', error: '✗', invalid: '!', running: '…' }

/** `<clnrm-results>`: a badge with pass/fail counts and a panel with every test's latest result. */
class ClnrmResults extends HTMLElement {
  #root = this.attachShadow({ mode: 'open' })
  #open = false
  #results: ResultsPayload | undefined
  // Waterfalls the user folded, by test file: every render rebuilds the DOM, so the choice is kept here.
  #folded = new Set<string>()

  connectedCallback(): void {
    this.#root.addEventListener('click', (event) => {
      const target = event.target as HTMLElement
      const open = target.closest<HTMLElement>('[data-open]')?.dataset.open
      if (open) {
        // Vite's middleware opens the file in the editor (LAUNCH_EDITOR picks which).
        void fetch(`/__open-in-editor?file=${encodeURIComponent(open)}`)
        return
      }
      // Clicking a summary (also Enter on it) toggles its <details> after this handler: remember
      // the new state, since every render rebuilds the DOM. A \`toggle\` listener would come too late
      // when a render follows at once (toggle is fired in a later task).
      const details = target.closest('summary')?.parentElement
      const file = details instanceof HTMLDetailsElement ? details.dataset.spansFor : undefined
      if (details instanceof HTMLDetailsElement && file !== undefined) {
        if (details.open) this.#folded.add(file)
        else this.#folded.delete(file)
        return
      }
      if (target.closest('button.badge')) {
        this.#open = !this.#open
        this.#render()
      }
    })
    this.#render()
  }

  update(results: ResultsPayload): void {
    const failedBefore = this.#results?.counts.fail ?? 0
    this.#results = results
    // Open the panel when something newly fails: that is when it is worth a look.
    if (results.counts.fail > failedBefore) this.#open = true
    this.#render()
  }

  #render(): void {
    const results = this.#results
    const counts = results?.counts ?? { pass: 0, fail: 0, running: 0, warned: 0 }
    this.dataset.status = !results?.ready || counts.running ? 'running' : counts.fail ? 'fail' : 'pass'
    this.dataset.pass = String(counts.pass)
    this.dataset.fail = String(counts.fail)
    this.dataset.warned = String(counts.warned)
    const tests = results?.tests ?? []
    const reload = results?.lastReload
    this.#root.innerHTML = `<style>${STYLE}</style>
      <div class="panel" ${this.#open ? '' : 'hidden'}>
        <header><span class="name">clnrm</span><span class="dim">${tests.length} test file${tests.length === 1 ? '' : 's'}</span></header>
        <ul>${tests.map(test => this.#row(test)).join('')}</ul>
        ${reload ? `<footer class="timings">last reload ${reload.totalLatencyMs}ms: ${reload.phases.map(p => `${p.name} ${p.ms}`).join(' · ')} · cache ${Math.round(reload.templateCacheHitRate * 100)}%/${Math.round(reload.configCacheHitRate * 100)}% · reuse ${Math.round(reload.containerReuseRate * 100)}%</footer>` : ''}
      </div>
      <button class="badge" title="clnrm test results">
        <span>clnrm</span>
        <span class="pass">✓ ${counts.pass}</span>
        <span class="fail">✗ ${counts.fail}</span>
        ${counts.warned ? `<span class="warned" title="files with warnings">! ${counts.warned}</span>` : ''}
        ${!results?.ready || counts.running ? `<span class="running">…${counts.running || ''}</span>` : ''}
      </button>`
  }

  #row(test: TestView): string {
    const failure = test.failure
    const details = failure
      ? `<div>${failure.step ? `step <b>${escape(failure.step)}</b>: ` : ''}${escape(failure.message)}</div>
         <div class="dim">${escape(failure.expectation)}${failure.location ? ` · ${link(failure.location, `${test.relative}:${failure.location.line}:${failure.location.column}`)}` : ''}</div>
         ${failure.excerpt.trim() ? `<pre>${escape(failure.excerpt)}</pre>` : ''}`
      : ''
    const problem = (p: Problem, kind: string): string => `<div class="${kind}">${link(p.location, `${test.relative}:${p.location.line}:${p.location.column}`)} ${kind === 'warning' ? 'warning ' : ''}${escape(p.code)}: ${escape(p.message)}${p.hint ? `<div class="dim">${escape(p.hint)}</div>` : ''}</div>`
    const problems = [...(test.problems ?? []).map(p => problem(p, 'problem')), ...(test.warnings ?? []).map(p => problem(p, 'warning'))].join('')
    return `<li data-status="${test.status}" data-file="${escape(test.relative)}"${test.warnings?.length ? ` data-warnings="${test.warnings.length}"` : ''}>
      <div class="row"><span class="icon">${ICONS[test.status]}</span><span class="name">${escape(test.name)}</span>
      ${link({ file: test.file, line: 1, column: 1 }, test.relative)}
      <span class="dim">${test.durationMs !== undefined && test.status !== 'running' ? `${test.durationMs}ms` : ''}</span></div>
      ${details}${spansSection(test, !this.#folded.has(test.file))}${problems}${(test.truncated ?? []).map(note => `<div class="warning truncated">note: ${escape(note)}</div>`).join('')}
    </li>`
  }
}

if (!customElements.get('clnrm-results')) customElements.define('clnrm-results', ClnrmResults)

function mount(): ClnrmResults {
  const existing = document.querySelector<ClnrmResults>('clnrm-results')
  if (existing) return existing
  const element = document.createElement('clnrm-results') as ClnrmResults
  document.body.append(element)
  return element
}

if (import.meta.hot) {
  const hot = import.meta.hot
  const element = mount()
  hot.on(RESULTS_EVENT, (results) => {
    element.update(results)
    // Vite's overlay shows one error and clears only on the next module update: once every test
    // passes again, the clnrm errors it holds are stale.
    if (results.counts.fail === 0) {
      for (const overlay of document.querySelectorAll('vite-error-overlay')) {
        if (overlay.shadowRoot?.textContent?.includes('[plugin:clnrm]')) overlay.remove()
      }
    }
  })
  // The server replays the latest results, so they survive a full page reload.
  hot.send(CLIENT_READY_EVENT, { href: location.href })
}
