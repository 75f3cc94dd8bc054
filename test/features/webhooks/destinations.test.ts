import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import {
  assertDeliverable,
  checkWebhookUrl,
  classifyAddress,
  createDeliveryAgent,
  ForbiddenDestinationError,
  isForbiddenAddress,
  type Resolver,
} from '../../../src/features/webhooks/destinations.js'

/**
 * The webhook destination guard (src/features/webhooks/destinations.ts,
 * DESIGN §3.18): no delivery to loopback, private, link-local, unique-local
 * or metadata addresses, in any spelling, at registration and at connect
 * time, unless private networks are allowed; redirects never followed.
 * Rows WH-SSRF-nn are listed in test/security/SSRF-ROWS.md.
 */

const PUBLIC_V4 = '93.184.215.14'
const PUBLIC_V6 = '2606:4700:4700::1111'

/** A resolver answering `addresses` and counting its calls. */
function fakeResolver (...answers: string[][]): Resolver & { calls: number } {
  const resolver = Object.assign(async () => {
    const answer = answers[Math.min(resolver.calls, answers.length - 1)] ?? []
    resolver.calls++
    return answer
  }, { calls: 0 })
  return resolver
}

function failingResolver (code: string): Resolver {
  return async (hostname) => {
    throw Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code })
  }
}

// WH-SSRF-01..10 as addresses, each with the range it must be refused as.
const FORBIDDEN_ADDRESSES: Array<[address: string, range: string]> = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'carrierGradeNat'],
  ['100.127.255.254', 'carrierGradeNat'],
  ['169.254.0.1', 'linkLocal'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'reserved'], // TEST-NET-1
  ['198.51.100.1', 'reserved'], // TEST-NET-2
  ['203.0.113.1', 'reserved'], // TEST-NET-3
  ['198.18.0.1', 'reserved'], // benchmarking
  ['192.88.99.1', 'reserved'], // 6to4 relay anycast
  ['169.254.169.254', 'metadata'], // AWS, GCP, Azure, OCI…
  ['169.254.170.2', 'metadata'], // AWS ECS task credentials
  ['100.100.100.200', 'metadata'], // Alibaba Cloud
  ['168.63.129.16', 'metadata'], // Azure WireServer: public, yet refused
  ['fd00:ec2::254', 'metadata'], // AWS IPv6
  ['::1', 'loopback'],
  ['::', 'unspecified'],
  ['fe80::1', 'linkLocal'],
  ['febf:ffff::1', 'linkLocal'],
  ['fe80::1%eth0', 'scoped'],
  ['fc00::1', 'uniqueLocal'],
  ['fd12:3456:789a::1', 'uniqueLocal'],
  ['ff02::1', 'multicast'],
  ['fec0::1', 'deprecatedSiteLocal'],
  ['100::1', 'discard'],
  ['2001:db8::1', 'reserved'], // documentation
  ['3fff::1', 'reserved'], // documentation (RFC 9637)
  ['5f00::1', 'segmentRouting'],
  ['4000::1', 'reserved'], // outside 2000::/3
  ['::ffff:127.0.0.1', 'loopback'], // IPv4-mapped, dotted
  ['::ffff:7f00:1', 'loopback'], // IPv4-mapped, hex
  ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
  ['::ffff:10.0.0.1', 'private'],
  ['::ffff:a9fe:a9fe', 'metadata'],
  ['::127.0.0.1', 'ipv4Compatible'], // ipaddr.js alone would read this as ::ffff:127.0.0.1
  ['::7f00:1', 'ipv4Compatible'],
  ['::8.8.8.8', 'ipv4Compatible'], // deprecated, never routed, whatever it embeds
  ['::ffff:0:7f00:1', 'rfc6145'],
  ['64:ff9b::7f00:1', 'nat64:loopback'],
  ['64:ff9b::127.0.0.1', 'nat64:loopback'],
  ['64:ff9b::a9fe:a9fe', 'nat64:metadata'],
  ['64:ff9b::a00:1', 'nat64:private'],
  ['64:ff9b:1::a00:1', 'rfc6052'], // local-use NAT64: embedding unknowable
  ['2002:7f00:1::', '6to4:loopback'],
  ['2002:a9fe:a9fe::1', '6to4:metadata'],
  ['2002:c0a8:101::1', '6to4:private'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ['2001:2::1', 'benchmarking'],
  ['', 'invalid'],
  ['localhost', 'invalid'],
  ['127.1', 'invalid'], // non-canonical: never judged, refused
  ['0x7f.0.0.1', 'invalid'],
  ['010.0.0.1', 'invalid'],
  ['[::1]', 'invalid'],
]

