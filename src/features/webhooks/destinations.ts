import { lookup as dnsLookup, promises as dnsPromises, type LookupAddress, type LookupOptions } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent, buildConnector } from 'undici'

/**
 * Where a webhook may be delivered (DESIGN §3.18): only to the public
 * Internet, unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true. Checked when a URL is
 * registered (checkWebhookUrl) and again on every connection the delivery
 * agent opens (createDeliveryAgent), against the very address connected to:
 * DNS may change between the two, and a rebinding name answers a public
 * address to the first lookup and a private one to the next.
 *
 * The rule is an allow-list, not a deny-list (OWASP SSRF Prevention Cheat
 * Sheet): an address is deliverable only when ipaddr.js files it under
 * `unicast` (none of its special-purpose ranges), plus, for IPv6, inside the
 * global unicast block 2000::/3. Every new special range ipaddr.js learns
 * is therefore refused without a change here.
 */

/** Turns a host name into its addresses, every A and AAAA record. */
export type Resolver = (hostname: string) => Promise<string[]>

/** The verdict on one address; `range` names why (ipaddr.js's range names, and a few of ours). */
export interface AddressVerdict {
  forbidden: boolean
  range: string
}

export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: string }

export interface DestinationOptions {
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: deliver anywhere that resolves (development, tests, on-premise receivers). */
  allowPrivateNetworks: boolean
  /** Replaces the system resolver (tests). */
  resolve?: Resolver
}

export interface DeliveryAgentOptions extends DestinationOptions {
  /** TCP (and TLS) connect timeout; undici's default is 10 s. */
  connectTimeoutMs?: number
  /** How long an idle kept-alive connection is kept; undici's default is 4 s. */
  keepAliveTimeoutMs?: number
  /** Time to wait for the response headers. */
  headersTimeoutMs?: number
  /** Time allowed between two chunks of the response body. */
  bodyTimeoutMs?: number
  /** Most connections per origin (undici: unlimited). */
  connections?: number
}

/** A delivery refused because its destination is not allowed; `message` is short, user-facing and holds no secret. */
export class ForbiddenDestinationError extends Error {
  readonly code = 'ERR_WEBHOOK_FORBIDDEN_DESTINATION'

  constructor (message: string) {
    super(message)
    this.name = 'ForbiddenDestinationError'
  }
}

/**
 * Cloud metadata services and platform endpoints, named so a refusal says
 * "cloud metadata". All but one already fall in a refused range (link-local,
 * unique-local, carrier-grade NAT); 168.63.129.16 is the exception: a public
 * Microsoft address that answers, from inside any Azure VM, as the WireServer
 * (VM agent goal state, extension settings) and the Azure DNS resolver. No
 * webhook receiver can live there, so refusing it costs nothing.
 */
const METADATA_ADDRESSES = new Set([
  '169.254.169.254', // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack instance metadata
  '169.254.170.2', // AWS ECS task metadata and credentials
  '100.100.100.200', // Alibaba Cloud ECS metadata
  '168.63.129.16', // Azure WireServer / platform DNS
  'fd00:ec2:0:0:0:0:0:254', // AWS instance metadata over IPv6 (Nitro)
])

/** IANA global unicast: everything else in IPv6 is reserved, local or special. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3')
/** RFC 6052 well-known NAT64 prefix: the last 32 bits are the IPv4 address reached. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96')
/** RFC 4291 §2.5.5.1 IPv4-compatible addresses (deprecated, never routed). */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96')

/** Names that are local by definition, whatever DNS says: RFC 6761 (localhost), RFC 6762 (.local), ICANN 2024 (.internal), RFC 8375 (home.arpa), the common localhost.localdomain. */
const LOCAL_NAME = /(?:^|\.)(?:localhost|local|internal|localdomain|home\.arpa)$/

