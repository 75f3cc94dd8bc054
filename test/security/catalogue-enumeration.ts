import type { Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { median, PASSWORD_GRANT_PATH, type SignInPath } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail, type AttackContext } from './context.js'

/**
 * Enumeration and brute force (ASVS V6.3). Each row attacks a sign-in path
 * (attack-helpers.ts SignInPath): here the password grant; the first-party
 * section runs the same functions against the authorization challenge
 * endpoint.
 */

/** EN-01: an unknown email, a wrong password and a disabled user get the same answer. */
export async function answersAlike (ctx: AttackContext, t: Test, path: SignInPath) {
  const a = await ctx.signup('enum')
  const d = await ctx.signup('enum-disabled')
  await ctx.app.db.user.update({ where: { id: d.id }, data: { disabled: true } })
  const answers = [
    await path.password(ctx.app, `nobody-${Date.now()}@attack.test`, PASSWORD),
    await path.password(ctx.app, a.email, 'a wrong passphrase'),
    await path.password(ctx.app, d.email, PASSWORD),
  ]
  const shapes = answers.map((r) => JSON.stringify({ status: r.statusCode, body: r.body, cc: r.headers['cache-control'], len: r.headers['content-length'] }))
  t.equal(new Set(shapes).size, 1, `identical answers: ${shapes[0]}`)
}

/** EN-02: an unknown email costs a bcrypt compare like a wrong password. */
export async function timeAlike (ctx: AttackContext, t: Test, path: SignInPath) {
  // bcrypt cost 10 (≈ 50 ms) makes a missing compare stand out against database noise.
  const slow = await buildTestApp({ BCRYPT_COST: '10' }, { database: ctx.database })
  try {
    const email = uniqueEmail('timing')
    const signup = await slow.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
    t.equal(signup.statusCode, 201)
    const time = async (username: string) => {
      const started = process.hrtime.bigint()
      const response = await path.password(slow.app, username, 'a wrong passphrase')
      t.equal(response.statusCode, 400)
      return Number(process.hrtime.bigint() - started) / 1e6
    }
    const unknown: number[] = []
    const wrong: number[] = []
    for (let i = 0; i < 9; i++) {
      unknown.push(await time(`nobody-${i}-${Date.now()}@attack.test`))
      wrong.push(await time(email))
    }
    const ratio = median(unknown) / median(wrong)
    // Without the dummy compare the ratio is about 0.05 (a database miss against a 50 ms bcrypt); the band is wide for a loaded machine.
    t.ok(ratio > 0.4 && ratio < 2.5, `median unknown ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`)
  } finally {
    await slow.close()
  }
}

/** EN-03: guesses from one address are limited per IP with 429 and Retry-After. */
export async function perIpBudget (ctx: AttackContext, t: Test, path: SignInPath) {
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
  try {
    const a = await ctx.signup('bf-ip')
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      statuses.push((await path.password(limited.app, uniqueEmail(`bf-${i}`), 'guess number one', { remoteAddress: '203.0.113.7' })).statusCode)
    }
    t.same(statuses.slice(0, 3), [400, 400, 400], 'the first three guesses are answered')
    t.same(statuses.slice(3), [429, 429, 429], 'then 429')
    const blocked = await path.password(limited.app, a.email, PASSWORD, { remoteAddress: '203.0.113.7' })
    t.equal(blocked.statusCode, 429, 'even the right password is refused while limited (no oracle)')
    t.match(String(blocked.headers['retry-after']), /^\d+$/)
    t.equal((await path.password(limited.app, a.email, PASSWORD, { remoteAddress: '203.0.113.8' })).statusCode, 200, 'another address is not affected')
  } finally {
    await limited.close()
  }
}

/** EN-04: guesses at one account from rotating addresses and spellings share its budget. */
export async function perAccountBudget (ctx: AttackContext, t: Test, path: SignInPath) {
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
  try {
    const a = await ctx.signup('bf-account')
    const spellings = [a.email, a.email.toUpperCase(), `  ${a.email}`, a.email.replace(/^./, (c) => c.toUpperCase()), a.email]
    const statuses: number[] = []
    for (const [i, spelling] of spellings.entries()) {
      statuses.push((await path.password(limited.app, spelling, 'guess number one', { remoteAddress: `198.51.100.${i + 1}` })).statusCode)
    }
    t.same(statuses, [400, 400, 400, 429, 429], 'one budget per account, whatever the spelling or address')
  } finally {
    await limited.close()
  }
}

/** EN-05: X-Forwarded-For and X-Real-IP do not give a guesser new addresses. */
export async function spoofedAddressSameBudget (ctx: AttackContext, t: Test, path: SignInPath) {
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
  try {
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const response = await path.password(limited.app, uniqueEmail(`xff-${i}`), 'guess number one', {
        remoteAddress: '203.0.113.99',
        headers: { 'x-forwarded-for': `198.18.0.${i + 1}`, 'x-real-ip': `198.18.1.${i + 1}` },
      })
      statuses.push(response.statusCode)
    }
    t.same(statuses, [400, 400, 400, 429, 429], 'one budget for the real address')
  } finally {
    await limited.close()
  }
}

export const enumerationCases: AttackCase[] = [
  {
    id: 'EN-01',
    title: 'user enumeration by status and body: unknown email, wrong password and disabled user answer alike',
    source: 'ASVS 5.0 V6.3.8; RFC 6749 §10.10',
    run: (ctx, t) => answersAlike(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'EN-02',
    title: 'user enumeration by time: unknown email costs a bcrypt compare like a wrong password',
    source: 'ASVS 5.0 V6.3.8; DESIGN §3.4',
    run: (ctx, t) => timeAlike(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'EN-03',
    title: 'brute force: the password grant is rate-limited per IP with 429 and Retry-After',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10; RFC 9700 §4.14',
    run: (ctx, t) => perIpBudget(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'EN-04',
    title: 'brute force from rotating addresses and email spellings hits the per-account limit',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10',
    run: (ctx, t) => perAccountBudget(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'EN-05',
    title: 'a spoofed X-Forwarded-For does not reset the per-IP limit (proxy headers not trusted by default)',
    source: 'ASVS 5.0 V6.3.1; CWE-348 (use of less trusted source)',
    run: (ctx, t) => spoofedAddressSameBudget(ctx, t, PASSWORD_GRANT_PATH),
  },
]
