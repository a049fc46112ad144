import { ClnrmError } from '../../errors.ts'
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { EngineContainer } from '../adapter.ts'
import { createDemuxer } from './demux.ts'
import { execOnce } from './engine-exec.ts'
import { MarkerScanner } from './marker-scanner.ts'
import { ENV_NAME_RE, shellQuote } from './quote.ts'
import type { CommandRunner, ExecRequest, ExecResult } from './types.ts'
import { execResult, OutputCapture, RUN_ENV } from './types.ts'

/** How long the shell gets to answer its handshake before we decide the image has none. */
const HANDSHAKE_TIMEOUT_MS = 5000
/** After a kill, how long the markers get to arrive before the runner is declared dead. */
const KILL_GRACE_MS = 3000

interface Pending {
  nonce: string
  out: MarkerScanner
  err: MarkerScanner
  exitCode?: number
  ended: boolean
  pid?: number
  settle: () => void
  fail: (error: Error) => void
}

/**
 * Runs commands through one long-lived `sh` inside the container, attached over the Docker API.
 * A command costs a write and a read instead of a `docker exec` (about 2 ms instead of tens).
 * Each command runs in a background subshell with stdin from /dev/null, in its own session
 * (`setsid`, when the image has it) so a timeout can kill its whole process group, and with
 * output files of its own, so what it leaves running cannot write into a later command's output.
 *
 * Returns `undefined` when the image has no `sh`.
 */