/**
 * The verdict on one textual address. Only the canonical forms net.isIP
 * accepts are judged (DNS answers and WHATWG-parsed hosts are always
 * canonical); anything else is refused rather than guessed at, because
 * ipaddr.js also reads forms like "0x7f.1" that other parsers read
 * differently.
 */
export function classifyAddress (address: string): AddressVerdict {
  // A zone index (fe80::1%eth0) only exists for non-global scopes.
  if (address.includes('%')) return { forbidden: true, range: 'scoped' }
  const family = isIP(address)
  if (family === 4) return classifyParsed(ipaddr.IPv4.parse(address))
  if (family === 6) {
    // ipaddr.js reads the deprecated "::a.b.c.d" as IPv4-mapped (::ffff:a.b.c.d);
    // WHATWG URL's serialisation gives the real bits, in hex, first.
    let canonical: string
    try {
      canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1)
    } catch {
      return { forbidden: true, range: 'invalid' }
    }
    // process() turns IPv4-mapped (::ffff:a.b.c.d) into the IPv4 address the socket reaches.
    return classifyParsed(ipaddr.process(canonical))
  }
  return { forbidden: true, range: 'invalid' }
}

/** True when nothing may be delivered to `address` (see classifyAddress). */
export function isForbiddenAddress (address: string): boolean {
  return classifyAddress(address).forbidden
}

function classifyParsed (ip: ipaddr.IPv4 | ipaddr.IPv6): AddressVerdict {
  if (METADATA_ADDRESSES.has(ip.toNormalizedString())) return { forbidden: true, range: 'metadata' }
  if (ip.kind() === 'ipv4') {
    const range = ip.range()
    return { forbidden: range !== 'unicast', range }
  }
  const v6 = ip as ipaddr.IPv6
  // Translation prefixes reach the IPv4 address they embed: judge that one.
  // NAT64 to a public IPv4 is legitimate (IPv6-only hosts behind DNS64).
  if (v6.match(NAT64_WELL_KNOWN)) return embedded('nat64', v6.toByteArray().slice(12, 16))
  const range = v6.range()
  if (range === '6to4') return embedded('6to4', v6.toByteArray().slice(2, 6))
  // Refused outright, among the other special ranges: Teredo (the IPv4 it
  // reaches is obfuscated and relay-dependent), 64:ff9b:1::/48 (local-use
  // NAT64 whose embedding depends on a prefix length we cannot know),
  // rfc6145 (SIIT-translated, not routed).
  if (range !== 'unicast') return { forbidden: true, range }
  if (v6.match(IPV4_COMPATIBLE)) return { forbidden: true, range: 'ipv4Compatible' }
  if (!v6.match(GLOBAL_UNICAST_V6)) return { forbidden: true, range: 'reserved' }
  return { forbidden: false, range }
}

function embedded (via: string, bytes: number[]): AddressVerdict {
  const inner = classifyParsed(ipaddr.fromByteArray(bytes))
  return { forbidden: inner.forbidden, range: `${via}:${inner.range}` }
}

const RANGE_WORDS: Record<string, string> = {
  loopback: 'loopback',
  unspecified: 'unspecified',
  private: 'private',
  carrierGradeNat: 'shared (carrier-grade NAT)',
  linkLocal: 'link-local',
  uniqueLocal: 'unique-local',
  multicast: 'multicast',
  broadcast: 'broadcast',
  metadata: 'cloud metadata',
  teredo: 'Teredo',
  scoped: 'scoped',
  invalid: 'invalid',
}

function describe (range: string): string {
  const inner = range.slice(range.lastIndexOf(':') + 1)
  return RANGE_WORDS[inner] ?? 'reserved'
}

function addressRefusal (verb: 'is' | 'resolves to', verdict: AddressVerdict): string {
  return `The URL's host ${verb} a non-public address (${describe(verdict.range)}).`
}

/** `[::1]` → `::1`: URL keeps IPv6 hosts in brackets, sockets take them bare. */
function bareHost (hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
}

