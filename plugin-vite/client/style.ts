import { PANEL_Z_INDEX } from './layers.ts'
import { WATERFALL_STYLE } from './waterfall.ts'

// Colours are custom properties set once per scheme; every rule reads them. Text colours keep a
// contrast ratio of at least 4.5:1 against the panel's background in both schemes.
const LIGHT = `
  --bg: #ffffff; --bg-raised: #f3f4f6; --bg-code: #f6f8fa; --fg: #1f2328; --dim: #57606a; --border: #d0d7de; --row-border: #e5e7eb;
  --pass: #1a7f37; --fail: #cf222e; --fail-strong: #a40e26; --fail-tint: #cf222e14; --warn: #8a5a00; --link: #0969da; --focus: #0969da;
  --badge-bg: #ffffff; --badge-fail-bg: #b91c1c; --badge-fail-fg: #ffffff; --shadow: #1f232833;
  --service-0: #0969da; --service-1: #bf3989; --service-2: #1a7f37; --service-3: #8a5a00; --service-4: #8250df; --service-5: #bc4c00; --service-6: #1b7c83; --service-7: #4d7c0f;`
const DARK = `
  --bg: #111418; --bg-raised: #1b1f24; --bg-code: #0b0d10; --fg: #e6e6e6; --dim: #9ba5b0; --border: #2d333b; --row-border: #22272e;
  --pass: #4ade80; --fail: #f87171; --fail-strong: #fca5a5; --fail-tint: #f8717126; --warn: #fbbf24; --link: #79c0ff; --focus: #79c0ff;
  --badge-bg: #1b1f24; --badge-fail-bg: #b91c1c; --badge-fail-fg: #ffffff; --shadow: #0009;
  --service-0: #60a5fa; --service-1: #f472b6; --service-2: #34d399; --service-3: #fbbf24; --service-4: #a78bfa; --service-5: #fb923c; --service-6: #22d3ee; --service-7: #a3e635;`