export async function startShellRunner(container: EngineContainer): Promise<CommandRunner | undefined> {
  // The shell is busy waiting for the step, so a kill comes from a second, short exec.
  const kill = (pid: number): Promise<unknown> => execOnce(container, ['sh', '-c', `kill -9 -${pid} 2>/dev/null || kill -9 ${pid}`])
  // With output files the shell itself kills: the kill writes the command's number to `<ioDir>/kq`
  // and signals the shell (SIGUSR1), whose trap (`__clnrm_ku`) kills that command if it runs, or
  // remembers the kill if it has not started yet (applied as it starts). The shell knows each
  // command's pid and group without writing them anywhere (a write per command on the container's
  // overlay filesystem). The number is not the marker nonce: the file is readable by steps, and a
  // nonce would let a step forge its exit.
  const killCommand = (ioDir: string, shellPid: number, command: number): Promise<unknown> => execOnce(container, ['sh', '-c',
    `echo ${command} >${ioDir}/kq && kill -USR1 ${shellPid}`])
  let stream: Duplex
  try {
    const exec = await container.exec({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false })
    stream = await exec.start({ stdin: true })
  }
  catch {
    return undefined
  }

  let alive = true
  let current: Pending | undefined
  let handshake: ((text: string) => void) | undefined
  let handshakeText = ''

  const die = (reason: string): void => {
    if (!alive) return
    alive = false
    current?.fail(new ClnrmError('CLNRM_SHELL_GONE', `the container's shell went away: ${reason}`, {
      hint: 'A test\'s first step runs in the clnrm shell\'s process group: a step that sends SIGKILL to its whole group (`kill -9 0`) ends the shell too. Kill the processes the step started instead (`kill -9 $(jobs -p)`), or run them under `setsid`.',
    }))
    stream.destroy()
  }
  stream.on('data', createDemuxer((which, chunk) => {
    if (handshake) {
      handshakeText += chunk.toString('latin1')
      handshake(handshakeText)
      return
    }
    if (!current) return
    if (which === 'stdout') current.out.feed(chunk)
    else current.err.feed(chunk)
  }))
  stream.on('end', () => die('stream ended'))
  stream.on('close', () => die('stream closed'))
  stream.on('error', error => die(error.message))

  const ready = await new Promise<Handshake | undefined>((resolve) => {
    // Cleared on every path: a pending timer would keep the process alive for its 5 s.
    const timer = setTimeout(() => settle(undefined), HANDSHAKE_TIMEOUT_MS)
    const settle = (value: Handshake | undefined): void => {
      clearTimeout(timer)
      handshake = undefined
      resolve(value)
    }
    handshake = (text) => {
      const match = /@@clnrm:ready:(\d+):(\d):(\d):(\d):([^:]*):\n/.exec(text)
      if (match) {
        const io = match[3] === '1'
        settle({ pid: Number(match[1]), hasSetsid: match[2] === '1', ioDir: io ? ioDirOf(Number(match[1])) : undefined, readsBytes: io && match[4] === '1' && match[5] === '\0' })
      }
    }
    stream.once('close', () => settle(undefined))
    stream.once('end', () => settle(undefined))
    stream.once('error', () => settle(undefined))
    stream.write(HANDSHAKE_SCRIPT)
  })
  if (!ready || !alive) {
    die('no shell')
    return undefined
  }

  // Every process a run's commands start carries this token in its environment, whatever
  // session or group it moves to, so the end of the run can find and kill them all.
  let runToken = newToken()
  // Each command of a run writes to files of its own, `<ioDir>/<n>.{o,e,s}`, n counting the
  // run's commands. Creating a file on the container's overlay filesystem costs about 1 ms,
  // opening an existing one almost nothing, so the files are kept and reused by later runs:
  // safe, since the end of a run kills every process that could still hold one open.
  let fileIndex = 0
  let filesAhead = false
  // Numbers every command of this shell, for kills (see `killCommand`); never reset.
  let commands = 0
  // Commands since the end of the last run (or the shell's start): the first runs in the shell's
  // own process group, later ones in sessions of their own (see `commandScript`).
  let sinceEnd = 0
  let queue: Promise<unknown> = Promise.resolve()
  /** `leavesNothing`: clnrm's own command (a mkdir, a `true`), not counted as a run's command. */
  const run = (request: ExecRequest, after?: () => string, leavesNothing = false): Promise<ExecResult> => {
    const result = queue.then(() => runOne(request, after, leavesNothing))
    queue = result.catch(() => {})
    return result
  }
  /**
   * A script for the shell itself that expects no answer (see `endRun`): it prints nothing when it
   * succeeds, and makes the shell exit when it fails, so no later command runs after a failed one.
   * It goes out in the same write as the next command (the next test's first step usually follows
   * within the same turn of the event loop), or on its own at the next turn. Resolves once written.
   */
  let unsent = ''
  const written: Array<() => void> = []
  const send = (script: string): Promise<void> => new Promise<void>((resolve) => {
    unsent += script
    written.push(resolve)
    setImmediate(flush)
  })
  /** Writes what `send` left, before `script` (a command) if any. */
  const flush = (script = ''): void => {
    if (!unsent && !script) return
    if (alive) stream.write(unsent + script)
    unsent = ''
    for (const resolve of written.splice(0)) resolve()
  }

  const runOne = (request: ExecRequest, after: (() => string) | undefined, leavesNothing: boolean): Promise<ExecResult> => new Promise<ExecResult>((resolve, reject) => {
    if (!alive) return reject(new ClnrmError('CLNRM_SHELL_GONE', 'the container\'s shell is gone'))
    const start = performance.now()
    if (request.signal?.aborted) {
      // Cancelled while queued: nothing is started.
      return resolve(execResult(new OutputCapture(), new OutputCapture(), { exitCode: 137, startedAt: start, timedOut: false, aborted: true }))
    }
    const nonce = newToken()
    const stdout = new OutputCapture()
    const stderr = new OutputCapture()
    let timedOut = false
    let aborted = false
    let killTimer: ReturnType<typeof setTimeout> | undefined
    let killRequested = false
    let afterSep = false
    let graceTimer: ReturnType<typeof setTimeout> | undefined

    const finish = (): void => {
      clearTimeout(killTimer)
      clearTimeout(graceTimer)
      request.signal?.removeEventListener('abort', onAbort)
      current = undefined
    }
    const files = ready.ioDir ? `${ready.ioDir}/${fileIndex++}` : undefined
    const command = ++commands
    const onToken = (token: string): void => {
      if (token === 'sep') afterSep = true
      else if (token.startsWith('exit:')) pending.exitCode = Number(token.slice(5))
      else if (token.startsWith('pid:')) {
        pending.pid = Number(token.slice(4))
        // A kill asked for before the pid was known is applied now, not lost.
        if (killRequested) kill(pending.pid).catch(() => {})
      }
      else if (token === 'end') pending.ended = true
      pending.settle()
    }
    const pending: Pending = {
      nonce,
      // With output files every marker comes on stdout, in order: the shell's stderr carries
      // nothing of the command, so no end marker needs to close it.
      ended: files !== undefined,
      // With output files, both files come back on stdout in one `cat`, split by a `sep` marker.
      out: new MarkerScanner(nonce, chunk => (afterSep ? stderr : stdout).push(chunk), onToken),
      err: new MarkerScanner(nonce, chunk => stderr.push(chunk), onToken),
      settle: () => {
        if (pending.exitCode === undefined || !pending.ended) return
        finish()
        resolve(execResult(stdout, stderr, { exitCode: pending.exitCode, startedAt: start, timedOut, aborted }))
      },
      fail: (error) => {
        finish()
        reject(error)
      },
    }
    current = pending

    const stop = (): void => {
      if (killRequested) return
      killRequested = true
      const pid = pending.pid
      if (files) killCommand(ready.ioDir!, ready.pid, command).catch(() => {})
      else if (pid !== undefined) kill(pid).catch(() => {})
      // If the shell cannot report back, it is unusable: the pool will replace it.
      graceTimer = setTimeout(() => die('a killed command did not end'), KILL_GRACE_MS)
    }
    const onAbort = (): void => {
      aborted = true
      stop()
    }
    request.signal?.addEventListener('abort', onAbort, { once: true })
    if (request.timeoutMs !== undefined) {
      killTimer = setTimeout(() => {
        timedOut = true
        stop()
      }, request.timeoutMs)
    }
    flush(commandScript(nonce, request, { setsid: ready.hasSetsid, files, command, first: sinceEnd === 0, readsBytes: ready.readsBytes, runToken }))
    if (!leavesNothing) sinceEnd++
    // Runs after the command's end marker: off the path of its result.
    if (after) stream.write(after())
  })

  return {
    kind: 'shell',
    sendsOutput: !ready.ioDir ? 'streams' : ready.readsBytes ? 'builtins' : 'cat',
    get alive() {
      return alive
    },
    exec: request => run(request),
    pipelinesEnd: true,
    async endRun(workdir) {
      const ended = runToken
      runToken = newToken()
      const io = ready.ioDir
      const used = fileIndex
      fileIndex = 0
      sinceEnd = 0
      const dir = shellQuote(workdir)
      // In the shell itself, with builtins (see END_FUNCTIONS): a run that left nothing running
      // and an empty workdir costs no fork; only what it left behind costs a grep or an rm. The
      // next run gets the same path, emptied. Written without waiting for an answer (the next
      // command queues behind it in the shell, usually in the same write); a failure makes the
      // shell exit, so no later command runs in an unclean container (the pool replaces it).
      // The run's step groups were collected by the shell itself, in `__clnrm_G`.
      await send(`{ __clnrm_end ${ended} "$__clnrm_G"; __clnrm_G=; `
        + `if [ -d ${dir} ] && [ ! -L ${dir} ] && ! __clnrm_full ${dir}; then :; else rm -rf ${dir} && mkdir -p ${dir} || exit 97; fi; } >/dev/null 2>&1\n`
        // Empties the run's output files, so the next run's commands append to empty files and
        // no later test can read this one's output.
        + (io ? emptyFiles(io, used) : ''))
      return { exitCode: 0, workdir }
    },
    async drain() {
      // A command of its own: its answer comes after everything written before it has run.
      const result = await run({ argv: ['true'], timeoutMs: 10_000 }, undefined, true)
      if (result.exitCode !== 0) throw new ClnrmError('CLNRM_SHELL_GONE', `the container's shell did not finish its work (exit ${result.exitCode})`)
    },
    async prepareWorkdir(dir) {
      // The first run's files are made after this first command, not before it.
      const io = ready.ioDir
      const after = io && !filesAhead
        ? () => {
            filesAhead = true
            return touchFiles(io, 0, FILES_AHEAD)
          }
        : undefined
      const result = await run({ argv: ['mkdir', '-p', dir], timeoutMs: 10_000 }, after, true)
      if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `mkdir exited ${result.exitCode}`)
    },
    close: () => die('closed'),
  }
}

