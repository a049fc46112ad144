import { describe, expect, it } from 'vitest'
import type { EngineAdapter, EngineVersion } from '../core/engine/adapter.ts'
import { hostRouteFor } from '../core/engine/host-reach.ts'

/**
 * The choice of route when the engine cannot be measured (the measurement itself runs on real
 * engines: test/engine-contract.test.ts, on Docker, a TCP dockerd and Podman). An engine that
 * answers only `version` and `imageId`: creating a container fails the test.
 */
function engine(name: string, images: string[] = []): EngineAdapter & { created: number } {
  const version: EngineVersion = { name, version: '1.0', apiVersion: '1.41', os: 'linux', arch: 'amd64' }
  const fake = {
    created: 0,
    version: async () => version,
    imageId: async (image: string) => (images.includes(image) ? 'sha256:1' : undefined),
    createContainer: async () => {
      fake.created++
      throw new Error('no container engine here')
    },
  }
  return fake as unknown as EngineAdapter & { created: number }
}

describe('the route to this machine, when it cannot be measured', () => {
  it('takes Docker at its word (host-gateway) without starting a container', async () => {
    const docker = engine('Docker', ['clnrm-examples/busybox:1'])
    expect(await hostRouteFor(docker)).toMatchObject({ ok: true, route: 'host-gateway' })
    expect(docker.created).toBe(0)
  })

  it('assumes the route the engine is known for, saying so, when no busybox image can measure it', async () => {
    const podman = engine('Podman')
    const found = await hostRouteFor(podman)
    expect(found).toMatchObject({ ok: false, route: 'network-gateway', assumed: true })
    expect(found.detail).toMatch(/no busybox image.*assuming network-gateway/)
    expect(podman.created).toBe(0)
    expect(await hostRouteFor(engine('kubedock'))).toMatchObject({ ok: false, route: 'host-gateway', assumed: true })
  })

  it('measures any engine but Docker, once per engine, and says why a measurement failed', async () => {
    const podman = engine('Podman', ['busybox:1.36'])
    const first = hostRouteFor(podman)
    expect(hostRouteFor(podman)).toBe(first)
    const found = await first
    expect(found).toMatchObject({ ok: false, route: 'network-gateway', assumed: true })
    expect(found.detail).toMatch(/the measuring container could not run: no container engine here/)
    expect(podman.created).toBe(1)
  })
})