/** The panel's stylesheet (inside its shadow root, so the page's styles neither reach nor suffer it). */
export const PANEL_STYLE: string = `
:host { all: initial; color-scheme: light dark; ${LIGHT}
  position: fixed; right: 12px; bottom: 12px; z-index: ${PANEL_Z_INDEX}; max-width: calc(100vw - 24px);
  font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--fg); }
@media (prefers-color-scheme: dark) { :host { ${DARK} } }
:focus { outline: none; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip-path: inset(50%); white-space: nowrap; border: 0; }
button { font: inherit; color: inherit; cursor: pointer; }
button.badge { all: unset; cursor: pointer; display: flex; gap: 8px; align-items: center; margin-left: auto; padding: 6px 10px; border-radius: 999px; background: var(--badge-bg); color: var(--fg); border: 1px solid var(--border); box-shadow: 0 2px 8px var(--shadow); }
button.badge:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
.badge .pass { color: var(--pass); } .badge .warned { color: var(--warn); } .badge .fail { color: var(--fail); } .badge .running { color: var(--warn); }
:host([data-status="fail"]) button.badge, :host([data-engine="unreachable"]) button.badge { background: var(--badge-fail-bg); border-color: var(--badge-fail-bg); }
:host([data-status="fail"]) button.badge, :host([data-status="fail"]) button.badge span, :host([data-engine="unreachable"]) button.badge, :host([data-engine="unreachable"]) button.badge span { color: var(--badge-fail-fg); }
.panel { position: absolute; right: 0; bottom: 40px; box-sizing: border-box; width: min(640px, calc(100vw - 24px)); max-height: calc(100vh - 72px); overflow: auto; overscroll-behavior: contain;
  background: var(--bg); color: var(--fg); border: 1px solid var(--border); border-radius: 8px; box-shadow: 0 8px 24px var(--shadow); overflow-wrap: anywhere; }
.panel[hidden] { display: none; }
header { position: sticky; top: 0; z-index: 1; background: var(--bg); padding: 8px 12px; border-bottom: 1px solid var(--border); display: flex; flex-wrap: wrap; gap: 6px 8px; align-items: center; }
header h2 { all: unset; font-weight: 600; }
header .count { margin-right: auto; }
.tools { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; width: 100%; }
.tools label { display: flex; gap: 6px; align-items: center; flex: 1 1 12em; min-width: 0; }
input.filter { flex: 1; min-width: 0; font: inherit; color: var(--fg); background: var(--bg-code); border: 1px solid var(--border); border-radius: 4px; padding: 3px 6px; }
button.action, button.close, button.rerun-test, button.toggle { background: var(--bg-raised); border: 1px solid var(--border); border-radius: 4px; padding: 2px 8px; }
button.close { padding: 2px 6px; }
button.toggle { all: unset; cursor: pointer; display: flex; gap: 8px; align-items: baseline; min-width: 0; flex: 1 1 auto; }
button.toggle:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
button.toggle .chevron { color: var(--dim); width: 1em; }
button.rerun-test { padding: 0 6px; }
.notice { margin: 0; padding: 4px 12px; color: var(--dim); }
.notice:empty { display: none; }
ul.tests { list-style: none; margin: 0; padding: 0; }
ul.tests > li { padding: 8px 12px; border-bottom: 1px solid var(--row-border); }
ul.tests > li[hidden] { display: none; }
.row { display: flex; flex-wrap: wrap; gap: 4px 8px; align-items: baseline; }
.details[hidden] { display: none; }
.warning { color: var(--warn); }
.truncated::before { content: "✂ "; }
.name { font-weight: 600; } .dim { color: var(--dim); } .icon { width: 1em; flex: none; }
li[data-status="pass"] .icon { color: var(--pass); } li[data-status="fail"] .icon, li[data-status="error"] .icon, li[data-status="invalid"] .icon { color: var(--fail); } li[data-status="running"] .icon { color: var(--warn); }
a { color: var(--link); cursor: pointer; text-decoration: underline; }
pre { margin: 6px 0 0; padding: 6px 8px; background: var(--bg-code); color: var(--fg); border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 12em; overflow: auto; }
p.empty { margin: 0; padding: 8px 12px; color: var(--dim); }
p.empty.engine-error { color: var(--fail-strong); background: var(--fail-tint); border-bottom: 1px solid var(--row-border); }
footer { padding: 8px 12px; color: var(--dim); }
ul.pulls { list-style: none; margin: 0; padding: 0; }
ul.pulls[hidden] { display: none; }
ul.pulls > li { padding: 6px 12px; border-bottom: 1px solid var(--row-border); }
.pull-line { display: flex; gap: 8px; align-items: baseline; white-space: nowrap; }
.pull-text { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.pull-line .amounts { flex: none; font-variant-numeric: tabular-nums; }
li[data-state="pulling"] .icon { color: var(--warn); } li[data-state="pulled"] .icon { color: var(--pass); } li[data-state="failed"] .icon { color: var(--fail); }
progress.pull-bar { display: block; width: 100%; height: 4px; margin: 4px 0 0; accent-color: var(--link); }
progress.pull-bar[hidden] { display: none; }
progress.pull-bar[data-done] { visibility: hidden; }
.pull-error { overflow-wrap: anywhere; }
/* A failed pull's line no longer changes: all of it is shown, wrapped. */
li[data-state="failed"] .pull-line { white-space: normal; overflow-wrap: anywhere; }
li[data-state="failed"] .pull-text { overflow: visible; }
.pull-error:empty { display: none; }
${WATERFALL_STYLE}
@media (forced-colors: active) {
  button.badge, button.toggle, .panel { border: 1px solid ButtonText; }
  :focus-visible, button.badge:focus-visible, button.toggle:focus-visible { outline-color: Highlight; }
}`