interface Handshake {
  pid: number
  hasSetsid: boolean
  /** Where each command's output files go; absent when the image cannot hold them. */
  ioDir?: string
  /**
   * The shell's `read -r -n N -d ''` reads bytes exactly (NULs as delimiters, no locale), and
   * its `printf` writes NULs: small outputs are sent back with builtins (`__clnrm_put`), no `cat`.
   */
  readsBytes: boolean
}

// Tokens are random (a step cannot guess its markers); drawn from a buffer refilled now and then,
// not one `randomBytes` call each.
let tokenBytes: Buffer = Buffer.alloc(0)
let tokenAt = 0
const newToken = (): string => {
  if (tokenAt + 6 > tokenBytes.length) {
    tokenBytes = randomBytes(6 * 256)
    tokenAt = 0
  }
  return tokenBytes.toString('hex', tokenAt, tokenAt += 6)
}
const ioDirOf = (shellPid: number): string => `/tmp/.clnrm-io-${shellPid}`

/**
 * Up to how many bytes of a command's output the shell sends back with builtins (`read`, one
 * system call per byte) before handing the rest to `cat` (a fork and an exec, about 0.7 ms in
 * busybox, more with a dynamically linked cat): about where the two cost the same.
 */
const PUT_BUILTIN_BYTES = 512

