import { describe, expect, it } from 'vitest'
import { AbortedError, EngineRefusedError, EngineUnavailableError, engineMessage, MissingImageError, refusedKey, ServiceExitedError } from '../core/engine/docker.ts'
import { ResetFailedError } from '../core/engine/pool-types.ts'
import { ServiceNotReadyError } from '../core/engine/readiness.ts'
import { TestFileError } from '../core/format/diagnostics.ts'
import { ClnrmError, isClnrmError } from '../core/errors.ts'
import { OtlpReceiverError } from '../core/otel/collect.ts'

// Messages as Docker 20.10 returns them (Dockerode wraps them in `(HTTP code …) … - `).
const refusals: Array<[string, string | undefined]> = [
  ['invalid volume specification: \'/tmp:/\': invalid mount config for type "bind": invalid specification: destination can\'t be \'/\'', 'volumes'],
  ['failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "/tmp/f" to rootfs at "/etc": not a directory: unknown', 'volumes'],
  ['failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown', 'command'],
  ['driver failed programming external connectivity on endpoint x: Bind for 127.0.0.1:8080 failed: port is already allocated', 'ports'],
  ['No such image: clnrm/none:1', 'image'],
  ['Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available', 'limits'],
  ['Minimum memory limit allowed is 6MB', 'limits'],
  ['something else entirely', undefined],
]

describe('engine refusals and exits, worded for the user', () => {
  it.each(refusals)('points %s at the key to fix', (message, key) => {
    expect(refusedKey(message)).toBe(key)
  })

  it('drops Dockerode\'s HTTP wrapping and names the service and key', () => {
    const raw = Object.assign(new Error('(HTTP code 400) unexpected - invalid volume specification: \'/tmp:/\''), { statusCode: 400, json: { message: 'invalid volume specification: \'/tmp:/\'' } })
    expect(engineMessage(raw)).toBe('invalid volume specification: \'/tmp:/\'')
    const error = new EngineRefusedError('db', 'create', raw)
    expect(error).toMatchObject({ code: 'CLNRM_ENGINE_REFUSED', service: 'db', key: 'volumes' })
    expect(error.message).toBe('The engine refused to create service "db" (check its `volumes`): invalid volume specification: \'/tmp:/\'')
    expect(error.message).not.toMatch(/HTTP code/)
  })

  it('hints by exit code: 0 exits at once, 127 a missing command, else a crash', () => {
    expect(new ServiceExitedError('web', 0, '').hint).toMatch(/exits at once; keep it running/)
    expect(new ServiceExitedError('web', 127, 'sh: nope: not found').hint).toMatch(/`command`/)
    const crash = new ServiceExitedError('web', 2, 'line one\nfatal: no config')
    expect(crash.message).toBe('Service "web" stopped with exit code 2; its last output:\n  │ line one\n  │ fatal: no config')
    expect(crash.hint).toMatch(/last output/)
  })

  it('every typed error is a ClnrmError with a CLNRM_ code, a hint and no [clnrm] prefix to strip', () => {
    const errors: ClnrmError[] = [
      new EngineUnavailableError(new Error('connect ENOENT /var/run/docker.sock')),
      new MissingImageError('clnrm/none:1', new Error('no registry')),
      new EngineRefusedError('db', 'start', new Error('port is already allocated')),
      new ServiceExitedError('web', 1, 'boom'),
      new ServiceNotReadyError('web', 'did not become healthy within 1 s'),
      new ResetFailedError('db', 1, 'rm: no such file'),
      new OtlpReceiverError('the OTLP receiver could not start: EADDRINUSE'),
      new TestFileError([{ code: 'CLNRM_UNKNOWN_KEY', severity: 'error', file: 'a.clnrm.toml', line: 3, column: 1, message: 'unknown key "x"', hint: 'remove it', path: ['x'] }]),
    ]
    for (const error of errors) {
      expect(error).toBeInstanceOf(ClnrmError)
      expect(isClnrmError(error)).toBe(true)
      expect(error.code).toMatch(/^CLNRM_[A-Z_]+$/)
      expect(error.hint, error.name).toMatch(/\w/)
      expect(error.message).not.toMatch(/\[clnrm\]/)
    }
    expect(new AbortedError().code).toBe('CLNRM_ABORTED')
    expect(errors[7]!.message).toBe('a.clnrm.toml:3:1 unknown key "x"')
    expect(isClnrmError(new Error('plain'))).toBe(false)
  })
})
