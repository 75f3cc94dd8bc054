/**
 * Login timing: an unknown email must cost what a wrong password costs
 * (DESIGN §3.4), so response times do not tell which accounts exist.
 * Password grants over HTTP, one at a time, the two kinds interleaved (and
 * the order within each pair alternated); medians, p10 and p90.
 *
 *   npx tsx bench/login-timing.ts
 *
 * Environment: BCRYPT_COST (default 12, the service's default),
 * BENCH_SAMPLES per kind (50), DATABASE_URL (default: a fresh database on
 * postgresql://root@127.0.0.1:5432, dropped afterwards).
 */
import { randomBytes } from 'node:crypto'
import { benchDatabase, envInt, machine, percentile, printTable, startService, writeResults, type RunningService } from './lib.js'

const SAMPLES = envInt('BENCH_SAMPLES', 50)
const BCRYPT_COST = envInt('BCRYPT_COST', 12)
const WARMUP = 3

interface Sample {
  ms: number
  status: number
  body: string
}

async function passwordGrant (service: RunningService, username: string, password: string): Promise<Sample> {
  const body = new URLSearchParams({ grant_type: 'password', username, password }).toString()
  const start = process.hrtime.bigint()
  const response = await fetch(`${service.baseUrl}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  })
  const text = await response.text()
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  return { ms, status: response.status, body: text }
}

const database = await benchDatabase('tokenauth_bench')
let service: RunningService | undefined
try {
  service = await startService({ DATABASE_URL: database.url, BCRYPT_COST: String(BCRYPT_COST) })
  const email = `timing-${randomBytes(4).toString('hex')}@example.test`
  const password = `the real password ${randomBytes(8).toString('hex')}`
  const signup = await fetch(`${service.baseUrl}/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${await signup.text()}`)

  const unknown = () => passwordGrant(service!, `nobody-${randomBytes(6).toString('hex')}@example.test`, password)
  const wrong = () => passwordGrant(service!, email, `not the password ${randomBytes(6).toString('hex')}`)

  const info = machine()
  console.log(`login timing: ${SAMPLES} + ${SAMPLES} password grants, bcrypt cost ${BCRYPT_COST}; ${info.cores} cores, Node ${info.node}`)
  // Warm-up: the first compare against the dummy hash waits for it to be computed.
  for (let i = 0; i < WARMUP; i++) {
    await unknown()
    await wrong()
  }

  const samples = { unknown: [] as Sample[], wrong: [] as Sample[] }
  for (let i = 0; i < SAMPLES; i++) {
    if (i % 2 === 0) {
      samples.unknown.push(await unknown())
      samples.wrong.push(await wrong())
    } else {
      samples.wrong.push(await wrong())
      samples.unknown.push(await unknown())
    }
  }

  const stats = (xs: Sample[]) => {
    const ms = xs.map((s) => s.ms)
    return { p10: percentile(ms, 10), median: percentile(ms, 50), p90: percentile(ms, 90), mean: ms.reduce((a, b) => a + b, 0) / ms.length }
  }
  const u = stats(samples.unknown)
  const w = stats(samples.wrong)
  const ratio = u.median / w.median

  // Same answer, byte for byte: status and body.
  const answers = new Set([...samples.unknown, ...samples.wrong].map((s) => `${s.status} ${s.body}`))

  console.log()
  printTable(
    ['password grant', 'n', 'p10 ms', 'median ms', 'p90 ms', 'mean ms'],
    [
      ['unknown email', samples.unknown.length, u.p10.toFixed(1), u.median.toFixed(1), u.p90.toFixed(1), u.mean.toFixed(1)],
      ['wrong password', samples.wrong.length, w.p10.toFixed(1), w.median.toFixed(1), w.p90.toFixed(1), w.mean.toFixed(1)],
    ]
  )
  console.log(`\nmedian ratio unknown/wrong: ${ratio.toFixed(3)}`)
  console.log(`distinct answers: ${answers.size} ${answers.size === 1 ? '(identical status and body)' : `(DIFFERENT: ${[...answers].join(' | ')})`}`)
  console.log(`cores ${info.cores}, Node ${info.node}, BCRYPT_COST ${BCRYPT_COST}`)

  const path = await writeResults('login-timing.json', {
    at: new Date().toISOString(),
    machine: info,
    settings: { samples: SAMPLES, bcryptCost: BCRYPT_COST },
    unknownEmail: u,
    wrongPassword: w,
    medianRatio: ratio,
    identicalAnswers: answers.size === 1,
    answer: [...answers][0],
  })
  console.log(`results written to ${path}`)
} finally {
  await service?.close()
  await database.drop()
}
