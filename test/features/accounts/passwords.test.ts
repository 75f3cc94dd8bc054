import bcrypt from 'bcrypt'
import t from 'tap'
import { Limiter, PASSWORD_MAX_BYTES, PASSWORD_MIN_BYTES, PasswordHasher, PasswordQueueFullError, passwordProblem } from '../../../src/features/accounts/passwords.js'

/**
 * Password rules of DESIGN §3.3 (8 to 72 UTF-8 bytes, never truncated,
 * common passwords refused) and the equal-cost login check of §3.4.
 */

const bytes = (s: string) => Buffer.byteLength(s, 'utf8')

t.test('length bounds are counted in UTF-8 bytes, not characters', async (t) => {
  t.equal(PASSWORD_MIN_BYTES, 8)
  t.equal(PASSWORD_MAX_BYTES, 72)

  // ASCII: one byte per character.
  t.match(passwordProblem('xk4#pq9'), /at least 8/, '7 ASCII bytes refused')
  t.equal(passwordProblem('xk4#pq9z'), null, '8 ASCII bytes accepted')
  t.equal(passwordProblem('x'.repeat(71) + 'q'), null, '72 ASCII bytes accepted')
  t.match(passwordProblem('x'.repeat(72) + 'q'), /at most 72/, '73 ASCII bytes refused')

  // Two-byte characters: 4 characters are already 8 bytes.
  const e = 'é' // U+00E9, 2 bytes
  t.equal(bytes(e.repeat(4)), 8)
  t.equal(passwordProblem('ñé' + e.repeat(2)), null, '4 two-byte characters = 8 bytes accepted')
  t.equal(passwordProblem(e.repeat(36)), null, '36 two-byte characters = 72 bytes accepted')
  t.equal(e.repeat(37).length, 37, 'only 37 UTF-16 units...')
  t.match(passwordProblem(e.repeat(37)), /at most 72 bytes/, '...but 74 bytes: refused')
  t.match(passwordProblem('x'.repeat(71) + e), /at most 72/, '71 ASCII + one 2-byte character = 73 bytes refused')

  // Three-byte (CJK) and four-byte (emoji, a surrogate pair in JS) characters.
  t.equal(passwordProblem('密码'.repeat(12)), null, '24 × 3 = 72 bytes accepted')
  t.match(passwordProblem('密'.repeat(25)), /at most 72/, '25 × 3 = 75 bytes refused')
  t.equal(passwordProblem('🔑🐙'), null, '2 emoji = 8 bytes accepted (4 UTF-16 units)')
  t.match(passwordProblem('🔑'), /at least 8/, '1 emoji = 4 bytes refused')
  t.equal(passwordProblem('🔑'.repeat(18)), null, '18 emoji = 72 bytes accepted')
  t.match(passwordProblem('🔑'.repeat(19)), /at most 72/, '19 emoji = 76 bytes refused (38 UTF-16 units)')

  // Counted after NFC normalisation, the form that is hashed.
  const decomposed = 'e\u0301' // 3 bytes, NFC "é" is 2
  t.equal(bytes(decomposed.repeat(36)), 108)
  t.equal(passwordProblem(decomposed.repeat(36)), null, 'decomposed input that is 72 bytes in NFC is accepted')
  t.match(passwordProblem(decomposed.repeat(37)), /at most 72/, '74 bytes in NFC refused')
})

t.test('common passwords are refused whatever their case', async (t) => {
  for (const common of ['password', 'PASSWORD', 'PassWord', 'iloveyou', 'ILoveYou', 'SunShine', '12345678', 'Trustno1', 'QWERTYUIOP']) {
    t.match(passwordProblem(common), /too common/, common)
  }
  // The same words made uncommon are fine.
  t.equal(passwordProblem('password horse battery'), null)
  t.equal(passwordProblem('Tr0ub4dor&3-staple'), null)
})

