import { describe, expect, it } from 'vitest'
import type { ContainerPool } from '../core/index.ts'
import { IMAGE, specFrom } from './engine.ts'
import { usePool } from './pool-fixture.ts'

/** Debian's dash as /bin/sh (scripts/build-images.sh): its `read` has no -d or -n. */
const DASH = 'clnrm-examples/dash:1'

/** `printf %b` argument that prints exactly these bytes: every byte as an octal escape. */
const escaped = (text: string): string => [...Buffer.from(text)].map(byte => `\\0${byte.toString(8).padStart(3, '0')}`).join('')

const ascii = (length: number): string => Array.from({ length }, (_, i) => String.fromCharCode(33 + (i % 90))).join('')

/**
 * Outputs around the 512 bytes the busybox shell sends with builtins (then `cat` for the rest):
 * NULs (read's delimiter) at the start, in runs, at the edge; a two-byte character across it; `%`
 * and backslashes (printf's own syntax); no final newline, several, CR LF.
 */
const CASES: Record<string, string> = {
  'one byte, no newline': 'x',
  'a line': 'hello\n',
  'NULs at the start, in a run and at the end': '\0\0a\0\0\0b\0',
  'printf syntax': '%s %d %% \\n \\0 \\\\ %b\n',
  'blank lines and CR LF': '\n\n\r\nend\r\n\n\n',
  'characters of two to four bytes': 'é 漢字 😀\n',
  '511 bytes': ascii(511),
  '512 bytes': ascii(512),
  '513 bytes': ascii(513),
  'a NUL at byte 512': `${ascii(511)}\0${ascii(20)}`,
  'a NUL at byte 511': `${ascii(510)}\0${ascii(20)}`,
  'a two-byte character across byte 512': `${ascii(511)}é${ascii(20)}`,
  '20 kB with a NUL every 100 bytes': Array.from({ length: 200 }, (_, i) => `${ascii(99)}${i % 2 ? '\0' : '\n'}`).join(''),
}

describe('a command\'s output comes back byte for byte (real engine)', () => {
  let pool: ContainerPool
  let dir: string
  usePool(made => ({ pool, dir } = made))

  for (const [image, way] of [[IMAGE, 'builtins'], [DASH, 'cat']] as const) {
    it(`in ${image}, sent with ${way}: stdout, stderr and both, for every case`, async () => {
      const spec = specFrom(dir, `bytes-${way}`, `[meta]\nname = "bytes"\n[services.box]\nimage = "${image}"\nenv = { UNIQUE = "bytes-${way}" }\n[[steps]]\nrun = "true"\n`)
      const lease = await pool.acquire(spec)
      try {
        const runner = lease.services.box!.runner
        expect(runner.sendsOutput).toBe(way)
        for (const [name, text] of Object.entries(CASES)) {
          const arg = escaped(text)
          const out = await runner.exec({ argv: ['printf', '%b', arg] })
          expect({ name, stdout: out.whole.stdout, stderr: out.whole.stderr, bytes: out.bytes.stdout, exitCode: out.exitCode })
            .toEqual({ name, stdout: text, stderr: '', bytes: Buffer.byteLength(text), exitCode: 0 })
          const err = await runner.exec({ argv: ['sh', '-c', 'printf %b "$1" >&2; exit 3', 'sh', arg] })
          expect({ name, stdout: err.whole.stdout, stderr: err.whole.stderr, exitCode: err.exitCode }).toEqual({ name, stdout: '', stderr: text, exitCode: 3 })
          const both = await runner.exec({ argv: ['sh', '-c', 'printf %b "$1"; printf %b "$1" >&2', 'sh', arg] })
          expect({ name, stdout: both.whole.stdout, stderr: both.whole.stderr }).toEqual({ name, stdout: text, stderr: text })
        }
        // Nothing at all: only the exit code comes back.
        const none = await runner.exec({ argv: ['sh', '-c', 'exit 7'] })
        expect({ stdout: none.whole.stdout, stderr: none.whole.stderr, exitCode: none.exitCode }).toEqual({ stdout: '', stderr: '', exitCode: 7 })
        expect(runner.alive).toBe(true)
      }
      finally {
        await lease.release()
      }
    })
  }
})
