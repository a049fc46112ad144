import type { Duplex, Readable } from 'node:stream'
import type Dockerode from 'dockerode'
import type { ContainerCreateBody, ContainerInfo, EngineAdapter, EngineContainer, EngineVersion, PullEvent } from './adapter.ts'

/**
 * The engine adapter over dockerode: every engine call clnrm makes on the hot path goes through
 * here (testcontainers only finds the engine). The only module besides `docker.ts` that knows
 * dockerode; nothing it returns carries dockerode's types.
 */
export function dockerodeAdapter(docker: Dockerode): EngineAdapter {
  return {
    ping: async () => {
      await docker.ping()
    },
    version: async () => versionOf(await docker.version() as RawVersion),
    createContainer: async (body: ContainerCreateBody) => wrapContainer(await docker.createContainer(body as Dockerode.ContainerCreateOptions)),
    container: id => wrapContainer(docker.getContainer(id)),
    listContainers: async labels => (await docker.listContainers({ all: true, filters: { label: labels } }))
      .map(c => ({ Id: c.Id, Labels: c.Labels ?? {}, State: c.State, Names: c.Names })),
    createNetwork: async (body) => {
      await docker.createNetwork({ Name: body.Name, Labels: body.Labels, CheckDuplicate: true })
      return body.Name
    },
    removeNetwork: async (idOrName) => {
      await docker.getNetwork(idOrName).remove()
    },
    listNetworks: async labels => (await docker.listNetworks({ filters: { label: labels } }))
      .map(n => ({ Id: n.Id, Name: n.Name, Labels: n.Labels ?? {} })),
    inspectNetwork: async (idOrName) => {
      return addressingOf(await docker.getNetwork(idOrName).inspect() as RawNetwork)
    },
    imageId: async (image) => {
      try {
        return (await docker.getImage(image).inspect()).Id
      }
      catch {
        return undefined
      }
    },
    pull: async (image, { auth, onEvent }) => {
      const stream = await docker.pull(image, auth ? { authconfig: auth as Dockerode.AuthConfig } : {})
      // followProgress reads the stream to its end and listens for its errors.
      await new Promise<void>((done, fail) => {
        docker.modem.followProgress(stream, (error: Error | null) => (error ? fail(error) : done()), (event: PullEvent) => onEvent(event))
      })
    },
  }
}

/** What a network inspect answers that clnrm reads. */
export interface RawNetwork {
  IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> | null }
}

/** A network's IPv4 gateway and subnet (the first IPAM entry that has them). */
export function addressingOf(info: RawNetwork): { gateway?: string; subnet?: string } {
  const config = info.IPAM?.Config?.find(c => c.Gateway || /^\d+\.\d+\.\d+\.\d+\//.test(c.Subnet ?? ''))
  return { gateway: config?.Gateway, subnet: config?.Subnet }
}

interface RawVersion {
  Version?: string
  ApiVersion?: string
  Os?: string
  Arch?: string
  Components?: Array<{ Name?: string; Version?: string }>
}

/** Names the product: Podman's compatible API lists a "Podman Engine" component; Docker an "Engine". */
export function versionOf(raw: RawVersion): EngineVersion {
  const components = raw.Components ?? []
  const podman = components.find(c => /podman/i.test(c.Name ?? ''))
  const name = podman ? 'Podman' : components.some(c => c.Name === 'Engine') ? 'Docker' : (components[0]?.Name ?? 'unknown engine')
  return { name, version: podman?.Version ?? raw.Version ?? '?', apiVersion: raw.ApiVersion ?? '?', os: raw.Os ?? '?', arch: raw.Arch ?? '?' }
}

function wrapContainer(container: Dockerode.Container): EngineContainer {
  return {
    id: container.id,
    start: async () => {
      await container.start()
    },
    inspect: async () => await container.inspect() as unknown as ContainerInfo,
    logs: async (tail) => {
      // Without `follow` the engine answers with the whole (multiplexed) body at once.
      const body = await container.logs({ stdout: true, stderr: true, follow: false, tail }) as unknown
      return Buffer.isBuffer(body) ? body : Buffer.from(String(body))
    },
    followLogs: async () => await container.logs({ follow: true, stdout: true, stderr: true }) as unknown as Readable,
    remove: async () => {
      await container.remove({ force: true, v: true })
    },
    rename: async (name) => {
      await container.rename({ name })
    },
    waitNotRunning: async (signal) => {
      const body = await container.wait({ condition: 'not-running', abortSignal: signal }) as { StatusCode: number }
      return body.StatusCode
    },
    processes: async () => {
      try {
        // Podman answers an ended container's list with an empty body: no process.
        return ((await container.top()) as { Processes?: unknown[] | null } | undefined)?.Processes?.length ?? 0
      }
      catch (error) {
        if ((error as { statusCode?: number }).statusCode === 409) return 0
        throw error
      }
    },
    kill: async () => {
      await container.kill()
    },
    exec: async (body) => {
      const exec = await container.exec(body)
      return {
        start: async ({ stdin }) => await exec.start({ hijack: true, stdin }) as Duplex,
        inspect: async () => {
          const info = await exec.inspect()
          return { exitCode: info.ExitCode ?? undefined, running: info.Running }
        },
      }
    },
    putArchive: async (tar, path) => {
      await container.putArchive(tar, { path })
    },
  }
}
