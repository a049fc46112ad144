import { toTomlValue } from './toml-value.ts'

/**
 * The helpers upstream clnrm's Tera templates call, under the names `clnrm migrate` keeps
 * (`uuid_v4(42)`, `fake_name({ seed: 42 })`, `filter.slug(x)`). Like the other helpers they
 * take their randomness from the render's generator (seeded by `[determinism] seed`) and their
 * time from its clock (`freeze_clock`); a `seed` argument gives a value of its own that depends
 * on that seed only, as upstream's seeded functions do.
 */
export interface TeraHelpers {
  now_rfc3339: () => string
  now_unix: () => number
  now_ms: () => number
  /** The clock plus `seconds`, as RFC 3339. */
  now_plus: (seconds?: number) => string
  uuid_v4: (seed?: number) => string
  uuid_v7: () => string
  ulid: () => string
  trace_id: () => string
  span_id: () => string
  traceparent: () => string
  pick: <T>(array: readonly T[]) => T | undefined
  toml_encode: (value: unknown) => string
  [fake: `fake_${string}`]: (options?: FakeOptions) => string | number | boolean
  filter: TeraFilters
}

/** Named arguments of the `fake_*` functions. */
export interface FakeOptions {
  seed?: number
  min?: number
  max?: number
  count?: number
  len?: number
  ratio?: number
}

/** Tera's filters, with the piped value first. */
export interface TeraFilters {
  default: <T, U>(value: T | undefined | null, fallback: U) => T | U
  upper: (value: unknown) => string
  lower: (value: unknown) => string
  trim: (value: unknown) => string
  length: (value: unknown) => number
  slug: (value: unknown) => string
  kebab: (value: unknown) => string
  snake: (value: unknown) => string
  join: (value: readonly unknown[], sep?: string) => string
  truncate: (value: unknown, length?: number, end?: string) => string
  contains: (container: unknown, item: unknown) => boolean
  /** Tera's `range(end=n)`, `range(start=a, end=b, step_by=s)`; one argument alone is the end. */
  range: (start?: number, end?: number, step?: number) => number[]
  /** Pairs each item with Tera's `loop` (index, index0, first, last). */
  loop: <T>(items: Iterable<T> | null | undefined) => Array<[T, { index: number; index0: number; first: boolean; last: boolean }]>
}

const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Alan', 'Radia', 'Edsger', 'Hedy']
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Allen', 'Turing', 'Perlman', 'Dijkstra', 'Lamarr']
const WORDS = ['alpha', 'bravo', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'indigo', 'juniper', 'kelp', 'lumen', 'meadow', 'nectar', 'onyx', 'prairie']
const COMPANIES = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell']
const CITIES = ['Lisbon', 'Oslo', 'Kyoto', 'Quito', 'Accra', 'Perth', 'Tallinn', 'Lima']
const COUNTRIES = ['Portugal', 'Norway', 'Japan', 'Ecuador', 'Ghana', 'Australia', 'Estonia', 'Peru']
const STREETS = ['Main St', 'High St', 'Elm Ave', 'Oak Rd', 'Pine Ln', 'Cedar Way']
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** mulberry32: small, fast and repeatable, for every seeded template helper; not for secrets. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const words = (value: unknown): string[] => String(value ?? '')
  .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
  .normalize('NFKD').replace(/[\u0300-\u036F]/g, '')
  .split(/[^A-Za-z0-9]+/).filter(Boolean).map(w => w.toLowerCase())

/** Tera's filters; pure. */
export const teraFilters: TeraFilters = {
  default: (value, fallback) => value ?? fallback,
  upper: value => String(value).toUpperCase(),
  lower: value => String(value).toLowerCase(),
  trim: value => String(value).trim(),
  length: (value) => {
    if (value === null || value === undefined) return 0
    if (typeof value === 'string' || Array.isArray(value)) return value.length
    if (typeof value === 'object') return Object.keys(value).length
    throw new Error(`length: ${typeof value} has no length`)
  },
  slug: value => words(value).join('-'),
  kebab: value => words(value).join('-'),
  snake: value => words(value).join('_'),
  join: (value, sep = '') => value.map(String).join(sep),
  truncate: (value, length = 255, end = '…') => {
    const chars = [...String(value)]
    return chars.length <= length ? chars.join('') : chars.slice(0, length).join('') + end
  },
  contains: (container, item) => {
    if (typeof container === 'string') return container.includes(String(item))
    if (Array.isArray(container)) return container.includes(item)
    if (container && typeof container === 'object') return Object.hasOwn(container, String(item))
    return false
  },
  range: (start, end, step = 1) => {
    const [from, to] = end === undefined ? [0, Number(start ?? 0)] : [Number(start ?? 0), Number(end)]
    if (!(step > 0)) throw new Error('range: step_by must be above zero')
    const out: number[] = []
    for (let i = from; i < to; i += step) out.push(i)
    return out
  },
  loop: (items) => {
    const list = [...(items ?? [])]
    return list.map((item, i) => [item, { index: i + 1, index0: i, first: i === 0, last: i === list.length - 1 }])
  },
}