/**
 * The checks that need no DNS, for a host as URL spells it: an IP literal is
 * judged at once (net.connect never looks one up); a name must not be local
 * by definition, nor a single label, which the system resolver completes
 * with the server's own search domains. Undefined when nothing is wrong.
 */
function hostRefusal (hostname: string, allowPrivateNetworks: boolean): string | undefined {
  if (hostname === '') return 'The URL must name a host.'
  if (allowPrivateNetworks) return undefined
  const host = bareHost(hostname)
  if (isIP(host) !== 0) {
    const verdict = classifyAddress(host)
    return verdict.forbidden ? addressRefusal('is', verdict) : undefined
  }
  // One trailing dot is the same name, fully qualified ("localhost.").
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  if (LOCAL_NAME.test(name)) return "The URL's host is a local name."
  if (!name.includes('.')) return "The URL's host must be a fully qualified domain name."
  return undefined
}

function urlRefusal (url: URL, allowPrivateNetworks: boolean): string | undefined {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'The URL must use https or http.'
  // Credentials in a URL end up in logs and in the deliveries list.
  if (url.username !== '' || url.password !== '') return 'The URL must not contain a user name or password.'
  return hostRefusal(url.hostname, allowPrivateNetworks)
}

/** Every A and AAAA record, through the system resolver (hosts file included), as sockets resolve. */
export const systemResolve: Resolver = async (hostname) => {
  const answers = await dnsPromises.lookup(hostname, { all: true, verbatim: true })
  return answers.map((answer) => answer.address)
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA'])

/**
 * Whether `url` may be registered as a webhook endpoint. The URL is parsed
 * by WHATWG URL, which already turns 2130706433, 0177.0.0.1, 0x7f.1, 127.1
 * and full-width digits into 127.0.0.1, so only canonical hosts are judged;
 * a name is refused when ANY of its addresses is forbidden (the connection
 * could go to any of them).
 */
export async function checkWebhookUrl (url: string, options: DestinationOptions): Promise<WebhookUrlCheck> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { ok: false, reason: 'The URL is not valid.' }
  }
  const refusal = urlRefusal(parsed, options.allowPrivateNetworks)
  if (refusal !== undefined) return { ok: false, reason: refusal }
  const host = bareHost(parsed.hostname)
  if (isIP(host) !== 0) return { ok: true, url: parsed }

  let addresses: string[]
  try {
    addresses = await (options.resolve ?? systemResolve)(host)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | null)?.code
    return { ok: false, reason: code !== undefined && NOT_FOUND.has(code) ? "The URL's host name does not resolve." : "The URL's host name could not be resolved." }
  }
  if (addresses.length === 0) return { ok: false, reason: "The URL's host name does not resolve." }
  if (!options.allowPrivateNetworks) {
    for (const address of addresses) {
      const verdict = classifyAddress(address)
      if (verdict.forbidden) return { ok: false, reason: addressRefusal('resolves to', verdict) }
    }
  }
  return { ok: true, url: parsed }
}

/**
 * The checks a delivery can make before any I/O: scheme, credentials, local
 * names and forbidden IP literals. Throws ForbiddenDestinationError. The
 * addresses a name resolves to are checked by the delivery agent itself, at
 * connect time; this only gives the worker an early, clear refusal.
 */
export function assertDeliverable (url: string | URL, options: Pick<DestinationOptions, 'allowPrivateNetworks'>): void {
  let parsed: URL
  try {
    parsed = typeof url === 'string' ? new URL(url) : url
  } catch {
    throw new ForbiddenDestinationError('The URL is not valid.')
  }
  const refusal = urlRefusal(parsed, options.allowPrivateNetworks)
  if (refusal !== undefined) throw new ForbiddenDestinationError(refusal)
}

type LookupCallback = Parameters<LookupFunction>[2]

function familyOf (options: LookupOptions): 0 | 4 | 6 {
  const family: unknown = options.family
  if (family === 4 || family === 'IPv4') return 4
  if (family === 6 || family === 'IPv6') return 6
  return 0
}

