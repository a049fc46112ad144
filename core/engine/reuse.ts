import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ContainerSummary, EngineAdapter, EngineContainer } from './adapter.ts'
import { LABELS } from './pool-types.ts'

/**
 * Containers left for the next clnrm process (`clnrm run --reuse`), and the cross-process lease
 * that keeps two processes from ever sharing one.
 *
 * The lease is the container's name, changed with the engine's rename, which is atomic and
 * refuses a name in use. A parked container is named `clnrm-idle-<token>-g<n>-t<parked at>`; a
 * process claims it by renaming it to `clnrm-used-<token>-g<n>`. Every claimant of the same
 * parked container asks for that same name, so exactly one rename succeeds: the others find the
 * name taken, or the container already carrying it (the engine refuses a rename to the current
 * name). A claimant that saw an older generation addresses a name that no longer exists. Parking
 * again moves to generation n + 1. A unique target per claimant (say, with its pid) would not do:
 * two renames that both resolved the idle name before either ran would both succeed.
 *
 * Who holds a used container is recorded in an intent file `<tmpdir>/clnrm-claims/<token>.<pid>`,
 * written before the claim (or the create) and removed after parking, so a process that dies
 * holding containers (kill -9) leaves them to the next process's sweep, which removes used
 * containers none of whose intent files names a live process on this host.
 */

/** Label of containers that may be parked for the next process. */
export const REUSE_LABEL = 'clnrm.reuse'
/** The pid of the process that created a reusable container (its `clnrm.pid` is 0: no process owns it). */
export const CREATOR_LABEL = 'clnrm.creator'

const IDLE = /^\/?clnrm-idle-([0-9a-f]{12})-g(\d+)-t(\d+)$/
const USED = /^\/?clnrm-used-([0-9a-f]{12})-g(\d+)$/

/** A parked container another process may claim. */
export interface Parked {
  id: string
  name: string
  key: string
  token: string
  generation: number
  /** When it was parked (ms since the epoch). */
  parkedAt: number
}

/** The claim a process holds on a reusable container: its token and generation. */
export interface Claim {
  token: string
  generation: number
}

export const usedName = (claim: Claim): string => `clnrm-used-${claim.token}-g${claim.generation}`
const idleName = (claim: Claim, at: number): string => `clnrm-idle-${claim.token}-g${claim.generation}-t${at}`

const claimsDir = (): string => join(tmpdir(), 'clnrm-claims')

/** Tokens this process holds or is claiming: one intent file each, whatever the number of claimants here. */
const mine = new Set<string>()

/** Records that this process holds (or is about to hold) the token's container. */
function writeIntent(token: string): void {
  mine.add(token)
  mkdirSync(claimsDir(), { recursive: true })
  writeFileSync(join(claimsDir(), `${token}.${process.pid}`), '')
}

function dropIntent(token: string): void {
  mine.delete(token)
  rmSync(join(claimsDir(), `${token}.${process.pid}`), { force: true })
}

/** Whether a process of this machine runs (EPERM: it does, as another user). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  }
  catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Whether a live process on this host holds the token's container. */
function held(token: string): boolean {
  let files: string[]
  try {
    files = readdirSync(claimsDir())
  }
  catch {
    return false
  }
  return files.some(f => f.startsWith(`${token}.`) && isAlive(Number(f.slice(token.length + 1))))
}

/** A new claim for a container about to be created (generation 0), its intent recorded. */
export function newClaim(): Claim {
  const claim = { token: randomBytes(6).toString('hex'), generation: 0 }
  writeIntent(claim.token)
  return claim
}

/** Container port → host port on 127.0.0.1 of a running container (a parked one keeps its ports). */
export async function publishedPorts(container: EngineContainer, ports: readonly number[]): Promise<Record<number, number> | undefined> {
  if (!ports.length) return {}
  const info = await container.inspect()
  const hostPorts: Record<number, number> = {}
  for (const port of ports) {
    const binding = info.NetworkSettings.Ports?.[`${port}/tcp`]?.find(b => b.HostIp === '127.0.0.1')
    if (!binding) return undefined
    hostPorts[port] = Number(binding.HostPort)
  }
  return hostPorts
}