const ALLOWED_ADDRESSES = [
  '8.8.8.8',
  '1.1.1.1',
  PUBLIC_V4,
  '100.63.255.255', // just below 100.64/10
  '100.128.0.1', // just above
  '172.32.0.1', // just above 172.16/12
  '169.255.0.1',
  PUBLIC_V6,
  '2001:4860:4860::8888',
  '2a00:1450:4001:80b::200e',
  '::ffff:8.8.8.8', // IPv4-mapped public: the socket reaches 8.8.8.8
  '64:ff9b::808:808', // NAT64 of 8.8.8.8 (IPv6-only hosts behind DNS64)
  '2002:808:808::1', // 6to4 of 8.8.8.8
]

t.test('isForbiddenAddress: every non-public range and spelling is refused, public unicast is not', async (t) => {
  for (const [address, range] of FORBIDDEN_ADDRESSES) {
    t.equal(isForbiddenAddress(address), true, `${JSON.stringify(address)} is forbidden`)
    t.equal(classifyAddress(address).range, range, `${JSON.stringify(address)} is ${range}`)
  }
  for (const address of ALLOWED_ADDRESSES) {
    t.equal(isForbiddenAddress(address), false, `${address} is allowed`)
  }
})

// WH-SSRF-01..10 as URLs: forms WHATWG URL turns into a forbidden literal; none is ever resolved.
const FORBIDDEN_LITERAL_URLS = [
  'http://127.0.0.1/',
  'https://127.0.0.1:8443/hook',
  'http://2130706433/', // decimal
  'http://017700000001/', // octal, whole
  'http://0177.0.0.1/', // octal, dotted
  'http://0x7f.1/', // hex, short
  'http://0x7f000001/', // hex, whole
  'http://0x7f.0x0.0x0.0x1/',
  'http://127.1/', // short form
  'http://%31%32%37.0.0.1/', // percent-encoded
  'http://１２７．０．０．１/', // full-width digits and dots
  'http://0/', // 0.0.0.0: Linux connects it to loopback
  'http://[::]/',
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:7f00:1]/',
  'http://[0:0:0:0:0:ffff:7f00:1]/',
  'http://[::127.0.0.1]/',
  'http://[64:ff9b::7f00:1]/',
  'http://[2002:7f00:1::]/',
  'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.0.1:8080/',
  'http://100.64.0.1/',
  'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
  'http://169.254.170.2/v2/credentials',
  'http://100.100.100.200/latest/meta-data/',
  'http://168.63.129.16/machine?comp=goalstate',
  'http://[fd00:ec2::254]/latest/meta-data/',
  'http://[fe80::1]/',
  'http://[fc00::1]/',
  'http://224.0.0.1/',
  'http://255.255.255.255/',
]

