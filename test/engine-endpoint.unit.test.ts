import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { clientOptions, engineCandidates, parseProperties } from '../core/engine/endpoint.ts'
import type { EngineEnvironment } from '../core/engine/endpoint.ts'

// The engine's places in the order clnrm tries them, from a temp HOME with real files. Only files
// under the temp dir count as existing, so the machine's own /var/run/docker.sock stays out of it.
describe('engineCandidates: where clnrm looks for the engine, in order', () => {
  let home: string
  let env: Record<string, string | undefined>
  const e = (): EngineEnvironment => ({ env, home, platform: 'linux', uid: 4242 })
  const inHome = (path: string): boolean => path.startsWith(home) && existsSync(path)
  const touch = (...parts: string[]): string => {
    const path = join(home, ...parts)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, '')
    return path
  }
  const context = (name: string, host: string, configDir = join(home, '.docker')): void => {
    const dir = join(configDir, 'contexts', 'meta', createHash('sha256').update(name).digest('hex'))
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }))
  }
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'clnrm-endpoint-'))
    env = {}
  })
  afterEach(() => rmSync(home, { recursive: true, force: true }))

  it('nothing configured and no socket: no candidate (testcontainers is asked then)', () => {
    expect(engineCandidates(e(), inHome)).toEqual([])
  })

  it('DOCKER_HOST alone when set, whatever else is configured', () => {
    touch('.docker', 'run', 'docker.sock')
    writeFileSync(join(home, '.testcontainers.properties'), 'docker.host=tcp://10.0.0.1:2375\n')
    env.DOCKER_HOST = 'tcp://127.0.0.1:23750'
    expect(engineCandidates(e(), inHome)).toEqual([{ via: 'DOCKER_HOST', endpoint: 'tcp://127.0.0.1:23750' }])
  })

  it('tc.host, then docker.host of ~/.testcontainers.properties, then the docker context, then the sockets (testcontainers\' sockets before Podman, Colima, Rancher)', () => {
    env.XDG_RUNTIME_DIR = join(home, 'xdg')
    const podman = touch('xdg', 'podman', 'podman.sock')
    const colima = touch('.colima', 'default', 'docker.sock')
    const rootless = touch('xdg', 'docker.sock')
    const desktop = touch('.docker', 'run', 'docker.sock')
    const properties = join(home, '.testcontainers.properties')
    writeFileSync(properties, '# testcontainers\ntc.host = tcp://127.0.0.1:9999\ndocker.host=unix\\:///tmp/other.sock\n')
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: {}, currentContext: 'colima' }))
    context('colima', `unix://${colima}`)
    expect(engineCandidates(e(), inHome).map(c => [c.via, c.endpoint])).toEqual([
      ['tc.host', 'tcp://127.0.0.1:9999'],
      ['docker.host', 'unix:///tmp/other.sock'],
      ['docker context', `unix://${colima}`],
      // The context's socket is not listed twice.
      ['socket', `unix://${rootless}`],
      ['socket', `unix://${desktop}`],
      ['socket', `unix://${podman}`],
    ])
    const [tc, dh, ctx, ...sockets] = engineCandidates(e(), inHome)
    expect(tc!.from).toBe(properties)
    expect(dh!.from).toBe(properties)
    expect(ctx!.from).toMatch(/^context "colima" \(.*meta\.json\)$/)
    expect(sockets.map(s => s.from)).toEqual(['rootless Docker ($XDG_RUNTIME_DIR)', 'Docker Desktop', 'rootless Podman'])
  })

  it('DOCKER_CONTEXT over config.json\'s currentContext; DOCKER_CONFIG moves the config; the default context is no candidate', () => {
    mkdirSync(join(home, '.docker'))
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ currentContext: 'default' }))
    context('remote', 'tcp://192.0.2.1:2376')
    expect(engineCandidates(e(), inHome)).toEqual([])
    env.DOCKER_CONTEXT = 'remote'
    expect(engineCandidates(e(), inHome).map(c => c.endpoint)).toEqual(['tcp://192.0.2.1:2376'])
    const config = join(home, 'elsewhere')
    mkdirSync(config)
    writeFileSync(join(config, 'config.json'), JSON.stringify({ currentContext: 'ci' }))
    context('ci', 'unix:///run/ci.sock', config)
    env = { DOCKER_CONFIG: config }
    expect(engineCandidates(e(), inHome).map(c => [c.via, c.endpoint])).toEqual([['docker context', 'unix:///run/ci.sock']])
    // A context named in config.json without its meta file: skipped, as a broken config should not stop discovery.
    writeFileSync(join(config, 'config.json'), JSON.stringify({ currentContext: 'gone' }))
    expect(engineCandidates(e(), inHome)).toEqual([])
  })

  it('docker.host with TLS: docker.tls.verify and docker.cert.path, overridden by DOCKER_TLS_VERIFY and DOCKER_CERT_PATH', () => {
    const certs = join(home, 'certs')
    mkdirSync(certs)
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), f)
    writeFileSync(join(home, '.testcontainers.properties'), `docker.host=tcp://192.0.2.7:2376\ndocker.tls.verify=1\ndocker.cert.path=${certs}\n`)
    const [tls] = engineCandidates(e(), inHome)
    expect(tls).toMatchObject({ via: 'docker.host', endpoint: 'tcp://192.0.2.7:2376', tls: { certPath: certs } })
    expect(clientOptions(tls!, {})).toEqual({ kind: 'http', endpoint: { host: '192.0.2.7', port: '2376', protocol: 'https', ca: Buffer.from('ca.pem'), cert: Buffer.from('cert.pem'), key: Buffer.from('key.pem') } })
    env.DOCKER_TLS_VERIFY = '0'
    const [plain] = engineCandidates(e(), inHome)
    expect(plain!.tls).toBeUndefined()
    expect(clientOptions(plain!, {})).toEqual({ kind: 'http', endpoint: { host: '192.0.2.7', port: '2376', protocol: 'http' } })
  })

  it('DOCKER_HOST as docker-modem reads it: TLS by DOCKER_TLS_VERIFY or port 2376, certificates from DOCKER_CERT_PATH, DOCKER_PATH_PREFIX and DOCKER_CLIENT_TIMEOUT', () => {
    const certs = join(home, 'certs')
    mkdirSync(certs)
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), f)
    const options = (vars: Record<string, string>): unknown => {
      env = vars
      const [candidate] = engineCandidates(e(), inHome)
      return clientOptions(candidate!, vars)
    }
    expect(options({ DOCKER_HOST: 'tcp://127.0.0.1:23750' })).toEqual({ kind: 'http', endpoint: { host: '127.0.0.1', port: '23750', protocol: 'http' } })
    expect(options({ DOCKER_HOST: '127.0.0.1:23750' })).toEqual({ kind: 'http', endpoint: { host: '127.0.0.1', port: '23750', protocol: 'http' } })
    expect(options({ DOCKER_HOST: 'tcp://engine:2376' })).toEqual({ kind: 'http', endpoint: { host: 'engine', port: '2376', protocol: 'https' } })
    expect(options({ DOCKER_HOST: 'tcp://engine:4000', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs, DOCKER_PATH_PREFIX: '/docker', DOCKER_CLIENT_TIMEOUT: '5000' }))
      .toEqual({ kind: 'http', endpoint: { host: 'engine', port: '4000', protocol: 'https', ca: Buffer.from('ca.pem'), cert: Buffer.from('cert.pem'), key: Buffer.from('key.pem'), pathPrefix: '/docker', timeoutMs: 5000 } })
    // Certificates without TLS asked for: plain HTTP, as docker-modem does.
    expect(options({ DOCKER_HOST: 'tcp://engine:2375', DOCKER_CERT_PATH: certs })).toEqual({ kind: 'http', endpoint: { host: 'engine', port: '2375', protocol: 'http' } })
    expect(options({ DOCKER_HOST: 'unix:///run/engine.sock' })).toEqual({ kind: 'http', endpoint: { socketPath: '/run/engine.sock', protocol: 'http' } })
    expect(options({ DOCKER_HOST: 'ssh://me@box' })).toEqual({ kind: 'ssh', host: 'box', username: 'me' })
  })

  it('client options per endpoint kind', () => {
    expect(clientOptions({ via: 'socket', endpoint: 'unix:///var/run/docker.sock' }, {})).toEqual({ kind: 'http', endpoint: { socketPath: '/var/run/docker.sock', protocol: 'http' } })
    expect(clientOptions({ via: 'tc.host', endpoint: 'tcp://127.0.0.1:41234' }, {})).toEqual({ kind: 'http', endpoint: { host: '127.0.0.1', port: '41234', protocol: 'http' } })
    expect(clientOptions({ via: 'docker context', endpoint: 'ssh://me@build-box:2222' }, {})).toEqual({ kind: 'ssh', host: 'build-box', port: '2222', username: 'me' })
    // DOCKER_PATH_PREFIX is DOCKER_HOST's companion, not a property of other places.
    expect(clientOptions({ via: 'docker.host', endpoint: 'tcp://h:1' }, { DOCKER_PATH_PREFIX: '/x' })).toEqual({ kind: 'http', endpoint: { host: 'h', port: '1', protocol: 'http' } })
  })

  it('other platforms: no unix sockets; Windows gets the named pipe last', () => {
    touch('.docker', 'run', 'docker.sock')
    expect(engineCandidates({ ...e(), platform: 'win32', uid: undefined }, inHome)).toEqual([{ via: 'socket', endpoint: 'npipe:////./pipe/docker_engine', from: 'Docker Desktop (named pipe)' }])
  })
})

describe('parseProperties', () => {
  it('reads key=value, key: value and key value lines; comments, escapes and continued lines', () => {
    const props = parseProperties('# comment\n! also\n  docker.host = unix:///x.sock  \ntc.host: tcp://h:1\nkey value with spaces\nescaped\\:key=a\\=b\nlong=one\\\n    two\n\nempty=\n')
    expect(Object.fromEntries(props)).toEqual({ 'docker.host': 'unix:///x.sock', 'tc.host': 'tcp://h:1', 'key': 'value with spaces', 'escaped:key': 'a=b', 'long': 'onetwo', 'empty': '' })
  })
})