/**
 * Shell functions for the end of a run, defined once per shell; builtins only on the common path.
 *
 * `__clnrm_end TOKEN 'GROUPS'` kills what a run left running: the process groups of its steps
 * (`GROUPS`, their leaders' pids), then, over `/proc`, every process in the shell's own group or
 * in a step's session, and every other process whose environment carries the run's token
 * (`grep`, the one fork, paid only for processes the shell has not seen before). Processes found
 * without the token (the service's own, a concurrent `docker exec`) are remembered by pid in
 * `__clnrm_k` and not looked at again while they live; a pid that has gone is forgotten at once,
 * so a reused pid is looked at afresh (a known pid could only be taken over by a run's process if
 * its owner ended and the kernel handed the same pid out again within one run). The scan repeats
 * until a pass kills nothing (a process forking while it is killed), at most 8 times.
 *
 * `__clnrm_ku` is the shell's SIGUSR1 trap, the kill of a command (see `killCommand`); its
 * variables are its own (`__clnrm_K*`): it runs between any two commands of the shell's. It
 * kills the command named in `kq` if that is the one running (`__clnrm_kc`; in the shell's group,
 * `__clnrm_kg` kills every process in it but the shell, until none is left), remembers it in
 * `__clnrm_KP` if it has not started yet (checked as each command starts), and ignores it if it ended.
 *
 * `__clnrm_full DIR` succeeds when DIR has any entry, dot files included: two directory reads
 * (`.*` and `*`), whether or not the shell's `.*` lists `.` and `..`.
 */
