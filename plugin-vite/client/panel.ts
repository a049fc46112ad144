import type { RerunRequest, RerunStarted, ResultsPayload, TestView } from '../protocol.ts'
import { h, reconcile, setAttribute, setText } from './dom.ts'
import { OPEN_IN_EDITOR } from './html.ts'
import { createPullRow, pullAnnouncement, pullStates, updatePullRow } from './pull-row.ts'
import { PANEL_STYLE } from './style.ts'
import { createRow, updateRow } from './test-row.ts'

/** Session storage keys: the user's choices survive a reload of the page (and nothing longer). */
const STORE = { panel: 'clnrm:panel', filter: 'clnrm:filter', folded: 'clnrm:folded-tests' } as const

// Storage can throw (disabled cookies, sandboxed frames): the panel then forgets, and still works.
function load(key: string): string | null {
  try {
    return sessionStorage.getItem(key)
  }
  catch {
    return null
  }
}
function save(key: string, value: string): void {
  try {
    sessionStorage.setItem(key, value)
  }
  catch {}
}

/** A stored list of strings; anything else (an older or edited value) reads as empty. */
function loadList(key: string): string[] {
  try {
    const value: unknown = JSON.parse(load(key) ?? '[]')
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
  }
  catch {
    return []
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/**
 * `<clnrm-results>`: a badge with pass/fail counts that opens a panel with every test's latest
 * result. Updates patch the DOM in place. The panel opens by itself when something newly fails,
 * unless the user closed it: that choice, the filter and folded tests last for the browser tab.
 */
export class ClnrmResults extends HTMLElement {
  /** Sends a rerun request to the dev server; set by the client entry (no server, no reruns). */
  rerun: ((request: RerunRequest) => void) | undefined
  #root = this.attachShadow({ mode: 'open' })
  #results: ResultsPayload | undefined
  #choice = load(STORE.panel)
  #open = this.#choice === 'open'
  #folded = new Set<string>(loadList(STORE.folded))
  #badge = h('button', { 'class': 'badge', 'type': 'button', 'aria-controls': 'clnrm-panel', 'aria-expanded': 'false' })
  #badgeParts = { pass: h('span', { class: 'pass' }), fail: h('span', { class: 'fail' }), warned: h('span', { class: 'warned', title: 'files with warnings' }), running: h('span', { class: 'running' }), engine: h('span', { class: 'engine' }) }
  #summary = h('div', { 'class': 'sr-only summary', 'role': 'status', 'aria-live': 'polite' })
  #count = h('span', { class: 'dim count' })
  #filter = h('input', { 'class': 'filter', 'type': 'search', 'placeholder': 'file or test name', 'autocomplete': 'off', 'spellcheck': 'false' })
  #notice = h('p', { 'class': 'notice', 'role': 'status', 'aria-live': 'polite' })
  #list = h('ul', { class: 'tests' })
  // After the tests: a pull starting or ending never moves the rows the user is reading.
  #pulls = h('ul', { 'class': 'pulls', 'aria-label': 'images being pulled' })
  #pullsSaid = ''
  /** Rerun requests sent that the server has not answered yet (it answers each, in order). */
  #awaiting = 0
  #empty = h('p', { class: 'empty' })
  #timings = h('span', { class: 'phases' })
  #ran = h('div', { class: 'ran' })
  #footer = h('footer', { class: 'timings' }, this.#timings, ' ', this.#ran)
  #panel = h('div', { 'class': 'panel', 'id': 'clnrm-panel', 'role': 'region', 'aria-label': 'clnrm test results', 'hidden': true },
    h('header', {},
      h('h2', {}, 'clnrm'), ' ', this.#count, ' ',
      h('button', { 'class': 'close', 'type': 'button', 'aria-label': 'collapse to the badge', 'title': 'collapse to the badge (Esc)', 'aria-controls': 'clnrm-panel', 'aria-expanded': 'true' }, '✕'),
      h('div', { class: 'tools' },
        h('button', { 'class': 'action', 'type': 'button', 'data-rerun': 'all' }, 'rerun all'), ' ',
        h('button', { 'class': 'action', 'type': 'button', 'data-rerun': 'failed' }, 'rerun failed'), ' ',
        h('label', {}, 'filter', this.#filter))),
    // The engine error and the empty filter's message come before the list: the first thing read.
    this.#notice, this.#empty, this.#list, this.#pulls, this.#footer)

  connectedCallback(): void {
    if (this.#root.childElementCount) return
    this.#filter.value = load(STORE.filter) ?? ''
    this.#badge.append('clnrm', ...Object.values(this.#badgeParts).map(part => [' ', part]).flat())
    // The badge comes first: Tab goes from it into the panel it opened.
    this.#root.append(h('style', {}, PANEL_STYLE), this.#summary, this.#badge, this.#panel)
    this.#root.addEventListener('click', event => this.#click(event as MouseEvent))
    this.#root.addEventListener('keydown', event => this.#keydown(event as KeyboardEvent))
    this.#filter.addEventListener('input', () => {
      save(STORE.filter, this.#filter.value)
      this.#render()
    })
    this.#render()
  }

  /** Shows new results (the server sends every change, and replays the latest on load). */
  update(results: ResultsPayload): void {
    const failedBefore = this.#results?.counts.fail ?? 0
    const engineBefore = this.#results?.engine
    this.#results = results
    // Open the panel when something newly fails, unless the user closed it: then the badge turns red.
    const engineLost = Boolean(results.engine) && !engineBefore
    if ((results.counts.fail > failedBefore || engineLost) && this.#choice !== 'collapsed') this.#open = true
    this.#endNotice()
    this.#render()
  }

  /**
   * The server's answer to a rerun request. The answer to the newest request ties its notice to
   * the reload that runs it: only that reload's results (or a later one's) end it.
   */
  rerunStarted(reply: RerunStarted): void {
    if (this.#awaiting > 0) this.#awaiting--
    // A newer request is still unanswered, or its notice was replaced: this answer is not for it.
    if (this.#awaiting > 0 || this.#notice.dataset.until !== 'reload') return
    if (!reply.tests) {
      this.#notice.dataset.until = 'next'
      setText(this.#notice, 'nothing to rerun')
      return
    }
    if (reply.reloadId !== undefined) this.#notice.dataset.reload = String(reply.reloadId)
    // No id (an older server): the next reload to finish ends it, as before.
    else this.#notice.dataset.reload = String((this.#results?.lastReload?.id ?? 0) + 1)
    this.#endNotice()
  }

  /** Ends a rerun's notice once its own reload (or a later one) has finished and nothing runs. */
  #endNotice(): void {
    const results = this.#results
    const data = this.#notice.dataset
    if (data.until !== 'reload' || data.reload === undefined || !results?.lastReload || results.counts.running) return
    if (results.lastReload.id < Number(data.reload)) return
    setText(this.#notice, '')
    delete data.until
    delete data.reload
  }

  /** Opens or closes the panel as the user asked; the choice lasts for the tab. */
  #setOpen(open: boolean, focusBadge: boolean): void {
    this.#open = open
    this.#choice = open ? 'open' : 'collapsed'
    save(STORE.panel, this.#choice)
    this.#render()
    if (focusBadge) this.#badge.focus()
  }

  #click(event: MouseEvent): void {
    const target = event.target as Element
    const open = target.closest<HTMLElement>('a[data-open]')?.dataset.open
    if (open) {
      // Vite's middleware opens the file in the editor; the page stays where it is.
      event.preventDefault()
      void fetch(`${OPEN_IN_EDITOR}?file=${encodeURIComponent(open)}`)
      return
    }
    const button = target.closest('button')
    if (!button) return
    if (button === this.#badge) this.#setOpen(!this.#open, false)
    else if (button.classList.contains('close')) this.#setOpen(false, true)
    else if (button.classList.contains('toggle')) {
      const file = button.closest<HTMLElement>('li[data-key]')?.dataset.key
      if (file === undefined) return
      if (this.#folded.has(file)) this.#folded.delete(file)
      else this.#folded.add(file)
      save(STORE.folded, JSON.stringify([...this.#folded]))
      this.#render()
    }
    else if (button.dataset.rerun) this.#requestRerun(button.dataset.rerun, button.dataset.file)
  }

  #keydown(event: KeyboardEvent): void {
    if (event.key !== 'Escape' || !this.#open) return
    // Esc in a filter with text clears it first (as search boxes do), then a second Esc closes.
    if (event.target === this.#filter && this.#filter.value) {
      event.preventDefault()
      this.#filter.value = ''
      save(STORE.filter, '')
      this.#render()
      return
    }
    event.preventDefault()
    this.#setOpen(false, true)
  }

  #requestRerun(scope: string, file: string | undefined): void {
    const results = this.#results
    const say = (text: string): void => {
      // Waits for the server's answer to learn which reload it belongs to.
      this.#notice.dataset.until = 'reload'
      delete this.#notice.dataset.reload
      setText(this.#notice, text)
    }
    if (!this.rerun) return say('rerun needs the Vite dev server')
    if (scope === 'failed') {
      const failed = results?.counts.fail ?? 0
      if (!failed) {
        // Nothing to run: say so, and keep it until the next message replaces it.
        this.#notice.dataset.until = 'next'
        setText(this.#notice, 'nothing failed: no test to rerun')
        return
      }
      this.#send({ scope: 'failed' })
      return say(`rerunning ${plural(failed, 'failed test')}…`)
    }
    if (scope === 'test' && file) {
      this.#send({ scope: 'test', file })
      return say(`rerunning ${results?.tests.find(t => t.file === file)?.name ?? file}…`)
    }
    this.#send({ scope: 'all' })
    say(`rerunning ${plural(results?.tests.length ?? 0, 'test')}…`)
  }

  #send(request: RerunRequest): void {
    this.#awaiting++
    this.rerun?.(request)
  }

  #matches(test: TestView, needle: string): boolean {
    return !needle || test.relative.toLowerCase().includes(needle) || test.name.toLowerCase().includes(needle)
  }

  #render(): void {
    const results = this.#results
    const counts = results?.counts ?? { pass: 0, fail: 0, running: 0, warned: 0 }
    // No engine: nothing is running, and that is a failure to see, not a spinner.
    const engine = results?.engine
    const busy = !engine && (!results?.ready || counts.running > 0)
    this.dataset.status = engine ? 'fail' : busy ? 'running' : counts.fail ? 'fail' : 'pass'
    this.dataset.pass = String(counts.pass)
    this.dataset.fail = String(counts.fail)
    this.dataset.warned = String(counts.warned)
    this.dataset.open = String(this.#open)

    const pulls = results?.pulls ?? []
    const pulling = pulls.filter(p => p.state === 'pulling').length
    const said = `${plural(counts.pass, 'test')} passed, ${counts.fail} failed${counts.warned ? `, ${counts.warned} with warnings` : ''}`
    setText(this.#badgeParts.pass, `✓ ${counts.pass}`)
    setText(this.#badgeParts.fail, `✗ ${counts.fail}`)
    setText(this.#badgeParts.warned, counts.warned ? `! ${counts.warned}` : '')
    setText(this.#badgeParts.running, busy ? `…${counts.running || ''}` : '')
    setAttribute(this.#badgeParts.warned, 'hidden', !counts.warned)
    setAttribute(this.#badgeParts.running, 'hidden', !busy)
    setText(this.#badgeParts.engine, engine ? 'no engine' : '')
    setAttribute(this.#badgeParts.engine, 'hidden', !engine)
    setAttribute(this.#badge, 'aria-expanded', String(this.#open))
    setAttribute(this.#badge, 'aria-label', `clnrm: ${engine ? `${engine.message}, ` : busy ? 'running, ' : ''}${pulling ? `pulling ${plural(pulling, 'image')}, ` : ''}${said}`)
    setAttribute(this.#badge, 'title', `clnrm test results (${this.#open ? 'close' : 'open'})`)
    // Announced when a run settles, not at every test's start and end; a pull when it starts, ends
    // or fails, not at every byte (and no result summary cuts in while one goes on).
    const pullsSaid = pullStates(pulls)
    if (engine) setText(this.#summary, `clnrm: ${engine.message}; retrying`)
    else if (pullsSaid !== this.#pullsSaid && pulls.length) setText(this.#summary, pullAnnouncement(pulls))
    else if (results?.ready && !counts.running && !pulling) setText(this.#summary, `clnrm: ${said}`)
    this.#pullsSaid = pullsSaid
    setAttribute(this.#panel, 'hidden', !this.#open)

    const tests = results?.tests ?? []
    const needle = this.#filter.value.trim().toLowerCase()
    reconcile(this.#list, tests, t => t.file, createRow, (row, test) => {
      updateRow(row, test, !this.#folded.has(test.file))
      setAttribute(row, 'hidden', !this.#matches(test, needle))
    })
    const shown = tests.filter(t => this.#matches(t, needle)).length
    setText(this.#count, shown === tests.length ? plural(tests.length, 'test file') : `${shown} of ${plural(tests.length, 'test file')}`)
    // No engine: said instead of an endless "running", with what to do; the server retries.
    this.dataset.engine = engine ? engine.status : ''
    this.#empty.classList.toggle('engine-error', Boolean(engine))
    setText(this.#empty, engine
      ? `${engine.message}${engine.hint ? ` — ${engine.hint}` : ''} (retrying; the tests run once it answers)`
      : !results || (!results.ready && !tests.length) ? (pulling ? 'waiting for images the tests need…' : 'waiting for the first results…') : shown ? '' : tests.length ? `no test file or name contains “${this.#filter.value.trim()}”` : 'no test files found')
    setAttribute(this.#empty, 'hidden', Boolean(results && shown && !engine))

    reconcile(this.#pulls, pulls, p => p.image, createPullRow, updatePullRow)
    setAttribute(this.#pulls, 'hidden', !pulls.length)

    const reload = results?.lastReload
    setAttribute(this.#footer, 'hidden', !reload)
    setAttribute(this.#footer, 'data-reload', reload?.id)
    setText(this.#timings, reload ? `last reload ${reload.totalLatencyMs}ms: ${reload.phases.map(p => `${p.name} ${p.ms}`).join(' · ')} · cache ${Math.round(reload.templateCacheHitRate * 100)}%/${Math.round(reload.configCacheHitRate * 100)}% · reuse ${Math.round(reload.containerReuseRate * 100)}%` : '')
    const ran = reload?.tests ?? []
    setText(this.#ran, ran.length ? `ran ${ran.map(t => `${t.relative} (${t.reason})`).join(', ')}` : '')
  }
}
