import { createHash, randomUUID } from 'node:crypto'
import type { TeraHelpers } from './tera-helpers.ts'
import { createTeraHelpers, seededRandom } from './tera-helpers.ts'
import { toTomlValue } from './toml-value.ts'

/** What a render read from the environment: the dev loop reruns the test when these change. */
export interface EnvRead {
  name: string
  value: string | undefined
}

/**
 * The functions a template calls: `env()`, `now()`, `sha256()`, `toml()`, `uuid()`, `fake.*`, and
 * the helpers of upstream's Tera templates (`now_rfc3339()`, `uuid_v4()`, `fake_name()`, `filter.*`…).
 */
export interface TemplateHelpers extends TeraHelpers {
  env: (name: string, fallback?: string) => string
  now: () => string
  sha256: (text: string) => string
  toml: (value: unknown) => string
  uuid: () => string
  fake: {
    name: () => string
    email: () => string
    int: (min?: number, max?: number) => number
    word: () => string
  }
}

/** Inputs of the helpers; `seed` and `freezeClock` make every helper deterministic. */
export interface HelperOptions {
  seed?: number
  freezeClock?: string
  env: Readonly<Record<string, string | undefined>>
  /** Called for every `env()` read. */
  onEnvRead: (read: EnvRead) => void
}

const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Alan', 'Radia', 'Edsger', 'Hedy']
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Allen', 'Turing', 'Perlman', 'Dijkstra', 'Lamarr']
const WORDS = ['alpha', 'bravo', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'indigo', 'juniper', 'kelp', 'lumen', 'meadow', 'nectar', 'onyx', 'prairie']

/** Creates the helpers for one render. A fresh seeded generator per render keeps renders repeatable. */
export function createTemplateHelpers(options: HelperOptions): TemplateHelpers {
  return buildHelpers({ options, random: generatorFor(options) })
}

/** One set of helpers serving many renders, one at a time: see `createHelperSet`. */
export interface HelperSet {
  readonly helpers: TemplateHelpers
  /** Points the helpers at a render's options, with a fresh generator (as `createTemplateHelpers` would make). */
  use: (options: HelperOptions) => void
}

/**
 * Helpers for renders that run one after another (template renders are synchronous): the same
 * functions, pointed at each render's options and a fresh generator by `use`, so each render
 * gets exactly the values `createTemplateHelpers` would give it. Making some fifty functions
 * and spreading them into new objects for every render was a tenth of loading a template test.
 */
export function createHelperSet(): HelperSet {
  const state: HelperState = { options: { env: {}, onEnvRead: () => {} }, random: Math.random }
  return {
    helpers: buildHelpers(state),
    use(options) {
      state.options = options
      state.random = generatorFor(options)
    },
  }
}

/** What the helpers read when called: a render's options and its generator. */
interface HelperState {
  options: HelperOptions
  random: () => number
}

const generatorFor = (options: HelperOptions): (() => number) => options.seed === undefined ? Math.random : seededRandom(options.seed)

function buildHelpers(state: HelperState): TemplateHelpers {
  const random = (): number => state.random()
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const int = (min = 0, max = 1_000_000): number => min + Math.floor(random() * (max - min + 1))
  const seededUuid = (): string => {
    const bytes = Array.from({ length: 16 }, () => Math.floor(random() * 256))
    bytes[6] = (bytes[6]! & 0x0F) | 0x40
    bytes[8] = (bytes[8]! & 0x3F) | 0x80
    const hex = bytes.map(b => b.toString(16).padStart(2, '0')).join('')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
  const now = (): string => state.options.freezeClock ?? new Date().toISOString()
  return {
    ...createTeraHelpers(random, now),
    env: (name, fallback) => {
      const value = state.options.env[name]
      state.options.onEnvRead({ name, value })
      if (value !== undefined) return value
      if (fallback !== undefined) return fallback
      throw new Error(`env("${name}"): the variable is not set and no fallback was given`)
    },
    now,
    sha256: text => createHash('sha256').update(String(text)).digest('hex'),
    toml: toTomlValue,
    uuid: () => (state.options.seed === undefined ? randomUUID() : seededUuid()),
    fake: {
      name: () => `${pick(FIRST)} ${pick(LAST)}`,
      email: () => `${pick(FIRST).toLowerCase()}.${pick(LAST).toLowerCase()}${int(1, 99)}@example.test`,
      int,
      word: () => pick(WORDS),
    },
  }
}