const END_FUNCTIONS = '__clnrm_k=; for __clnrm_f in /proc/[0-9]*; do __clnrm_k="$__clnrm_k ${__clnrm_f#/proc/}"; done\n'
  + `__clnrm_end() {
__clnrm_r=$1; __clnrm_g=$2
for __clnrm_q in $__clnrm_g; do kill -9 -$__clnrm_q 2>/dev/null; done
__clnrm_i=0
while :; do
__clnrm_n=0; __clnrm_u=; __clnrm_v=
for __clnrm_f in /proc/[0-9]*; do
__clnrm_q=\${__clnrm_f#/proc/}
case " $$ $__clnrm_k " in *" $__clnrm_q "*) __clnrm_v="$__clnrm_v $__clnrm_q"; continue ;; esac
{ read -r __clnrm_t <"$__clnrm_f/stat"; } 2>/dev/null || continue
set -- \${__clnrm_t##*) }
case "$1" in Z|X|x) continue ;; esac
if [ "$3" = $$ ] || case " $$ $__clnrm_g " in *" $4 "*) true ;; *) false ;; esac; then kill -9 "$__clnrm_q" 2>/dev/null; __clnrm_n=1
else __clnrm_u="$__clnrm_u $__clnrm_q"; fi
done
__clnrm_k=$__clnrm_v
for __clnrm_q in $__clnrm_u; do
if grep -qsxFz "${RUN_ENV}=$__clnrm_r" "/proc/$__clnrm_q/environ"; then kill -9 "$__clnrm_q" 2>/dev/null; __clnrm_n=1; else __clnrm_k="$__clnrm_k $__clnrm_q"; fi
done
__clnrm_i=$((__clnrm_i+1))
if [ $__clnrm_n = 0 ] || [ $__clnrm_i -ge 8 ]; then break; fi
done
}
__clnrm_ku() {
{ read -r __clnrm_Kt <"$__clnrm_d/kq"; } 2>/dev/null || return 0
if [ "$__clnrm_Kt" = "$__clnrm_C" ]; then __clnrm_kc
elif [ "$__clnrm_Kt" -gt "\${__clnrm_L:-0}" ] 2>/dev/null; then __clnrm_KP=$__clnrm_Kt
fi
}
__clnrm_kc() {
case $__clnrm_O in g) kill -9 -$__clnrm_p 2>/dev/null || kill -9 $__clnrm_p 2>/dev/null ;; p) kill -9 $__clnrm_p 2>/dev/null ;; *) __clnrm_kg ;; esac
}
__clnrm_kg() {
__clnrm_Ki=0
while :; do
__clnrm_Kn=0
for __clnrm_Kf in /proc/[0-9]*; do
[ "\${__clnrm_Kf#/proc/}" = $$ ] && continue
{ read -r __clnrm_Ks <"$__clnrm_Kf/stat"; } 2>/dev/null || continue
set -- \${__clnrm_Ks##*) }
case "$1" in Z|X|x) continue ;; esac
if [ "$3" = $$ ]; then kill -9 "\${__clnrm_Kf#/proc/}" 2>/dev/null; __clnrm_Kn=1; fi
done
__clnrm_Ki=$((__clnrm_Ki+1))
if [ $__clnrm_Kn = 0 ] || [ $__clnrm_Ki -ge 8 ]; then break; fi
done
}
__clnrm_full() { for __clnrm_f in "$1"/.* "$1"/*; do case \${__clnrm_f##*/} in .|..) continue ;; esac; if [ -e "$__clnrm_f" ] || [ -L "$__clnrm_f" ]; then return 0; fi; done; return 1; }
__clnrm_put() {
__clnrm_n=${PUT_BUILTIN_BYTES}
while IFS= read -r -n $__clnrm_n -d '' __clnrm_x; do
if [ \${#__clnrm_x} -ge $__clnrm_n ]; then printf %s "$__clnrm_x"; cat; printf '\\n@@clnrm:%s:%s\\n' "$1" "$2"; return; fi
printf '%s\\0' "$__clnrm_x"
__clnrm_n=$((__clnrm_n-\${#__clnrm_x}-1))
if [ $__clnrm_n -le 0 ]; then cat; printf '\\n@@clnrm:%s:%s\\n' "$1" "$2"; return; fi
done
printf '%s\\n@@clnrm:%s:%s\\n' "$__clnrm_x" "$1" "$2"
}
`