/** Creates the Tera helpers of one render from its generator and clock. */
export function createTeraHelpers(random: () => number, clock: () => string): TeraHelpers {
  const hex = (n: number, rnd = random): string => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('')
  const rng = (options?: FakeOptions): (() => number) => options?.seed === undefined ? random : seededRandom(options.seed)
  const pickWith = <T>(list: readonly T[], rnd: () => number): T => list[Math.floor(rnd() * list.length)]!
  const intWith = (rnd: () => number, min: number, max: number): number => min + Math.floor(rnd() * (max - min + 1))
  const uuid4With = (rnd: () => number): string => {
    const bytes = Array.from({ length: 16 }, () => Math.floor(rnd() * 256))
    bytes[6] = (bytes[6]! & 0x0F) | 0x40
    bytes[8] = (bytes[8]! & 0x3F) | 0x80
    return formatUuid(bytes)
  }
  const ms = (): number => Date.parse(clock())
  const fake = (make: (rnd: () => number, o: FakeOptions) => string | number | boolean) =>
    (options: FakeOptions = {}): string | number | boolean => make(rng(options), options)
  return {
    now_rfc3339: clock,
    now_unix: () => Math.floor(ms() / 1000),
    now_ms: ms,
    now_plus: (seconds = 0) => new Date(ms() + Number(seconds) * 1000).toISOString(),
    uuid_v4: seed => uuid4With(seed === undefined ? random : seededRandom(seed)),
    uuid_v7: () => {
      const time = ms()
      const bytes = Array.from({ length: 16 }, () => Math.floor(random() * 256))
      for (let i = 0; i < 6; i++) bytes[i] = Math.floor(time / 2 ** (8 * (5 - i))) & 0xFF
      bytes[6] = (bytes[6]! & 0x0F) | 0x70
      bytes[8] = (bytes[8]! & 0x3F) | 0x80
      return formatUuid(bytes)
    },
    ulid: () => {
      let time = ms()
      let stamp = ''
      for (let i = 0; i < 10; i++) {
        stamp = CROCKFORD[time % 32]! + stamp
        time = Math.floor(time / 32)
      }
      return stamp + Array.from({ length: 16 }, () => CROCKFORD[Math.floor(random() * 32)]).join('')
    },
    trace_id: () => hex(32),
    span_id: () => hex(16),
    traceparent: () => `00-${hex(32)}-${hex(16)}-01`,
    pick: array => array.length ? pickWith(array, random) : undefined,
    toml_encode: toTomlValue,
    fake_name: fake(rnd => `${pickWith(FIRST, rnd)} ${pickWith(LAST, rnd)}`),
    fake_email: fake(rnd => `${pickWith(FIRST, rnd).toLowerCase()}.${pickWith(LAST, rnd).toLowerCase()}${intWith(rnd, 1, 99)}@example.test`),
    fake_company: fake(rnd => `${pickWith(COMPANIES, rnd)} ${pickWith(['Inc', 'Ltd', 'GmbH', 'LLC'], rnd)}`),
    fake_word: fake(rnd => pickWith(WORDS, rnd)),
    fake_words: fake((rnd, o) => Array.from({ length: o.count ?? 3 }, () => pickWith(WORDS, rnd)).join(' ')),
    fake_sentence: fake((rnd, o) => {
      const n = intWith(rnd, o.min ?? 4, o.max ?? 10)
      const text = Array.from({ length: n }, () => pickWith(WORDS, rnd)).join(' ')
      return `${text[0]!.toUpperCase()}${text.slice(1)}.`
    }),
    fake_string: fake((rnd, o) => Array.from({ length: o.len ?? 8 }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 36)]).join('')),
    fake_int: fake((rnd, o) => intWith(rnd, o.min ?? 0, o.max ?? 1_000_000)),
    fake_int_range: fake((rnd, o) => intWith(rnd, o.min ?? 0, o.max ?? 100)),
    fake_float: fake(rnd => Math.round(rnd() * 1e6) / 1e6),
    fake_bool: fake((rnd, o) => rnd() * 100 < (o.ratio ?? 50)),
    fake_uuid: fake(rnd => uuid4With(rnd)),
    fake_uuid_seeded: fake(rnd => uuid4With(rnd)),
    fake_ipv4: fake(rnd => `10.${intWith(rnd, 0, 255)}.${intWith(rnd, 0, 255)}.${intWith(rnd, 1, 254)}`),
    fake_ipv6: fake(rnd => `fd00:${Array.from({ length: 7 }, () => hex(4, rnd)).join(':')}`),
    fake_mac_address: fake(rnd => Array.from({ length: 6 }, () => hex(2, rnd)).join(':')),
    fake_port: fake(rnd => intWith(rnd, 1024, 65535)),
    fake_domain: fake(rnd => `${pickWith(WORDS, rnd)}.example.test`),
    fake_url: fake(rnd => `https://${pickWith(WORDS, rnd)}.example.test/${pickWith(WORDS, rnd)}`),
    fake_phone: fake(rnd => `+1-555-${String(intWith(rnd, 0, 9999)).padStart(4, '0')}`),
    fake_city: fake(rnd => pickWith(CITIES, rnd)),
    fake_country: fake(rnd => pickWith(COUNTRIES, rnd)),
    fake_street: fake(rnd => `${intWith(rnd, 1, 999)} ${pickWith(STREETS, rnd)}`),
    fake_address: fake(rnd => `${intWith(rnd, 1, 999)} ${pickWith(STREETS, rnd)}, ${pickWith(CITIES, rnd)}`),
    fake_zip: fake(rnd => String(intWith(rnd, 10000, 99999))),
    fake_timestamp: fake(rnd => new Date(ms() - intWith(rnd, 0, 365 * 86400) * 1000).toISOString()),
    fake_date: fake(rnd => new Date(ms() - intWith(rnd, 0, 365) * 86400_000).toISOString().slice(0, 10)),
    fake_time: fake(rnd => new Date(intWith(rnd, 0, 86399) * 1000).toISOString().slice(11, 19)),
    filter: teraFilters,
  }
}

function formatUuid(bytes: readonly number[]): string {
  const h = bytes.map(b => b.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
