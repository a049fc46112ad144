import { MAX_SPAN_IDS } from './span-rules.ts'
import type { Span, SpanExpectations, SpanRuleFailure } from './types.ts'
import { attributeEquals, stringForm } from './values.ts'

type Hermeticity = NonNullable<SpanExpectations['hermeticity']>

// Semantic-convention keys naming the remote host, current names first, then the older ones.
const HOST_KEYS = ['server.address', 'net.peer.name', 'net.sock.peer.name', 'http.host'] as const
const URL_KEYS = ['url.full', 'http.url'] as const
// Addresses are the resolution of a host name: judged only when the span names no host, since a
// call to the test's service `api` carries the container's private address too.
const ADDRESS_KEYS = ['network.peer.address', 'net.peer.ip', 'net.sock.peer.addr'] as const

/** The hosts a span reaches, with the attribute each came from; none for SERVER/CONSUMER spans (their peer is the caller). */
export function peersOf(span: Span): Array<{ host: string; key: string }> {
  if (span.kind === 'server' || span.kind === 'consumer') return []
  const found: Array<{ host: string; key: string }> = []
  for (const key of HOST_KEYS) {
    const value = span.attributes[key]
    if (value !== undefined && value !== null && value !== '') found.push({ host: stripPort(stringForm(value)), key })
  }
  for (const key of URL_KEYS) {
    const value = span.attributes[key]
    if (typeof value !== 'string') continue
    try {
      found.push({ host: new URL(value).hostname.replace(/^\[|\]$/g, ''), key })
    }
    catch { /* a relative or malformed URL names no host */ }
  }
  if (found.length) return found
  for (const key of ADDRESS_KEYS) {
    const value = span.attributes[key]
    if (value !== undefined && value !== null && value !== '') found.push({ host: stringForm(value), key })
  }
  return found
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') > 0 ? host.indexOf(']') : undefined)
  const colons = host.split(':').length - 1
  return colons === 1 ? host.slice(0, host.indexOf(':')) : host
}

/** localhost, `*.localhost`, loopback and unspecified addresses. */
function isLocal(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host)
    || host === '::1' || host === '0:0:0:0:0:0:0:1' || host === '0.0.0.0' || host === '::' || /^::ffff:127\./.test(host)
}

/** `[expect.hermeticity]`: the rules it declares, each with its failure when it does not hold. */
export function evaluateHermeticity(h: Hermeticity, spans: readonly Span[], extraHosts: readonly string[]): Array<{ rule: string; failure?: SpanRuleFailure }> {
  const results: Array<{ rule: string; failure?: SpanRuleFailure }> = []
  if (h.noExternalServices) {
    const rule = 'expect.hermeticity.no_external_services'
    const internal = new Set([...(h.internalHosts ?? []), ...extraHosts].map(x => x.toLowerCase()))
    const offences: Array<{ span: Span; host: string; key: string }> = []
    for (const span of spans) {
      for (const peer of peersOf(span)) {
        const host = peer.host.toLowerCase().replace(/\.$/, '')
        if (!isLocal(host) && !internal.has(host)) offences.push({ span, ...peer })
      }
    }
    results.push({
      rule,
      failure: offences.length === 0 ? undefined : {
        rule,
        expected: `no span reaches a host other than ${['localhost', ...internal].join(', ')}`,
        actual: listed(offences.map(o => `span ${JSON.stringify(o.span.name)} reaches ${JSON.stringify(o.host)} (${o.key})`)),
        closest: { spanId: offences[0]!.span.spanId, name: offences[0]!.span.name, service: offences[0]!.span.service, differences: [`${offences[0]!.key}=${JSON.stringify(stringForm(offences[0]!.span.attributes[offences[0]!.key]))}`] },
        spanIds: unique(offences.map(o => o.span.spanId)),
        source: [...h.source, 'no_external_services'],
      },
    })
  }
  if (h.resourceAttrsMustMatch) {
    const rule = 'expect.hermeticity.resource_attrs.must_match'
    const expected = Object.entries(h.resourceAttrsMustMatch)
    // Each distinct resource once: a service's spans share one.
    const resources = new Map<string, Span>()
    // Spans of one export share their resource object: serialise each object once.
    const seen = new Set<object>()
    for (const span of spans) {
      if (seen.has(span.resource)) continue
      seen.add(span.resource)
      const id = JSON.stringify(span.resource)
      if (!resources.has(id)) resources.set(id, span)
    }
    const wrong = [...resources.values()].flatMap((span) => {
      const differences = expected.filter(([k, v]) => !attributeEquals(span.resource[k], v))
        .map(([k, v]) => (k in span.resource ? `${k}=${JSON.stringify(stringForm(span.resource[k]))} (expected ${JSON.stringify(v)})` : `${k} missing`))
      return differences.length ? [{ span, differences }] : []
    })
    results.push({
      rule,
      failure: wrong.length === 0 ? undefined : {
        rule,
        expected: `every resource has { ${expected.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')} }`,
        actual: listed(wrong.map(w => `resource of service ${JSON.stringify(w.span.service)}: ${w.differences.join(', ')}`)),
        closest: { spanId: wrong[0]!.span.spanId, name: wrong[0]!.span.name, service: wrong[0]!.span.service, differences: wrong[0]!.differences },
        spanIds: spans.filter(s => wrong.some(w => w.span.service === s.service)).slice(0, MAX_SPAN_IDS).map(s => s.spanId),
        source: [...h.source, 'resource_attrs', 'must_match'],
      },
    })
  }
  if (h.spanAttrsForbidKeys) {
    const rule = 'expect.hermeticity.span_attrs.forbid_keys'
    const forbidden = h.spanAttrsForbidKeys
    const offences = spans.flatMap(span => forbidden.filter(k => k in span.attributes).map(key => ({ span, key })))
    results.push({
      rule,
      failure: offences.length === 0 ? undefined : {
        rule,
        expected: `no span has any of the attributes ${forbidden.join(', ')}`,
        actual: listed(offences.map(o => `span ${JSON.stringify(o.span.name)} has ${o.key}`)),
        closest: { spanId: offences[0]!.span.spanId, name: offences[0]!.span.name, service: offences[0]!.span.service, differences: [`${offences[0]!.key}=${JSON.stringify(stringForm(offences[0]!.span.attributes[offences[0]!.key]))}`] },
        spanIds: unique(offences.map(o => o.span.spanId)),
        source: [...h.source, 'span_attrs', 'forbid_keys'],
      },
    })
  }
  return results
}

/** The first three, then how many more. */
export function listed(items: string[]): string {
  return items.length <= 3 ? items.join('; ') : `${items.slice(0, 3).join('; ')}; and ${items.length - 3} more`
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)].slice(0, MAX_SPAN_IDS)
}
