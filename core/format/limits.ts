import { field, integer, notSupported, table } from './fields.ts'
import type { TypeDef } from './fields.ts'

/** CPU and memory limits applied to every service container of a test (`[limits]`). */
export interface LimitsSpec {
  /** Thousandths of a CPU (`1000` is one core): HostConfig.NanoCpus. */
  cpuMillicores?: number
  /** Memory in MiB: HostConfig.Memory (and MemorySwap, so swap does not stretch it). */
  memoryMb?: number
}

/**
 * The engine refuses a memory limit under 6 MiB; saying so at check time points at the key
 * instead of failing the container create.
 */
const MIN_MEMORY_MB = 6

/** `[limits]`: upstream clnrm's container limits, applied to every service container. */
export const limitsTable: TypeDef & { kind: 'table' } = table({
  cpu_millicores: field(integer({ minimum: 1 }), 'CPU limit of each service container, in thousandths of a CPU (`500` is half a core).'),
  memory_mb: field(integer({ minimum: MIN_MEMORY_MB }), 'Memory limit of each service container, in MiB (swap included: the container cannot swap past it). At least 6, the engine\'s minimum.'),
  max_containers: notSupported('a cap on the number of containers of a test'),
  max_duration_seconds: notSupported('a duration cap in seconds (use [meta] timeout = "2m")'),
})

/** The normalized limits of a checked `[limits]` table; `undefined` when none is set. */
export function normalizeLimits(raw: { cpu_millicores?: number; memory_mb?: number } | undefined): LimitsSpec | undefined {
  if (!raw || (raw.cpu_millicores === undefined && raw.memory_mb === undefined)) return undefined
  return { cpuMillicores: raw.cpu_millicores, memoryMb: raw.memory_mb }
}

/** The HostConfig keys that enforce the limits (empty without limits). */
export function limitsHostConfig(limits: LimitsSpec | undefined): { NanoCpus?: number; Memory?: number; MemorySwap?: number } {
  if (!limits) return {}
  const bytes = limits.memoryMb === undefined ? undefined : limits.memoryMb * 1024 * 1024
  return {
    ...(limits.cpuMillicores !== undefined && { NanoCpus: limits.cpuMillicores * 1_000_000 }),
    // MemorySwap equal to Memory: no swap beyond the limit, so the limit is what the test gets.
    ...(bytes !== undefined && { Memory: bytes, MemorySwap: bytes }),
  }
}
