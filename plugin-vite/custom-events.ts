// Types `import.meta.hot.on('clnrm:results' | 'clnrm:rerun-started', …)` and `server.ws.on('clnrm:client-ready' | 'clnrm:rerun', …)`.
// Kept apart from protocol.ts because JSR rejects module augmentations in published modules.
import type { RerunRequest, RerunStarted, ResultsPayload } from './protocol.ts'

declare module 'vite/types/customEvent.d.ts' {
  interface CustomEventMap {
    'clnrm:results': ResultsPayload
    'clnrm:client-ready': { href: string }
    'clnrm:rerun': RerunRequest
    'clnrm:rerun-started': RerunStarted
  }
}