/** All the addresses for `hostname`, honouring the family net asks for. */
function resolveForSocket (hostname: string, options: LookupOptions, resolver: Resolver | undefined): Promise<LookupAddress[]> {
  const family = familyOf(options)
  if (resolver === undefined) {
    return new Promise((resolve, reject) => {
      dnsLookup(hostname, { family, hints: options.hints, all: true, verbatim: true }, (error, addresses) => {
        if (error) reject(error)
        else resolve(addresses)
      })
    })
  }
  return resolver(hostname).then((answers) => answers
    .map((address) => ({ address, family: isIP(address) }))
    .filter((answer) => answer.family !== 0 && (family === 0 || answer.family === family)))
}

/**
 * A net.connect `lookup` that hands the socket only addresses it has
 * checked, so the address judged is the address connected to; none is
 * handed over when any is forbidden, as at registration. net asks for
 * `all` when it races IPv4 and IPv6 (autoSelectFamily), one address otherwise.
 */
function connectLookup (resolve: Resolver | undefined, guard: boolean): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    resolveForSocket(hostname, options, resolve).then((addresses) => {
      const first = addresses[0]
      if (first === undefined) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`)
        error.code = 'ENOTFOUND'
        callback(error, '')
        return
      }
      if (guard) {
        for (const { address } of addresses) {
          const verdict = classifyAddress(address)
          if (verdict.forbidden) {
            callback(new ForbiddenDestinationError(addressRefusal('resolves to', verdict)), '')
            return
          }
        }
      }
      if (options.all === true) callback(null, addresses)
      else callback(null, first.address, first.family)
    }, (error: NodeJS.ErrnoException) => callback(error, ''))
  }
}

/**
 * The dispatcher webhook deliveries go through.
 *
 * Guarded (allowPrivateNetworks false): every new connection resolves its
 * host through a checking `lookup` and connects to exactly the addresses
 * checked; an IP-literal host, which net.connect never looks up, and a local
 * name are refused by the connector before any socket exists. A refusal
 * rejects the request with ForbiddenDestinationError. Connections are kept
 * alive, so the check costs one lookup per connection, not per request.
 *
 * Unguarded (allowPrivateNetworks true): a plain keep-alive Agent, with no
 * check at all, so the only per-connection cost is the normal lookup.
 *
 * Redirects: `dispatcher.request()` / undici's `request()` never follow them
 * (undici 7 follows only with the redirect interceptor composed in, which
 * this agent is not), so a 3xx comes back as the response, a failed attempt
 * (§3.18). Do not deliver through `fetch`, which follows by default; if ever
 * needed, pass `redirect: 'manual'`. Do not wrap this agent in a proxy
 * agent either: the guard would then judge the proxy's address.
 */
export function createDeliveryAgent (options: DeliveryAgentOptions): Agent {
  const guard = !options.allowPrivateNetworks
  // Unguarded and without a test resolver, net.connect's own dns.lookup is used untouched.
  const lookup = guard || options.resolve !== undefined ? connectLookup(options.resolve, guard) : undefined
  const connector = buildConnector({
    timeout: options.connectTimeoutMs ?? 10_000,
    ...(lookup === undefined ? {} : { lookup }),
  })
  const connect: buildConnector.connector = guard
    ? (connectOptions, callback) => {
        const refusal = hostRefusal(connectOptions.hostname, false)
        if (refusal === undefined) {
          connector(connectOptions, callback)
          return
        }
        // Asynchronously, as a socket error would be: undici resumes its queue after the callback.
        process.nextTick(() => callback(new ForbiddenDestinationError(refusal), null))
      }
    : connector
  return new Agent({
    connect,
    ...(options.keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeoutMs }),
    ...(options.headersTimeoutMs === undefined ? {} : { headersTimeout: options.headersTimeoutMs }),
    ...(options.bodyTimeoutMs === undefined ? {} : { bodyTimeout: options.bodyTimeoutMs }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
  })
}