// Probes setsid, makes the directory for per-command output files (needs /tmp and cat), and
// probes whether `read` reads that directory's files byte for byte: a NUL ends a read, and a
// two-byte UTF-8 character counts as two (`-n 2` stops before the `b`), whatever the locale.
// The ready line ends with a NUL from `printf`, checked on our side.
// Traps: the signals a step's `kill 0` or `kill $PPID` sends would end the shell; caught (not
// ignored, which commands would inherit), they are reset for every command it starts. Each
// notes that it ran (`__clnrm_T`, see WAIT).
const HANDSHAKE_SCRIPT = 'trap __clnrm_T=1 HUP INT QUIT TERM USR2 ALRM; trap "__clnrm_T=1; __clnrm_ku" USR1; '
  + 'if command -v setsid >/dev/null 2>&1; then __clnrm_s=1; else __clnrm_s=0; fi; '
  + '__clnrm_d=/tmp/.clnrm-io-$$; __clnrm_rd=0; if command -v cat >/dev/null 2>&1 && mkdir -p "$__clnrm_d" 2>/dev/null && : >"$__clnrm_d/.probe" 2>/dev/null; then __clnrm_io=1; '
  // Files a former shell of the same pid left (a restarted container keeps its /tmp) are emptied:
  // commands append to their output files.
  + 'for __clnrm_f in "$__clnrm_d"/*; do [ -f "$__clnrm_f" ] && : >"$__clnrm_f"; done; '
  + 'printf \'a\\000\\303\\251b\\n\' >"$__clnrm_d/.probe"; '
  + '{ IFS= read -r -n 8 -d \'\' __clnrm_x && [ "$__clnrm_x" = a ] && IFS= read -r -n 2 -d \'\' __clnrm_x && [ ${#__clnrm_x} = 2 ] && { IFS= read -r -n 8 -d \'\' __clnrm_x; [ "$__clnrm_x" = "b\n" ]; } && __clnrm_rd=1; } <"$__clnrm_d/.probe" 2>/dev/null; '
  + 'else __clnrm_io=0; fi; __clnrm_G=; '
  + 'printf \'@@clnrm:ready:%s:%s:%s:%s:\\000:\\n\' $$ $__clnrm_s $__clnrm_io $__clnrm_rd\n'
  + END_FUNCTIONS

/**
 * Waits for the command: `wait` with stderr to /dev/null (the shell's own "Killed" notice is
 * nobody's output), and again while a trap ran (`__clnrm_T`, cleared before the command
 * started) and the status looks like a signal: a trapped signal cuts `wait` short with 128 plus
 * its number. A second `wait` answers 127 for a pid the first one already collected, and then
 * the first status was the command's own. (So a command that exits 127 just after a trap cut the
 * wait short is reported with the signal's status instead: a trap runs on a kill, or on a signal
 * a step sent to the shell's group, which ends the step too.)
 */
const WAIT = 'wait "$__clnrm_p" 2>/dev/null; __clnrm_c=$?; while [ -n "$__clnrm_T" ] && [ $__clnrm_c -gt 128 ]; do __clnrm_T=; wait "$__clnrm_p" 2>/dev/null; __clnrm_w=$?; [ $__clnrm_w = 127 ] || __clnrm_c=$__clnrm_w; done; '

/** How many commands' output files a new shell makes ahead (most runs have a few steps). */
const FILES_AHEAD = 4

/** A line that creates the output files `from` to `to - 1`, empty, with shell builtins. */
function touchFiles(ioDir: string, from: number, to: number): string {
  return `__clnrm_i=${from}; while [ $__clnrm_i -lt ${to} ]; do : >${ioDir}/$__clnrm_i.o; : >${ioDir}/$__clnrm_i.e; : >${ioDir}/$__clnrm_i.s; __clnrm_i=$((__clnrm_i+1)); done\n`
}

/**
 * A line that empties the output files a run used, `0` to `used - 1`, with shell builtins: only
 * those that hold something (a truncate is a metadata write on the overlay filesystem, even of an
 * empty file). Commands append to their files (`>>`), so each must be empty when handed out.
 */
function emptyFiles(ioDir: string, used: number): string {
  if (used === 1) return `[ -s ${ioDir}/0.o ] && : >${ioDir}/0.o; [ -s ${ioDir}/0.e ] && : >${ioDir}/0.e; :\n`
  return `__clnrm_i=0; while [ $__clnrm_i -lt ${used} ]; do for __clnrm_f in ${ioDir}/$__clnrm_i.o ${ioDir}/$__clnrm_i.e; do [ -s $__clnrm_f ] && : >$__clnrm_f; done; __clnrm_i=$((__clnrm_i+1)); done; :\n`
}

