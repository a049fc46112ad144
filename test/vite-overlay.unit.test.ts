import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { codeFrame } from '../plugin-vite/code-frame.ts'
import { createOverlayTracker, overlayError } from '../plugin-vite/overlay.ts'
import type { TestView } from '../plugin-vite/protocol.ts'

// Vite's overlay renders `frame` only when its own pattern finds a code frame in it: read the
// pattern from the installed client, so a change in Vite fails here rather than in a page.
const client = readFileSync(join(createRequire(import.meta.url).resolve('vite/package.json'), '../dist/client/client.mjs'), 'utf8')
const source = /const codeframeRE = (\/.*\/gm);/.exec(client)![1]!
const codeframeRE = new RegExp(source.slice(1, source.lastIndexOf('/')), 'gm')

const toml = '[meta]\nname = "a"\n\n[[steps]]\nname = "prints"\nrun = "echo hi"\n  expected_output_regex = "^bye"\ncontinue_on_failure = true\n'

describe('the overlay\'s code frame', () => {
  it('has the shape Vite\'s overlay renders, marks the failing line and underlines the key', () => {
    const frame = codeFrame(toml, { line: 7, column: 3 })
    expect(frame.split('\n')).toEqual([
      '  5 | name = "prints"',
      '  6 | run = "echo hi"',
      '> 7 |   expected_output_regex = "^bye"',
      '    |   ^^^^^^^^^^^^^^^^^^^^^',
      '  8 | continue_on_failure = true',
    ])
    codeframeRE.lastIndex = 0
    expect(codeframeRE.test(`${frame}\n`)).toBe(true)
  })

  it('says nothing for a line the file does not have', () => {
    expect(codeFrame(toml, { line: 99, column: 1 })).toBe('')
  })

  it('keeps output lines in the message from being taken for a frame', async () => {
    const err = await overlayError({
      file: '/nowhere/a.clnrm.toml',
      relative: 'a.clnrm.toml',
      name: 'a',
      status: 'fail',
      failure: { step: 'prints', expectation: 'expected_output_regex = "^bye"', message: 'stdout does not match', excerpt: ' 12 | looks like a frame\nhi\n', location: { file: '/nowhere/a.clnrm.toml', line: 7, column: 3 } },
    })
    codeframeRE.lastIndex = 0
    expect(codeframeRE.test(err.message)).toBe(false)
    expect(err.message).toContain('│  12 | looks like a frame')
    expect(err.message.split('\n').slice(0, 2)).toEqual(['a: step "prints": stdout does not match', 'expected_output_regex = "^bye"'])
    expect(err.loc).toEqual({ file: '/nowhere/a.clnrm.toml', line: 7, column: 3 })
    // The file cannot be read: no frame, the rest stays.
    expect(err.frame).toBe('')
  })
})

describe('the overlay tracker (in-process, a recording stand-in for Vite\'s ws)', () => {
  type Sent = { type: string; err?: { message: string } }
  const setup = (mode: boolean | 'failures'): { sent: Sent[]; tracker: ReturnType<typeof createOverlayTracker>; settle: () => Promise<void> } => {
    const sent: Sent[] = []
    const server = { ws: { clients: new Set([{}]), send: (payload: Sent) => void sent.push(payload) }, config: { logger: { error: () => {} } } }
    const tracker = createOverlayTracker(server as unknown as Parameters<typeof createOverlayTracker>[0], mode)
    return { sent, tracker, settle: () => tracker.idle() }
  }
  const view = (name: string, status: TestView['status']): TestView => ({
    file: `/p/${name}.clnrm.toml`, relative: `${name}.clnrm.toml`, name, status,
    ...(status === 'fail' && { failure: { step: 's', expectation: 'expected_exit_code = 0', message: `${name} exited with 1`, excerpt: '' } }),
    ...(status === 'invalid' && { problems: [{ code: 'CLNRM_UNKNOWN_KEY', message: `${name} has rnu`, location: { file: `/p/${name}.clnrm.toml`, line: 1, column: 1 } }] }),
  })
  const last = (sent: Sent[]): string => {
    const payload = sent.at(-1)
    return payload?.type === 'error' ? payload.err!.message.split('\n')[0]! : payload?.type ?? 'nothing'
  }

  it('shows the newest failure, another current one when it is fixed, clears when none is left, and replays to a page that connects', async () => {
    const { sent, tracker, settle } = setup(true)
    tracker.update(view('a', 'fail'))
    tracker.update(view('b', 'fail'))
    await settle()
    expect(last(sent)).toBe('b: step "s": b exited with 1')
    // The same failure again is not raised again (the user may have dismissed it).
    const count = sent.length
    tracker.update(view('b', 'fail'))
    await settle()
    expect(sent).toHaveLength(count)
    tracker.update(view('b', 'pass'))
    await settle()
    expect(last(sent)).toBe('a: step "s": a exited with 1')
    const page: Sent[] = []
    tracker.connect({ send: payload => void page.push(payload) })
    await settle()
    expect(last(page)).toBe('a: step "s": a exited with 1')
    tracker.update(view('a', 'pass'))
    await settle()
    expect(last(sent)).toBe('update')
    tracker.connect({ send: payload => void page.push(payload) })
    await settle()
    expect(page).toHaveLength(1)
  })

  it('raises invalid files only with overlay: true, and nothing with false', async () => {
    const failures = setup('failures')
    failures.tracker.update(view('c', 'invalid'))
    await failures.settle()
    expect(failures.sent).toEqual([])
    const all = setup(true)
    all.tracker.update(view('c', 'invalid'))
    await all.settle()
    expect(last(all.sent)).toBe('c.clnrm.toml: c has rnu')
    const none = setup(false)
    none.tracker.update(view('d', 'fail'))
    none.tracker.engine({ status: 'unreachable', message: 'No Docker engine is reachable' })
    await none.settle()
    expect(none.sent).toEqual([])
  })
})
