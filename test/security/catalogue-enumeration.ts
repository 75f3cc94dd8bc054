import { buildTestApp } from '../helpers/app.js'
import { median } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail } from './context.js'

/**
 * Enumeration and brute force (ASVS V6.3).
 */

export const enumerationCases: AttackCase[] = [
  {
    id: 'EN-01',
    title: 'user enumeration by status and body: unknown email, wrong password and disabled user answer alike',
    source: 'ASVS 5.0 V6.3.8; RFC 6749 §10.10',
    async run (ctx, t) {
      const a = await ctx.signup('enum')
      const d = await ctx.signup('enum-disabled')
      await ctx.app.db.user.update({ where: { id: d.id }, data: { disabled: true } })
      const answers = [
        await ctx.passwordGrant(`nobody-${Date.now()}@attack.test`, PASSWORD),
        await ctx.passwordGrant(a.email, 'a wrong passphrase'),
        await ctx.passwordGrant(d.email, PASSWORD),
      ]
      const shapes = answers.map((r) => JSON.stringify({ status: r.statusCode, body: r.body, cc: r.headers['cache-control'], len: r.headers['content-length'] }))
      t.equal(new Set(shapes).size, 1, `identical answers: ${shapes[0]}`)
    },
  },
  {
    id: 'EN-02',
    title: 'user enumeration by time: unknown email costs a bcrypt compare like a wrong password',
    source: 'ASVS 5.0 V6.3.8; DESIGN §3.4',
    async run (ctx, t) {
      // bcrypt cost 10 (≈ 50 ms) makes a missing compare stand out against database noise.
      const slow = await buildTestApp({ BCRYPT_COST: '10' }, { database: ctx.database })
      try {
        const email = uniqueEmail('timing')
        const signup = await slow.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
        t.equal(signup.statusCode, 201)
        const time = async (username: string) => {
          const started = process.hrtime.bigint()
          const response = await ctx.passwordGrant(username, 'a wrong passphrase', {}, slow.app)
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
    },
  },
  {
    id: 'EN-03',
    title: 'brute force: the password grant is rate-limited per IP with 429 and Retry-After',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10; RFC 9700 §4.14',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const a = await ctx.signup('bf-ip')
        const statuses: number[] = []
        for (let i = 0; i < 6; i++) {
          statuses.push((await ctx.passwordGrant(uniqueEmail(`bf-${i}`), 'guess number one', {}, limited.app, '203.0.113.7')).statusCode)
        }
        t.same(statuses.slice(0, 3), [400, 400, 400], 'the first three guesses are answered')
        t.same(statuses.slice(3), [429, 429, 429], 'then 429')
        const blocked = await ctx.passwordGrant(a.email, PASSWORD, {}, limited.app, '203.0.113.7')
        t.equal(blocked.statusCode, 429, 'even the right password is refused while limited (no oracle)')
        t.match(String(blocked.headers['retry-after']), /^\d+$/)
        t.equal((await ctx.passwordGrant(a.email, PASSWORD, {}, limited.app, '203.0.113.8')).statusCode, 200, 'another address is not affected')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'EN-04',
    title: 'brute force from rotating addresses and email spellings hits the per-account limit',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const a = await ctx.signup('bf-account')
        const spellings = [a.email, a.email.toUpperCase(), `  ${a.email}`, a.email.replace(/^./, (c) => c.toUpperCase()), a.email]
        const statuses: number[] = []
        for (const [i, spelling] of spellings.entries()) {
          statuses.push((await ctx.passwordGrant(spelling, 'guess number one', {}, limited.app, `198.51.100.${i + 1}`)).statusCode)
        }
        t.same(statuses, [400, 400, 400, 429, 429], 'one budget per account, whatever the spelling or address')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'EN-05',
    title: 'a spoofed X-Forwarded-For does not reset the per-IP limit (proxy headers not trusted by default)',
    source: 'ASVS 5.0 V6.3.1; CWE-348 (use of less trusted source)',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) {
          const response = await limited.app.inject({
            method: 'POST',
            url: '/auth/token',
            remoteAddress: '203.0.113.99',
            headers: { 'x-forwarded-for': `198.18.0.${i + 1}`, 'x-real-ip': `198.18.1.${i + 1}` },
            payload: { grant_type: 'password', username: uniqueEmail(`xff-${i}`), password: 'guess number one' },
          })
          statuses.push(response.statusCode)
        }
        t.same(statuses, [400, 400, 400, 429, 429], 'one budget for the real address')
      } finally {
        await limited.close()
      }
    },
  },
]
