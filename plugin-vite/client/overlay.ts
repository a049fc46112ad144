import type {} from '../custom-events.ts'
import { CLIENT_READY_EVENT, RERUN_EVENT, RERUN_STARTED_EVENT, RESULTS_EVENT } from '../protocol.ts'
import { ClnrmResults } from './panel.ts'

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
  element.rerun = request => hot.send(RERUN_EVENT, request)
  hot.on(RERUN_STARTED_EVENT, reply => element.rerunStarted(reply))
  hot.on(RESULTS_EVENT, (results) => {
    element.update(results)
    // Vite's overlay shows one error and clears only on the next module update: once every test
    // passes again, the clnrm errors it holds are stale (not while it says the engine is down).
    if (results.counts.fail === 0 && !results.engine) {
      for (const overlay of document.querySelectorAll('vite-error-overlay')) {
        if (overlay.shadowRoot?.textContent?.includes('[plugin:clnrm]')) overlay.remove()
      }
    }
  })
  // The server replays the latest results, so they survive a full page reload.
  hot.send(CLIENT_READY_EVENT, { href: location.href })
}
