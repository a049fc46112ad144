import { describe, expect, it } from 'vitest'
import { EngineRefusedError, engineMessage, refusedKey, ServiceExitedError } from '../core/engine/docker.ts'

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
    expect(error.message).toBe('[clnrm] The engine refused to create service "db" (check its `volumes`): invalid volume specification: \'/tmp:/\'')
    expect(error.message).not.toMatch(/HTTP code/)
  })

  it('hints by exit code: 0 exits at once, 127 a missing command, else a crash', () => {
    expect(new ServiceExitedError('web', 0, '').hint).toMatch(/exits at once; keep it running/)
    expect(new ServiceExitedError('web', 127, 'sh: nope: not found').hint).toMatch(/`command`/)
    const crash = new ServiceExitedError('web', 2, 'line one\nfatal: no config')
    expect(crash.message).toBe('[clnrm] Service "web" stopped with exit code 2; its last output:\n  │ line one\n  │ fatal: no config')
    expect(crash.hint).toMatch(/last output/)
  })
})
