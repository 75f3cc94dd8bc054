/**
 * Figure 7: authorization-code exchanges per second against refreshes per
 * second, at the same concurrency, in alternating rounds of one run (target
 * >= 0.8). An exchange spends a code, starts a session with the sign-in the
 * code carries, and signs an access token and an ID token; a refresh rotates
 * a session and signs an access token.
 *
 * Codes are made beforehand for each round through the authorization
 * endpoint with a browser session (a first-party client: no consent), as
 * many as the round can spend, and used once each.
 *
 *   npx tsx bench/code-exchange.ts
 *
 * Environment: DATABASE_URL (default: a fresh database, dropped afterwards),
 * BENCH_CONNECTIONS (16), BENCH_DURATION seconds per measurement (5),
 * BENCH_ROUNDS (3), BCRYPT_COST (12).
 */
import { createHash, randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { benchDatabase, envInt, machine, percentile, printTable, runLoad, runLoadProcess, startService, writeResults, type RunningService } from './lib.js'

const CLIENT_ID = 'mobile'
const REDIRECT_URI = 'http://127.0.0.1/callback'

export interface CodeExchangeOptions {
  connections: number
  duration: number
  rounds: number
  databaseUrl: string
}

export interface CodeExchangeResult {
  exchangesPerSecond: number
  refreshesPerSecond: number
  ratio: number
  rounds: { exchanges: number; refreshes: number; exchangeP99Ms: number }[]
}

export async function measureCodeExchange (service: RunningService, options: CodeExchangeOptions): Promise<CodeExchangeResult> {
  // The seeded mobile client is native: a loopback redirect URI lets it use the code flow.
  const db = new pg.Client({ connectionString: options.databaseUrl })
  await db.connect()
  await db.query('UPDATE oauth_clients SET redirect_uris = $1 WHERE id = $2', [[REDIRECT_URI], CLIENT_ID])
  await db.end()
  // Past the registry's cache of the client (5 s).
  await new Promise((resolve) => setTimeout(resolve, 5_500))

  // As many people as connections, each signed in in a browser of their own: exchanges in flight are
  // different users' (one user's concurrent sign-ins would all queue on their account row's share lock).
  const people = Array.from({ length: options.connections }, (_, i) => ({ email: `exchange-${i}-${randomBytes(4).toString('hex')}@bench.test`, password: `bench passphrase ${i}` }))
  const cookies: string[] = []
  for (const person of people) {
    const signup = await service.inject({ method: 'POST', url: '/auth/signup', payload: person, remoteAddress: '10.9.0.1' })
    if (signup.statusCode !== 201) throw new Error(`signup: ${signup.statusCode} ${signup.body}`)
    cookies.push(await browserSignIn(service.baseUrl, new URL(service.config.issuer).origin, person.email, person.password))
  }
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')

  const rounds: CodeExchangeResult['rounds'] = []
  for (let round = 0; round < options.rounds; round++) {
    const tokens = await refreshTokens(service, people, 2 * options.connections)
    const refresh = await runLoadProcess({
      url: service.baseUrl, method: 'POST', path: '/auth/token', headers: { 'content-type': 'application/json' }, tokens, connections: options.connections, duration: options.duration,
    })
    const refreshes = refresh.ok / refresh.seconds
    const wanted = Math.max(2_000, Math.ceil(refreshes * options.duration * 1.5))
    const codes = await mintCodes(service.baseUrl, cookies, challenge, wanted, options.connections)
    const bodies = codes.map((code) => JSON.stringify({ grant_type: 'authorization_code', client_id: CLIENT_ID, code, redirect_uri: REDIRECT_URI, code_verifier: verifier }))
    const exchange = await runLoad({ url: service.baseUrl, method: 'POST', path: '/auth/token', headers: { 'content-type': 'application/json' }, bodies, connections: options.connections, duration: options.duration })
    if (exchange.requests > codes.length) console.warn(`round ${round}: the codes ran out (${exchange.requests} requests, ${codes.length} codes)`)
    rounds.push({ exchanges: exchange.okPerSecond, refreshes, exchangeP99Ms: exchange.latencyMs.p99 })
  }
  const exchangesPerSecond = percentile(rounds.map((r) => r.exchanges), 50)
  const refreshesPerSecond = percentile(rounds.map((r) => r.refreshes), 50)
  return { exchangesPerSecond, refreshesPerSecond, ratio: exchangesPerSecond / refreshesPerSecond, rounds }
}

/** Signs in on the hosted pages as a browser would; answers the browser session's Cookie header. */
async function browserSignIn (baseUrl: string, origin: string, email: string, password: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  const page = await fetch(authorizeUrl(baseUrl, challenge), { redirect: 'manual' })
  const jar = new Map<string, string>()
  const absorb = (response: Response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      jar.set(pair.slice(0, eq), pair.slice(eq + 1))
    }
  }
  absorb(page)
  const html = await page.text()
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? ''
  const header = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
  const signedIn = await fetch(`${baseUrl}/oauth/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin, cookie: header() },
    body: new URLSearchParams({ interaction: field('interaction'), csrf: field('csrf'), email, password }).toString(),
  })
  if (signedIn.status !== 303) throw new Error(`hosted sign-in: ${signedIn.status} ${await signedIn.text()}`)
  absorb(signedIn)
  return header()
}

function authorizeUrl (baseUrl: string, challenge: string): string {
  const query = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256', state: 's', nonce: 'n',
  })
  return `${baseUrl}/oauth/authorize?${query.toString()}`
}

/**
 * `count` codes through the authorization endpoint, each browser session
 * signing its person in at once (single sign-on), in turn: code i is person
 * i's (mod the number of people), the order the exchanges then go in.
 */
async function mintCodes (baseUrl: string, cookies: string[], challenge: string, count: number, concurrency: number): Promise<string[]> {
  const codes: string[] = []
  const url = authorizeUrl(baseUrl, challenge)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const index = next++
      const response = await fetch(url, { redirect: 'manual', headers: { cookie: cookies[index % cookies.length]! } })
      const code = new URL(response.headers.get('location') ?? 'x:', baseUrl).searchParams.get('code')
      if (!code) throw new Error(`authorize: ${response.status} ${response.headers.get('location')}`)
      codes[index] = code
    }
  }))
  return codes
}

/** Live refresh tokens of the same client and people, from password logins (in the service process: no address budget spent). */
async function refreshTokens (service: RunningService, people: { email: string; password: string }[], count: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < count; i++) {
    const { email, password } = people[i % people.length]!
    const response = await service.inject({ method: 'POST', url: '/auth/token', remoteAddress: '10.9.0.2', payload: { grant_type: 'password', username: email, password, client_id: CLIENT_ID } })
    if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
    tokens.push((JSON.parse(response.body) as { refresh_token: string }).refresh_token)
  }
  return tokens
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const database = await benchDatabase('bench_code_exchange')
  const service = await startService({ DATABASE_URL: database.url, BCRYPT_COST: String(envInt('BCRYPT_COST', 12)) })
  try {
    const result = await measureCodeExchange(service, {
      connections: envInt('BENCH_CONNECTIONS', 16),
      duration: envInt('BENCH_DURATION', 5),
      rounds: envInt('BENCH_ROUNDS', 3),
      databaseUrl: database.url,
    })
    printTable(['round', 'exchanges/s', 'refreshes/s', 'exchange p99 ms'], result.rounds.map((r, i) => [i + 1, r.exchanges.toFixed(0), r.refreshes.toFixed(0), r.exchangeP99Ms.toFixed(1)]))
    console.log(`median exchanges/s ${result.exchangesPerSecond.toFixed(0)}, refreshes/s ${result.refreshesPerSecond.toFixed(0)}, ratio ${result.ratio.toFixed(2)} (target >= 0.8) on ${JSON.stringify(machine())}`)
    await writeResults('code-exchange.json', { machine: machine(), ...result })
  } finally {
    await service.close()
    await database.drop()
  }
}