/** Forgets a claim whose container never came to be, or was removed. */
export function releaseClaim(claim: Claim): void {
  dropIntent(claim.token)
}

/** Running parked containers of this host, by definition key, oldest parked first. */
export async function listParked(engine: EngineAdapter): Promise<Parked[]> {
  return parkedOf(await engine.listContainers([`${REUSE_LABEL}=1`]), hostname())
}

/** The running parked containers of `host` among `containers`, oldest parked first. */
function parkedOf(containers: readonly ContainerSummary[], host: string): Parked[] {
  const parked: Parked[] = []
  for (const c of containers) {
    if (c.State !== 'running' || c.Labels?.[LABELS.host] !== host) continue
    const match = c.Names?.map(n => IDLE.exec(n)).find(Boolean)
    if (!match) continue
    parked.push({ id: c.Id, name: match[0].replace(/^\//, ''), key: c.Labels[LABELS.key] ?? '', token: match[1]!, generation: Number(match[2]), parkedAt: Number(match[3]) })
  }
  return parked.sort((a, b) => a.parkedAt - b.parkedAt)
}

/** Claims a parked container for this process. False when another process got it first (or it is gone). */
export async function claim(engine: EngineAdapter, parked: Parked): Promise<Claim | undefined> {
  const claimed = { token: parked.token, generation: parked.generation }
  // Claimed (or being claimed) here already: the rename below would lose, and its cleanup would drop the holder's intent.
  if (mine.has(parked.token)) return undefined
  writeIntent(parked.token)
  try {
    // Addressed by its idle name: a container parked again since, or claimed, is not found.
    await engine.container(parked.name).rename(usedName(claimed))
    return claimed
  }
  catch {
    dropIntent(parked.token)
    return undefined
  }
}

/** Parks a container this process holds: the next process may claim it. */
export async function park(container: EngineContainer, held: Claim): Promise<void> {
  const next = { token: held.token, generation: held.generation + 1 }
  await container.rename(idleName(next, Date.now()))
  dropIntent(held.token)
}

/**
 * Removes, on this host, parked containers idle longer than `idleTimeoutMs` (claimed first, so a
 * process claiming one at the same moment gets it whole or not at all) and used ones that no live
 * process holds (their process died). Any clnrm process sweeps, with `--reuse` or without.
 * Resolves with how many it removed and the parked containers it left, from the same listing
 * (one engine call fewer on the way to a `--reuse` run's first test).
 */
export async function sweepReusable(engine: EngineAdapter, idleTimeoutMs: number): Promise<{ removed: number; parked: Parked[] }> {
  const host = hostname()
  const containers = await engine.listContainers([`${REUSE_LABEL}=1`])
  let removed = 0
  const gone = new Set<string>()
  await Promise.allSettled(containers.filter(c => c.Labels?.[LABELS.host] === host).map(async (c) => {
    const idle = c.Names?.map(n => IDLE.exec(n)).find(Boolean)
    const used = c.Names?.map(n => USED.exec(n)).find(Boolean)
    let token: string | undefined
    if (idle) {
      const stale = Date.now() - Number(idle[3]) >= idleTimeoutMs || c.State !== 'running'
      if (!stale) return
      // Never offered as parked: removed below, or claimed by another process meanwhile.
      gone.add(c.Id)
      const got = await claim(engine, { id: c.Id, name: idle[0].replace(/^\//, ''), key: '', token: idle[1]!, generation: Number(idle[2]), parkedAt: Number(idle[3]) })
      if (!got) return
      token = got.token
    }
    else if (used) {
      if (held(used[1]!)) return
    }
    else {
      return
    }
    await engine.container(c.Id).remove()
    removed++
    if (token) dropIntent(token)
  }))
  // Intent files of processes that died (kill -9) name nothing any more.
  try {
    for (const file of readdirSync(claimsDir())) {
      const pid = Number(file.slice(file.indexOf('.') + 1))
      if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) rmSync(join(claimsDir(), file), { force: true })
    }
  }
  catch {}
  return { removed, parked: parkedOf(containers.filter(c => !gone.has(c.Id)), host) }
}
