/**
 * Password-reset timing (DESIGN §3.11): POST /auth/password-reset must take
 * the same time for an existing account, a disabled one and an unknown
 * address. Requests over HTTP to the built service in its own process, one
 * at a time, the three kinds interleaved (their order rotated); medians,
 * p10 and p90. Also the delivery latency of the known address's messages,
 * from the request to their receipt by a local SMTP server.
 *
 *   npm run build && npx tsx scripts/reset-timing.ts
 *
 * Environment: RESET_SAMPLES per kind (60), DATABASE_URL (default: a fresh
 * database on postgresql://root@127.0.0.1:5432, dropped afterwards).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { benchDatabase, envInt, machine, percentile, printTable, startService } from '../bench/lib.js'
import { TestSmtpServer } from '../test/helpers/smtp.js'

const SAMPLES = envInt('RESET_SAMPLES', 60)
const WARMUP = 5

async function timedReset (baseUrl: string, email: string): Promise<{ ms: number; answer: string; sentAt: number }> {
  const sentAt = Date.now()
  const start = process.hrtime.bigint()
  const response = await fetch(`${baseUrl}/auth/password-reset`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email }),
  })
  const answer = `${response.status} ${await response.text()}`
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, answer, sentAt }
}

const smtp = await TestSmtpServer.start()
const database = await benchDatabase('tokenauth_reset')
const service = await startService({
  DATABASE_URL: database.url,
  BCRYPT_COST: '4',
  SMTP_URL: smtp.url,
  EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '0',
  EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '0',
})
try {
  const signUp = async (label: string) => {
    const email = `${label}-${randomBytes(4).toString('hex')}@timing.test`
    const response = await fetch(`${service.baseUrl}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: `passphrase ${randomBytes(8).toString('hex')}` }),
    })
    if (response.status !== 201) throw new Error(`signup: ${response.status} ${await response.text()}`)
    return email
  }
  const known = await signUp('known')
  const disabled = await signUp('disabled')
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  await client.query('UPDATE users SET disabled = true WHERE email = $1', [disabled])
  await client.end()

  const kinds = {
    known: () => timedReset(service.baseUrl, known),
    disabled: () => timedReset(service.baseUrl, disabled),
    unknown: () => timedReset(service.baseUrl, `nobody-${randomBytes(6).toString('hex')}@timing.test`),
  }
  const names = Object.keys(kinds) as (keyof typeof kinds)[]
  for (let i = 0; i < WARMUP; i++) for (const name of names) await kinds[name]()
  await smtp.waitFor((received) => received.length >= WARMUP, 30_000)
  const before = smtp.received.length

  const samples = { known: [] as number[], disabled: [] as number[], unknown: [] as number[] }
  const answers = new Set<string>()
  const knownSentAt: number[] = []
  for (let i = 0; i < SAMPLES; i++) {
    // Rotate the order so that no kind always follows another.
    for (let j = 0; j < names.length; j++) {
      const name = names[(i + j) % names.length]!
      const result = await kinds[name]()
      samples[name].push(result.ms)
      answers.add(result.answer)
      if (name === 'known') knownSentAt.push(result.sentAt)
    }
    // Paced like a person, so each message is measured on its own, not behind a queue.
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await smtp.waitFor((received) => received.length >= before + SAMPLES, 60_000)
  const latencies = smtp.received.slice(before, before + SAMPLES).map((mail, i) => mail.receivedAt - knownSentAt[i]!)

  const row = (name: string, xs: number[]) => [name, xs.length, percentile(xs, 10).toFixed(2), percentile(xs, 50).toFixed(2), percentile(xs, 90).toFixed(2)]
  const info = machine()
  console.log(`password-reset timing: ${SAMPLES} requests per kind, interleaved; ${info.cores} cores, Node ${info.node}\n`)
  printTable(['POST /auth/password-reset', 'n', 'p10 ms', 'median ms', 'p90 ms'], [row('existing account', samples.known), row('disabled account', samples.disabled), row('unknown address', samples.unknown)])
  console.log(`\nmedian ratio unknown/known: ${(percentile(samples.unknown, 50) / percentile(samples.known, 50)).toFixed(3)}`)
  console.log(`distinct answers: ${answers.size} ${answers.size === 1 ? '(identical status and body)' : [...answers].join(' | ')}`)
  console.log()
  printTable(['delivery, request to SMTP receipt', 'n', 'p10 ms', 'median ms', 'p90 ms'], [row('existing account', latencies)])
} finally {
  await service.close()
  await database.drop()
  await smtp.stop()
}