t.test('PasswordHasher', async (t) => {
  const hasher = new PasswordHasher(4)

  t.test('round trip, NFC-insensitive', async (t) => {
    const hash = await hasher.hash('correct horse battery')
    t.match(hash, /^\$2[aby]\$04\$/, 'bcrypt hash with the configured cost')
    t.equal(await hasher.verify('correct horse battery', hash), true)
    t.equal(await hasher.verify('correct horse batterY', hash), false)

    const nfc = 'caf\u00e9 au lait'
    const nfd = 'cafe\u0301 au lait'
    t.equal(await hasher.verify(nfd, await hasher.hash(nfc)), true, 'decomposed form matches the composed one')
    t.equal(await hasher.verify(nfc, await hasher.hash(nfd)), true, 'and the other way round')
  })

  t.test('a password over 72 bytes never matches, even when its 72-byte prefix is the real password', async (t) => {
    for (const real of ['a'.repeat(72), 'é'.repeat(36), '🔑'.repeat(18), 'x'.repeat(70) + 'é']) {
      t.equal(bytes(real), 72)
      const hash = await hasher.hash(real)
      t.equal(await hasher.verify(real, hash), true, 'the real 72-byte password matches')
      // bcrypt itself would accept these: it reads only the first 72 bytes.
      for (const longer of [real + 'x', real + 'é', real + real]) {
        t.equal(await bcrypt.compare(longer, hash), true, 'raw bcrypt truncates (the hazard)')
        t.equal(await hasher.verify(longer, hash), false, `${bytes(longer)} bytes refused`)
      }
    }
  })

  t.test('an unknown account (undefined hash) never matches and still pays for one bcrypt compare', async (t) => {
    const original = bcrypt.compare
    const calls: string[] = []
    // passwords.ts calls bcrypt.compare through the same module object.
    ;(bcrypt as { compare: unknown }).compare = (data: string, encrypted: string) => {
      calls.push(encrypted)
      return original(data, encrypted)
    }
    t.teardown(() => {
      ;(bcrypt as { compare: unknown }).compare = original
    })
    const costly = new PasswordHasher(6)

    calls.length = 0
    t.equal(await costly.verify('any password at all', undefined), false)
    t.equal(calls.length, 1, 'one bcrypt compare for an unknown account')
    t.match(calls[0], /^\$2[aby]\$06\$.{53}$/, 'against a real hash of the configured cost')

    // Even the dummy hash's own plaintext cannot log in to a missing account.
    calls.length = 0
    t.equal(await costly.verify('dummy password for timing equality', undefined), false)
    t.equal(calls.length, 1)

    calls.length = 0
    t.equal(await costly.verify('x'.repeat(200), undefined), false)
    t.equal(calls.length, 1, 'an over-long password costs the same compare')

    calls.length = 0
    const real = await costly.hash('the real password')
    t.equal(await costly.verify('a wrong password', real), false)
    t.equal(calls.length, 1, 'a wrong password: the same one compare')
    t.equal(calls[0], real)
  })

  t.test('unknown account and wrong password take about the same time', async (t) => {
    // A rough check (the benchmark bench/login-timing.ts measures it at cost 12).
    const cost = 9
    const slow = new PasswordHasher(cost)
    const real = await slow.hash('the real password')
    await slow.verify('warm up', undefined)
    const unknown: number[] = []
    const wrong: number[] = []
    const time = async (fn: () => Promise<boolean>) => {
      const start = process.hrtime.bigint()
      t.equal(await fn(), false)
      return Number(process.hrtime.bigint() - start) / 1e6
    }
    for (let i = 0; i < 9; i++) {
      unknown.push(await time(() => slow.verify(`guess ${i}`, undefined)))
      wrong.push(await time(() => slow.verify(`guess ${i}`, real)))
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const ratio = median(unknown) / median(wrong)
    t.ok(ratio > 0.5 && ratio < 2, `median unknown ${median(unknown).toFixed(1)} ms vs wrong ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`)
  })
})

t.test('the bcrypt queue is bounded by the wait it would impose: past it, a job is refused at once', async (t) => {
  // Security review finding 10: 100 concurrent logins queued without bound
  // and a real login waited 25 s. Jobs here are timers of a known length.
  const JOB_MS = 40
  const limiter = new Limiter(2)
  const job = () => new Promise<string>((resolve) => setTimeout(() => resolve('done'), JOB_MS))
  t.equal(await limiter.run(job), 'done', 'a first job measures the duration')
  const started: Promise<string>[] = []
  const refused: PasswordQueueFullError[] = []
  // Two run at once, the rest queue while their expected wait stays within 100 ms.
  for (let i = 0; i < 12; i++) {
    started.push(
      limiter.run(job, 100).catch((error: unknown) => {
        if (!(error instanceof PasswordQueueFullError)) throw error
        refused.push(error)
        return 'refused'
      })
    )
  }
  // Refusals settle before any job ends: they never waited in the queue.
  await new Promise((resolve) => setImmediate(resolve))
  const refusedAtOnce = refused.length
  const results = await Promise.all(started)
  t.ok(refusedAtOnce > 0, `${refusedAtOnce} refused before the first job finished`)
  t.equal(refused.length, refusedAtOnce, 'no job is refused after having queued')
  const served = results.filter((r) => r === 'done').length
  // 2 running + queue of up to 4 (two rounds of 2 at ~40 ms each keep the wait <= 100 ms).
  t.ok(served >= 4 && served <= 8, `${served} served, ${refused.length} refused`)
  t.ok(refused.every((e) => e.retryAfterSeconds >= 1), 'each refusal carries a Retry-After')
  t.equal(limiter.expectedWaitMs(), 0, 'the queue drains')

  const unbounded = await Promise.all(Array.from({ length: 12 }, () => limiter.run(job)))
  t.equal(unbounded.filter((r) => r === 'done').length, 12, 'without a bound every job queues and runs')
})

t.test('PasswordHasher passes its bound to the queue: a flood of verifies sheds, the rest still compare', async (t) => {
  const hasher = new PasswordHasher(10, { maxQueueWaitMs: 1 })
  const hash = await bcrypt.hash('a fine passphrase', 10)
  await hasher.verify('warm up the mean', hash)
  const outcomes = await Promise.all(
    Array.from({ length: 30 }, () =>
      hasher.verify('a fine passphrase', hash).then(
        (matches) => (matches ? 'matched' : 'mismatch'),
        (error: unknown) => (error instanceof PasswordQueueFullError ? 'shed' : 'other error')
      )
    )
  )
  t.ok(outcomes.includes('shed'), 'some verifies were shed')
  t.ok(outcomes.includes('matched'), 'the ones admitted compared')
  t.notOk(outcomes.includes('other error') || outcomes.includes('mismatch'), 'nothing else')
})