t.test('checkWebhookUrl: a forbidden IP literal, in any spelling, is refused without a lookup', async (t) => {
  const resolve = fakeResolver([PUBLIC_V4])
  for (const url of FORBIDDEN_LITERAL_URLS) {
    const result = await checkWebhookUrl(url, { allowPrivateNetworks: false, resolve })
    t.match(result, { ok: false, reason: /^The URL's host is a non-public address \(.+\)\.$/ }, url)
  }
  t.equal(resolve.calls, 0, 'no literal is resolved')
  t.match(await checkWebhookUrl('http://[::1]/', { allowPrivateNetworks: false }), { reason: /\(loopback\)/ })
  t.match(await checkWebhookUrl('http://169.254.169.254/', { allowPrivateNetworks: false }), { reason: /\(cloud metadata\)/ })
  t.match(await checkWebhookUrl('http://[64:ff9b::a00:1]/', { allowPrivateNetworks: false }), { reason: /\(private\)/ }, 'an embedded address is named')
})

t.test('checkWebhookUrl: local names are refused whatever they resolve to', async (t) => {
  const resolve = fakeResolver([PUBLIC_V4])
  for (const url of [
    'http://localhost/',
    'http://LOCALHOST:3000/',
    'http://localhost./',
    'http://api.localhost/',
    'http://printer.local/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://localhost.localdomain/',
    'http://nas.home.arpa/',
  ]) {
    t.match(await checkWebhookUrl(url, { allowPrivateNetworks: false, resolve }), { ok: false, reason: "The URL's host is a local name." }, url)
  }
  t.match(await checkWebhookUrl('http://intranet/', { allowPrivateNetworks: false, resolve }), { ok: false, reason: /fully qualified/ }, 'a single label (completed by the search domains)')
  t.equal(resolve.calls, 0)
})

t.test('checkWebhookUrl: a name is refused when ANY of its addresses is forbidden', async (t) => {
  const cases: Array<[answer: string[], words: string]> = [
    [['127.0.0.1'], 'loopback'], // e.g. 127.0.0.1.nip.io, localtest.me
    [['10.1.2.3'], 'private'],
    [['169.254.169.254'], 'cloud metadata'],
    [['fd00:ec2::254'], 'cloud metadata'],
    [['::1'], 'loopback'],
    [['::ffff:127.0.0.1'], 'loopback'],
    [['64:ff9b::a9fe:a9fe'], 'cloud metadata'],
    [['fe80::1'], 'link-local'],
    [[PUBLIC_V4, '10.0.0.5'], 'private'], // one public, one private
    [['192.168.0.10', PUBLIC_V4], 'private'],
    [[PUBLIC_V4, PUBLIC_V6, 'fc00::5'], 'unique-local'],
    [[PUBLIC_V4, 'not-an-address'], 'invalid'], // a resolver's garbage fails closed
  ]
  for (const [answer, words] of cases) {
    const result = await checkWebhookUrl('https://hooks.example.com/events', { allowPrivateNetworks: false, resolve: fakeResolver(answer) })
    t.same(result, { ok: false, reason: `The URL's host resolves to a non-public address (${words}).` }, answer.join(', '))
  }
})

t.test('checkWebhookUrl: malformed, non-HTTP, credentialed and unresolvable URLs are refused with a clear reason', async (t) => {
  const resolve = fakeResolver([PUBLIC_V4])
  const cases: Array<[url: string, reason: RegExp]> = [
    ['not a url', /not valid/],
    ['', /not valid/],
    ['//hooks.example.com/x', /not valid/],
    ['http://[fe80::1%25eth0]/', /not valid/], // zone ids are not URL syntax
    ['http://exa mple.com/', /not valid/],
    ['ftp://hooks.example.com/', /https or http/],
    ['file:///etc/passwd', /https or http/],
    ['gopher://hooks.example.com:25/_HELO', /https or http/],
    ['javascript:alert(1)', /https or http/],
    ['data:text/plain,hi', /https or http/],
    ['ws://hooks.example.com/', /https or http/],
    ['https://user:s3cret@hooks.example.com/', /user name or password/],
    ['https://user@hooks.example.com/', /user name or password/],
    ['https://:s3cret@hooks.example.com/', /user name or password/],
    ['http://hooks.example.com:s3cret@127.0.0.1/', /user name or password/], // the "host" is userinfo
  ]
  for (const [url, reason] of cases) {
    const result = await checkWebhookUrl(url, { allowPrivateNetworks: false, resolve })
    t.match(result, { ok: false, reason }, JSON.stringify(url))
    t.notMatch(JSON.stringify(result), /s3cret/, 'the reason echoes no credential')
  }
  t.equal(resolve.calls, 0)

  const secretUrl = 'https://nowhere.example.com/hook?token=s3cret'
  for (const [resolver, reason] of [
    [failingResolver('ENOTFOUND'), "The URL's host name does not resolve."],
    [failingResolver('ENODATA'), "The URL's host name does not resolve."],
    [fakeResolver([]), "The URL's host name does not resolve."],
    [failingResolver('EAI_AGAIN'), "The URL's host name could not be resolved."],
  ] as const) {
    t.same(await checkWebhookUrl(secretUrl, { allowPrivateNetworks: false, resolve: resolver }), { ok: false, reason })
    t.same(await checkWebhookUrl(secretUrl, { allowPrivateNetworks: true, resolve: resolver }), { ok: false, reason }, 'also when private networks are allowed')
  }
  t.match(await checkWebhookUrl('https://name-that-does-not-exist.invalid/', { allowPrivateNetworks: false }), { ok: false, reason: /does not resolve|could not be resolved/ }, 'the system resolver (RFC 6761 .invalid)')
})

t.test('checkWebhookUrl: public destinations are accepted, normalised', async (t) => {
  const resolve = fakeResolver([PUBLIC_V4, PUBLIC_V6])
  const named = await checkWebhookUrl('HTTPS://Hooks.Example.com:8443/events?x=1', { allowPrivateNetworks: false, resolve })
  t.ok(named.ok)
  if (named.ok) t.equal(named.url.href, 'https://hooks.example.com:8443/events?x=1')
  t.equal(resolve.calls, 1)
  for (const url of ['http://8.8.8.8/hook', `http://[${PUBLIC_V6}]/hook`, 'http://[::ffff:8.8.8.8]/', 'http://[64:ff9b::808:808]/', 'https://hooks.example.com./']) {
    t.match(await checkWebhookUrl(url, { allowPrivateNetworks: false, resolve }), { ok: true }, url)
  }
})

t.test('checkWebhookUrl with allowPrivateNetworks: every well-formed, resolvable URL is accepted', async (t) => {
  const resolve = fakeResolver(['127.0.0.1'])
  for (const url of [...FORBIDDEN_LITERAL_URLS, 'http://localhost:3000/hook', 'http://printer.local/', 'http://intranet/', 'https://hooks.example.com/']) {
    t.match(await checkWebhookUrl(url, { allowPrivateNetworks: true, resolve }), { ok: true }, url)
  }
  t.match(await checkWebhookUrl('ftp://localhost/', { allowPrivateNetworks: true, resolve }), { ok: false, reason: /https or http/ })
  t.match(await checkWebhookUrl('http://u:p@localhost/', { allowPrivateNetworks: true, resolve }), { ok: false, reason: /user name or password/ })
})

t.test('assertDeliverable: the checks a delivery makes before any I/O', async (t) => {
  for (const url of ['http://127.0.0.1/', 'http://[::ffff:7f00:1]/', 'http://localhost:3000/', 'ftp://hooks.example.com/', 'https://u:p@hooks.example.com/', 'nonsense']) {
    t.throws(() => assertDeliverable(url, { allowPrivateNetworks: false }), ForbiddenDestinationError, url)
  }
  t.throws(() => assertDeliverable(new URL('http://169.254.169.254/'), { allowPrivateNetworks: false }), { name: 'ForbiddenDestinationError', code: 'ERR_WEBHOOK_FORBIDDEN_DESTINATION', message: /cloud metadata/ })
  t.doesNotThrow(() => assertDeliverable('https://hooks.example.com/', { allowPrivateNetworks: false }))
  t.doesNotThrow(() => assertDeliverable('http://127.0.0.1:3000/', { allowPrivateNetworks: true }))
  t.throws(() => assertDeliverable('file:///etc/passwd', { allowPrivateNetworks: true }), ForbiddenDestinationError)
})

/** A loopback HTTP server counting its TCP connections and requests. */
async function receiver (t: Test, status = 200, headers: Record<string, string> = {}) {
  const seen = { connections: 0, requests: 0 }
  const server: Server = createServer((req, res) => {
    seen.requests++
    req.resume()
    req.on('end', () => res.writeHead(status, headers).end('ok'))
  })
  server.on('connection', () => { seen.connections++ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { seen, port: (server.address() as AddressInfo).port }
}

async function refusal (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  return undefined
}

t.test('delivery: DNS rebinding to loopback is refused at connect time, nothing reaches the server', async (t) => {
  const { seen, port } = await receiver(t)
  const url = `http://hooks.example.com:${port}/events`
  // Public for the registration lookup, loopback for every later one.
  const resolve = fakeResolver([PUBLIC_V4], ['127.0.0.1'])
  t.match(await checkWebhookUrl(url, { allowPrivateNetworks: false, resolve }), { ok: true }, 'registration sees a public address')

  const agent = createDeliveryAgent({ allowPrivateNetworks: false, resolve, connectTimeoutMs: 2000 })
  t.teardown(() => agent.close())
  const error = await refusal(request(url, { dispatcher: agent, method: 'POST', body: '{}' }))
  t.ok(error instanceof ForbiddenDestinationError, 'the request fails with ForbiddenDestinationError')
  t.match(error, { message: "The URL's host resolves to a non-public address (loopback).", code: 'ERR_WEBHOOK_FORBIDDEN_DESTINATION' })
  t.equal(resolve.calls, 2, 'the delivery looked the name up again')

  // An answer mixing a public and a loopback address hands the socket neither.
  const mixed = createDeliveryAgent({ allowPrivateNetworks: false, resolve: fakeResolver([PUBLIC_V4, '127.0.0.1']) })
  t.teardown(() => mixed.close())
  t.ok(await refusal(request(url, { dispatcher: mixed })) instanceof ForbiddenDestinationError, 'one forbidden address among several')

  // TLS connections take the same lookup.
  const https = createDeliveryAgent({ allowPrivateNetworks: false, resolve: fakeResolver(['::ffff:127.0.0.1']) })
  t.teardown(() => https.close())
  t.ok(await refusal(request(`https://hooks.example.com:${port}/`, { dispatcher: https })) instanceof ForbiddenDestinationError, 'https')

  t.same(seen, { connections: 0, requests: 0 }, 'the loopback server saw no connection at all')
})

t.test('delivery: IP literals and local names, which net.connect never looks up, are refused by the connector', async (t) => {
  const { seen, port } = await receiver(t)
  const resolve = fakeResolver([PUBLIC_V4])
  const agent = createDeliveryAgent({ allowPrivateNetworks: false, resolve })
  t.teardown(() => agent.close())
  for (const url of [`http://127.0.0.1:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`, `http://2130706433:${port}/`, `http://localhost:${port}/`, `https://127.0.0.1:${port}/`]) {
    const error = await refusal(request(url, { dispatcher: agent, method: 'POST', body: '{}' }))
    t.ok(error instanceof ForbiddenDestinationError, url)
  }
  t.equal(resolve.calls, 0, 'no lookup was needed to refuse')
  t.same(seen, { connections: 0, requests: 0 })
})

t.test('delivery with allowPrivateNetworks: the same setup reaches the loopback server, over kept-alive connections', async (t) => {
  const { seen, port } = await receiver(t)
  const resolve = fakeResolver([PUBLIC_V4], ['127.0.0.1'])
  t.match(await checkWebhookUrl(`http://hooks.example.com:${port}/`, { allowPrivateNetworks: true, resolve }), { ok: true })
  const agent = createDeliveryAgent({ allowPrivateNetworks: true, resolve })
  t.teardown(() => agent.close())
  for (let i = 0; i < 20; i++) {
    const response = await request(`http://hooks.example.com:${port}/events`, { dispatcher: agent, method: 'POST', body: '{}' })
    t.equal(response.statusCode, 200)
    await response.body.text()
  }
  // Sequential requests may open a second socket (undici frees the first
  // just after the body ends), never one per request.
  t.equal(seen.requests, 20)
  t.ok(seen.connections <= 2, `twenty deliveries over ${seen.connections} kept-alive connection(s)`)
  t.equal(resolve.calls, 1 + seen.connections, 'one lookup at registration, then one per connection, none per request')

  // Without a test resolver, the system one: localhost and literals alike.
  const plain = createDeliveryAgent({ allowPrivateNetworks: true })
  t.teardown(() => plain.close())
  for (const url of [`http://localhost:${port}/`, `http://127.0.0.1:${port}/`]) {
    const response = await request(url, { dispatcher: plain })
    t.equal(response.statusCode, 200, url)
    await response.body.text()
  }
})

t.test('delivery: a redirect is never followed; the caller sees the 3xx', async (t) => {
  const target = await receiver(t)
  const redirecting = await receiver(t, 302, { location: `http://127.0.0.1:${target.port}/stolen` })
  const agent = createDeliveryAgent({ allowPrivateNetworks: true })
  t.teardown(() => agent.close())
  for (const method of ['POST', 'GET'] as const) {
    const response = await request(`http://127.0.0.1:${redirecting.port}/events`, { dispatcher: agent, method, body: method === 'POST' ? '{}' : null })
    t.equal(response.statusCode, 302, method)
    t.equal(response.headers.location, `http://127.0.0.1:${target.port}/stolen`)
    await response.body.text()
  }
  t.equal(redirecting.seen.requests, 2)
  t.same(target.seen, { connections: 0, requests: 0 }, 'the redirect target received nothing')
})