/**
 * The line written to the shell for one command. The command runs in a background subshell
 * (its own session with setsid) whose stdout and stderr are files of its own: a process it
 * leaves behind may keep writing, but only into this command's files, never into a later
 * command's output. After `wait`, the files are sent back between markers. Without such
 * files (no writable /tmp, no cat) the command writes to the shell's own streams.
 *
 * With files, everything comes back on stdout, in order, and the step's pid stays with the shell
 * (its kill trap uses it) instead of coming back as a marker: a command whose stderr is empty, the common case, costs
 * one frame, its output and exit marker written together (`__clnrm_put`, when the shell reads
 * bytes exactly) or a `cat` and a marker. The shell collects the steps' groups in `__clnrm_G`.
 */
function commandScript(nonce: string, request: ExecRequest, options: { setsid: boolean; files?: string; command: number; first: boolean; readsBytes: boolean; runToken: string }): string {
  const parts: string[] = []
  if (request.workdir) parts.push(`cd ${shellQuote(request.workdir)} || exit 125;`)
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (ENV_NAME_RE.test(name)) parts.push(`export ${name}=${shellQuote(value)};`)
  }
  parts.push(`export ${RUN_ENV}=${options.runToken};`)
  const argv = request.argv.map(shellQuote).join(' ')
  const marker = (token: string): string => `printf '\\n@@clnrm:${nonce}:${token}\\n'`
  const { files } = options
  if (!files) {
    // No files, so no kills by the shell's trap: every command in a session of its own, its pid sent back.
    const start = `__clnrm_T=; ( ${parts.join(' ')} exec ${options.setsid ? 'setsid ' : ''}${argv} ) </dev/null & __clnrm_p=$!; `
      + (options.setsid ? '__clnrm_G="$__clnrm_G $__clnrm_p"; ' : '')
    return `${start}${marker('pid:%s')} "$__clnrm_p" >&2; ${WAIT}${marker('exit:%s')} "$__clnrm_c"; ${marker('end')} >&2\n`
  }
  // The first command after the end of a run runs in the shell's own process group: nothing else
  // is in it then (the end of the run killed it all), so the group is the command's, as a session
  // of its own would be, without `setsid`'s exec (about 0.4 ms of a test's 2.5 ms of CPU). The
  // shell survives what a `kill 0` sends (see HANDSHAKE_SCRIPT), and the kill trap kills the
  // group but the shell. Later commands get a session of their own: a `kill 0` of theirs must
  // spare what earlier steps left running. `__clnrm_O` tells the kill trap which way: `s`, the
  // shell's group; `g`, the command's own group; `p`, its pid alone (an image without setsid).
  // `__clnrm_C` is the command running (cleared once it ended), `__clnrm_L` the last one started,
  // `__clnrm_KP` a kill asked for before its command started.
  const own = options.first ? 's' : options.setsid ? 'g' : 'p'
  // `>>`: the files are empty (see `emptyFiles`), and appending spares a truncate per file.
  const start = `__clnrm_T=; ( ${parts.join(' ')} exec ${own === 'g' ? 'setsid ' : ''}${argv} ) </dev/null >>${files}.o 2>>${files}.e & __clnrm_p=$!; `
    + (own === 'g' ? '__clnrm_G="$__clnrm_G $__clnrm_p"; ' : '')
    // In this order: a kill trap between any two of these finds the command running or pending.
    + `__clnrm_O=${own}; __clnrm_C=${options.command}; __clnrm_L=${options.command}; [ "$__clnrm_KP" = ${options.command} ] && __clnrm_kc; `
  const send = options.readsBytes
    ? `if [ -s ${files}.e ]; then __clnrm_put ${nonce} sep <${files}.o; __clnrm_put ${nonce} "exit:$__clnrm_c" <${files}.e; `
      + `elif [ -s ${files}.o ]; then __clnrm_put ${nonce} "exit:$__clnrm_c" <${files}.o; else ${marker('exit:%s')} "$__clnrm_c"; fi\n`
    // The existing separator file is rewritten (no fork) and one `cat` sends both files back.
    : `if [ -s ${files}.e ]; then ${marker('sep')} >${files}.s; cat ${files}.o ${files}.s ${files}.e; elif [ -s ${files}.o ]; then cat ${files}.o; fi; ${marker('exit:%s')} "$__clnrm_c"\n`
  return `${start}${WAIT}__clnrm_C=; ${send}`
}
