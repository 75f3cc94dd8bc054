import { buildTestApp, json } from '../helpers/app.js'
import * as users from '../helpers/users.js'
import { assertInvalidGrant, assertInvalidToken, assertNo5xx, median } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail, type AttackContext } from './context.js'

/**
 * Account recovery and email (DESIGN §3.11).
 */

/**
 * The token of the newest message of `template` queued for `to`, read as the
 * development mailbox shows it (the catalogue's service has no SMTP_URL).
 */
async function mailedToken (ctx: AttackContext, to: string, template: string): Promise<string> {
  await ctx.app.recovery.settled()
  const row = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: to, template }, orderBy: { createdAt: 'desc' } })
  const match = /token=([A-Za-z0-9_-]{43})/.exec(ctx.app.outbox.render(row).text)
  if (!match) throw new Error(`no token in the ${template} message to ${to}`)
  return match[1]!
}

const requestReset = (ctx: AttackContext, email: string, options: { remoteAddress?: string; headers?: Record<string, string> } = {}) =>
  ctx.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, ...options })
const confirmReset = (ctx: AttackContext, token: unknown, newPassword = 'a brand new passphrase') =>
  ctx.app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token, newPassword } })

export const recoveryCases: AttackCase[] = [
  {
    id: 'RC-01',
    title: 'a reset request answers alike for an existing, disabled, unknown or malformed address, and only the existing one gets mail',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": consistent message); ASVS 5.0 V6.3.8',
    async run (ctx, t) {
      const real = await ctx.signup('rc-real')
      const disabled = await ctx.signup('rc-disabled')
      await ctx.app.db.user.update({ where: { id: disabled.id }, data: { disabled: true } })
      const unknown = uniqueEmail('rc-nobody')
      const answers = []
      for (const email of [real.email, disabled.email, unknown, 'two@@signs.test', `  ${real.email.toUpperCase()}  `]) {
        answers.push(await requestReset(ctx, email))
      }
      t.same(new Set(answers.map((a) => `${a.statusCode} ${a.body}`)).size, 1, `one answer: ${answers[0]!.statusCode} ${answers[0]!.body}`)
      await ctx.app.recovery.settled()
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: real.email, template: 'password_reset' } }), 2, 'the real account: one message per request')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: { in: [disabled.email, unknown] }, template: 'password_reset' } }), 0, 'the others: nothing')
    },
  },
  {
    id: 'RC-02',
    title: 'a reset request takes the same time for an existing and an unknown address (answered before the lookup)',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": consistent time); ASVS 5.0 V6.3.8',
    async run (ctx, t) {
      const real = await ctx.signup('rc-timing')
      const time = async (email: string) => {
        const started = process.hrtime.bigint()
        t.equal((await requestReset(ctx, email)).statusCode, 202)
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        await ctx.app.recovery.settled()
        return ms
      }
      const known: number[] = []
      const unknown: number[] = []
      for (let i = 0; i < 9; i++) {
        known.push(await time(real.email))
        unknown.push(await time(uniqueEmail(`rc-timing-${i}`)))
      }
      const ratio = median(unknown) / median(known)
      t.ok(ratio > 0.4 && ratio < 2.5, `median unknown ${median(unknown).toFixed(2)} ms vs existing ${median(known).toFixed(2)} ms (ratio ${ratio.toFixed(2)})`)
    },
  },
  {
    id: 'RC-03',
    title: 'the reset secret: 256 random bits, a keyed hash at rest, encrypted in the outbox, single use, short-lived, superseded by a new request',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens"); ASVS 5.0 V6.4.1; ASVS 5.0 V11.2.1',
    async run (ctx, t) {
      const user = await ctx.signup('rc-secret')
      await requestReset(ctx, user.email)
      const first = await mailedToken(ctx, user.email, 'password_reset')
      t.equal(Buffer.from(first, 'base64url').length, 32, '256 bits')
      const row = await ctx.app.db.accountToken.findFirstOrThrow({ where: { userId: user.id, purpose: 'password_reset' } })
      t.notOk(Buffer.from(row.tokenHash).equals(Buffer.from(first, 'base64url')), 'stored as a hash, not the secret')
      const outbox = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: user.email, template: 'password_reset' } })
      t.notOk(JSON.stringify(outbox).includes(first), 'the outbox row holds it only encrypted')
      await requestReset(ctx, user.email)
      const second = await mailedToken(ctx, user.email, 'password_reset')
      t.equal(json(await confirmReset(ctx, first)).code, 'invalid_link_token', 'the older link died with the new request')
      await ctx.advance(ctx.config.email.passwordResetTtlSeconds + 1)
      try {
        t.match(json(await confirmReset(ctx, second)), { code: 'invalid_link_token', message: /expired/ }, 'expired after PASSWORD_RESET_TTL_SECONDS')
      } finally {
        await ctx.advance(-(ctx.config.email.passwordResetTtlSeconds + 1))
      }
      t.equal((await confirmReset(ctx, second)).statusCode, 204, 'inside its lifetime it works')
      t.equal(json(await confirmReset(ctx, second, 'another new passphrase')).code, 'invalid_link_token', 'once')
    },
  },
  {
    id: 'RC-04',
    title: '20 concurrent confirmations of one reset link: exactly one sets a password',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens": single use); CWE-367 (TOCTOU race)',
    async run (ctx, t) {
      const user = await ctx.signup('rc-race')
      await requestReset(ctx, user.email)
      const token = await mailedToken(ctx, user.email, 'password_reset')
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => confirmReset(ctx, token, `racing passphrase ${i}`)))
      t.equal(answers.filter((a) => a.statusCode === 204).length, 1, 'one 204')
      t.ok(answers.every((a) => a.statusCode === 204 || json(a).code === 'invalid_link_token'), 'the rest invalid_link_token')
    },
  },
  {
    id: 'RC-05',
    title: 'a completed reset ends every session of the account (refresh and access tokens) and notifies the address',
    source: 'OWASP Forgot Password Cheat Sheet ("Changing The Password": invalidate sessions, notify); ASVS 5.0 V6.3.7, V7.4.3',
    async run (ctx, t) {
      const user = await ctx.signup('rc-sessions')
      const other = await ctx.login(user.email)
      await requestReset(ctx, user.email)
      t.equal((await confirmReset(ctx, await mailedToken(ctx, user.email, 'password_reset'))).statusCode, 204)
      assertInvalidGrant(t, await ctx.refresh(user.refresh_token), 'the sign-up session')
      assertInvalidGrant(t, await ctx.refresh(other.refresh_token), 'another session')
      await ctx.app.revocations.sync()
      assertInvalidToken(t, await ctx.bearer(other.access_token), 'its access token')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: user.email, template: 'password_changed' } }), 1, 'the notice is queued')
    },
  },
  {
    id: 'RC-06',
    title: 'reset-link poisoning: a forged Host or X-Forwarded-Host does not change where the link points; the secret rides in the fragment',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens": do not build the URL from the Host header); CWE-640; CWE-598',
    async run (ctx, t) {
      const user = await ctx.signup('rc-host')
      await requestReset(ctx, user.email, { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } })
      await ctx.app.recovery.settled()
      const row = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: user.email, template: 'password_reset' } })
      const text = ctx.app.outbox.render(row).text
      t.notMatch(text, /evil\.example/, 'no attacker host in the message')
      t.match(text, `${ctx.config.email.passwordResetUrl}?token=`, 'the configured page, the token inside its fragment')
    },
  },
  {
    id: 'RC-07',
    title: 'guessed, malformed, non-string and other-purpose tokens are 4xx, never 500, and spend nothing',
    source: 'ASVS 5.0 V6.4.1; OWASP Forgot Password Cheat Sheet ("URL Tokens"); DESIGN §4',
    async run (ctx, t) {
      const user = await ctx.signup('rc-garbage')
      const verification = await mailedToken(ctx, user.email, 'email_verification')
      for (const token of ['', 'A'.repeat(43), 'A'.repeat(42) + '=', '../'.repeat(15), "' OR 1=1 --" + 'x'.repeat(32), 42, null, ['a'], { $ne: null }, verification]) {
        const response = await confirmReset(ctx, token)
        assertNo5xx(t, response, `confirm with ${JSON.stringify(token).slice(0, 30)}`)
      }
      const verify = await ctx.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: 'B'.repeat(43) } })
      t.equal(json(verify).code, 'invalid_link_token', 'an unknown verification token')
      t.equal((await ctx.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: verification } })).statusCode, 200, 'the verification link was not spent by its misuse as a reset')
    },
  },
  {
    id: 'RC-08',
    title: 'opening a link spends nothing: the API answers no GET with a token, and a weak new password leaves the link usable',
    source: 'OWASP Forgot Password Cheat Sheet ("Changing The Password"); DESIGN §3.11 (mail scanners open links)',
    async run (ctx, t) {
      const user = await ctx.signup('rc-open')
      await requestReset(ctx, user.email)
      const token = await mailedToken(ctx, user.email, 'password_reset')
      for (const url of [`/auth/password-reset/confirm?token=${token}`, `/auth/verify-email?token=${token}`, `/auth/password-reset?token=${token}`]) {
        t.equal((await ctx.app.inject({ method: 'GET', url })).statusCode, 404, `GET ${url.split('?')[0]}`)
      }
      t.equal((await ctx.app.inject({ method: 'GET', url: '/dashboard/' })).statusCode, 200, 'the page itself is static')
      t.equal(json(await confirmReset(ctx, token, 'password123')).code, 'weak_password')
      t.equal((await confirmReset(ctx, token)).statusCode, 204, 'still usable')
    },
  },
  {
    id: 'RC-09',
    title: 'email bombing: every endpoint that sends email is limited per address and per IP',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": rate limiting); ASVS 5.0 V6.3.1; CWE-799',
    async run (ctx, t) {
      const limited = await buildTestApp({ EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '2', EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '3' }, { database: ctx.database, clock: ctx.clock })
      try {
        const victim = await ctx.signup('rc-bomb')
        const reset = (email: string, ip: string) => limited.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, remoteAddress: ip })
        const perAddress = [await reset(victim.email, '198.51.100.1'), await reset(victim.email, '198.51.100.2'), await reset(victim.email.toUpperCase(), '198.51.100.3')]
        t.same(perAddress.map((r) => r.statusCode), [202, 202, 429], 'one address from rotating IPs')
        const perIp = []
        for (let i = 0; i < 4; i++) perIp.push((await reset(uniqueEmail(`rc-spray-${i}`), '198.51.100.9')).statusCode)
        t.same(perIp, [202, 202, 202, 429], 'rotating addresses from one IP')
        const resender = await ctx.signup('rc-resend')
        const resends = []
        for (let i = 0; i < 3; i++) {
          resends.push((await limited.app.inject({ method: 'POST', url: '/auth/verify-email/resend', remoteAddress: `198.51.100.${20 + i}`, headers: { authorization: `Bearer ${resender.access_token}` } })).statusCode)
        }
        t.same(resends, [202, 202, 429], 'the verification resend draws on the same per-address budget')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'RC-10',
    title: 'account takeover by email change: the current password is required, the new address must confirm, the old one is told, a taken one is not revealed',
    source: 'ASVS 5.0 V6.3.7 (notify on changes of authentication details), V6.2.3 (re-authentication); OWASP Forgot Password Cheat Sheet',
    async run (ctx, t) {
      const victim = await ctx.signup('rc-takeover')
      const attacker = uniqueEmail('rc-attacker')
      const change = (newEmail: string, currentPassword: string) =>
        ctx.app.inject({ method: 'POST', url: '/users/me/email', headers: { authorization: `Bearer ${victim.access_token}` }, payload: { newEmail, currentPassword } })
      t.equal(json(await change(attacker, 'a guessed password')).code, 'invalid_credentials', 'a stolen access token alone cannot change the address')
      const taken = await ctx.signup('rc-taken')
      const answers = [await change(attacker, PASSWORD), await change(taken.email, PASSWORD)]
      t.equal(answers[0]!.body, answers[1]!.body, 'a taken address answers like a free one')
      t.equal(answers[0]!.statusCode, 202)
      await ctx.app.recovery.settled()
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: taken.email, template: 'email_change' } }), 0, 'no link to the taken address')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: victim.email, template: 'email_change_requested' } }), 2, 'the current address is told of each request')
      t.equal((await ctx.app.db.user.findUniqueOrThrow({ where: { id: victim.id } })).email, victim.email, 'nothing changes before the new address confirms')
    },
  },
  {
    id: 'RC-11',
    title: 'admins never see a user\'s link: the admin reset answers without it, and where mail goes out the outbox shows no rendered message',
    source: 'ASVS 5.0 V6.4.3 (secure reset process); OWASP Forgot Password Cheat Sheet ("URL Tokens"); DESIGN §3.11',
    async run (ctx, t) {
      const admin = await ctx.signup('rc-admin')
      const withSmtp = await buildTestApp({ SMTP_URL: 'smtp://127.0.0.1:1' }, { database: ctx.database, clock: ctx.clock })
      try {
        const adminTokens = await users.makeAdmin(withSmtp.app, admin)
        const target = await ctx.signup('rc-admin-target')
        const answer = await withSmtp.app.inject({ method: 'POST', url: `/admin/users/${target.id}/password-reset`, headers: { authorization: `Bearer ${adminTokens.access_token}` } })
        t.equal(answer.statusCode, 202)
        const token = await mailedToken(ctx, target.email, 'password_reset')
        t.notOk(answer.body.includes(token), 'not in the answer')
        const list = await withSmtp.app.inject({ method: 'GET', url: `/admin/outbox?recipient=${encodeURIComponent(target.email)}`, headers: { authorization: `Bearer ${adminTokens.access_token}` } })
        t.equal(list.statusCode, 200)
        t.notOk(list.body.includes(token), 'not in the outbox list')
        t.ok(json<{ items: { rendered: unknown }[] }>(list).items.every((item) => item.rendered === null), 'no rendered message where SMTP is configured')
      } finally {
        await withSmtp.close()
      }
    },
  },
]
