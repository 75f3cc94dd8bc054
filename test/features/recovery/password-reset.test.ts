import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import { connectRedis, REDIS_URL } from '../../helpers/redis.js'
import { linkToken, TestSmtpServer } from '../../helpers/smtp.js'
import { injectAs, login, makeAdmin, me, passwordGrant, refresh, signup, uniqueEmail } from '../../helpers/users.js'

/**
 * Password reset by email (DESIGN §3.11), end to end: the request, the
 * message a real SMTP server receives, the link's token, the confirmation,
 * and what it does to the account's sessions.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())
const { app, clock } = await fileTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25' })

const NEW_PASSWORD = 'a brand new passphrase'
const ACCEPTED = { status: 'accepted', message: 'If an account with this address exists, a link to reset its password is on its way.' }

const requestReset = (email: string, remoteAddress?: string) =>
  app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, ...(remoteAddress ? { remoteAddress } : {}) })
const confirm = (token: string, newPassword = NEW_PASSWORD) =>
  app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token, newPassword } })

/** Requests a reset and returns the token of the link that arrives. */
async function resetToken (email: string): Promise<string> {
  const already = smtp.to(email).filter((mail) => mail.subject.includes('reset')).length
  t.equal((await requestReset(email)).statusCode, 202)
  return linkToken(await smtp.nextWithSubject(email, 'reset', already))
}

t.test('reset end to end: the link resets the password once, every session ends, a notice follows', async (t) => {
  const user = await signup(app, { label: 'reset' })
  const second = await login(app, user.email)

  const answer = await requestReset(user.email.toUpperCase())
  t.equal(answer.statusCode, 202)
  t.same(json(answer), ACCEPTED)
  const mail = await smtp.nextWithSubject(user.email, 'reset')
  t.equal(mail.subject, 'token-auth: reset your password')
  const token = linkToken(mail)
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url')
  t.match(mail.text, /#\/reset-password\?token=/, 'the secret is in the fragment of the dashboard page')

  const weak = await confirm(token, 'password123')
  t.equal(weak.statusCode, 400)
  t.equal(json(weak).code, 'weak_password', 'the new password is checked first…')
  const done = await confirm(token)
  t.equal(done.statusCode, 204, '…and a weak one left the link usable')

  const reused = await confirm(token, 'yet another passphrase')
  t.equal(reused.statusCode, 400)
  t.match(json(reused), { code: 'invalid_link_token', message: /already used/ })

  // Every session ends: refresh tokens at once, access tokens within a second (§3.5.7).
  t.match(json(await refresh(app, user.refresh_token)), { error: 'invalid_grant' })
  t.match(json(await refresh(app, second.refresh_token)), { error: 'invalid_grant' })
  await app.revocations.sync()
  t.equal((await me(app, user.access_token)).statusCode, 401, 'the old access token is refused')
  t.equal((await me(app, second.access_token)).statusCode, 401)

  t.equal((await passwordGrant(app, user.email)).statusCode, 400, 'the old password no longer works')
  t.equal((await passwordGrant(app, user.email, { password: NEW_PASSWORD })).statusCode, 200, 'the new one does')

  const notice = await smtp.nextWithSubject(user.email, 'was changed')
  t.equal(notice.subject, 'token-auth: your password was changed')

  const types = (await app.db.auditEvent.findMany({ where: { userId: user.id }, orderBy: { id: 'asc' } })).map((e) => e.type)
  t.ok(types.includes('password_reset_requested') && types.includes('password_reset'), `audited: ${types.join(', ')}`)
})

t.test('unknown, malformed and disabled addresses get the same answer, and no email', async (t) => {
  const disabled = await signup(app, { label: 'disabled' })
  await app.db.user.update({ where: { id: disabled.id }, data: { disabled: true } })
  const unknown = uniqueEmail('nobody')
  const answers = [await requestReset(unknown), await requestReset(disabled.email), await requestReset('not-an-address@@x')]
  for (const answer of answers) {
    t.equal(answer.statusCode, 202)
    t.same(json(answer), ACCEPTED)
  }
  await app.recovery.settled()
  t.equal(await app.db.emailOutbox.count({ where: { recipient: { in: [unknown, disabled.email] }, template: 'password_reset' } }), 0, 'nothing queued')
  t.equal(await app.db.accountToken.count({ where: { userId: disabled.id, purpose: 'password_reset' } }), 0, 'no secret for a disabled account')
})

t.test('a new request supersedes the older link', async (t) => {
  const user = await signup(app, { label: 'supersede' })
  const first = await resetToken(user.email)
  const second = await resetToken(user.email)
  t.not(first, second)
  t.match(json(await confirm(first)), { code: 'invalid_link_token', message: /not valid/ })
  t.equal((await confirm(second)).statusCode, 204)
})

t.test('an expired link is refused; the secret is stored only as a keyed hash', async (t) => {
  const user = await signup(app, { label: 'expired' })
  const token = await resetToken(user.email)
  const rows = await app.db.accountToken.findMany({ where: { userId: user.id, purpose: 'password_reset' } })
  t.equal(rows.length, 1)
  t.equal(rows[0]!.tokenHash.length, 32, 'an HMAC-SHA-256')
  t.notOk(Buffer.from(rows[0]!.tokenHash).equals(Buffer.from(token, 'base64url')), 'not the secret itself')
  t.equal(rows[0]!.expiresAt.getTime() - rows[0]!.createdAt.getTime(), 1800_000, 'PASSWORD_RESET_TTL_SECONDS, 30 minutes by default')
  clock.advance(1801)
  t.match(json(await confirm(token)), { code: 'invalid_link_token', message: /expired/ })
  clock.advance(-1801)
})

t.test('malformed and unknown tokens get 400, never 500', async (t) => {
  for (const token of ['', 'short', 'x'.repeat(43).replace(/^x/, '!'), 'a'.repeat(44), 'A'.repeat(43)]) {
    const answer = await confirm(token)
    t.equal(answer.statusCode, 400, JSON.stringify(token))
  }
  t.equal(json(await confirm('A'.repeat(43))).code, 'invalid_link_token', 'well-formed but unknown')
  const missing = await app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: 'A'.repeat(43) } })
  t.equal(missing.statusCode, 400)
})

t.test('of 20 concurrent confirmations with one link, exactly one succeeds', async (t) => {
  const user = await signup(app, { label: 'race' })
  const token = await resetToken(user.email)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => confirm(token, `${NEW_PASSWORD} number ${i}`)))
  const codes = answers.map((a) => a.statusCode)
  t.equal(codes.filter((c) => c === 204).length, 1, 'one 204')
  t.equal(codes.filter((c) => c === 400).length, 19, '19 refused')
  t.ok(answers.filter((a) => a.statusCode === 400).every((a) => json(a).code === 'invalid_link_token'))
  const winner = answers.findIndex((a) => a.statusCode === 204)
  t.equal((await passwordGrant(app, user.email, { password: `${NEW_PASSWORD} number ${winner}` })).statusCode, 200, 'the winner\'s password is the one set')
})

t.test('an admin sends a reset link; the admin API never shows it', async (t) => {
  const user = await signup(app, { label: 'admin-reset' })
  const adminAccount = await signup(app, { label: 'resetting-admin' })
  const admin = await makeAdmin(app, adminAccount)
  const answer = await injectAs(app, admin.access_token, 'POST', `/admin/users/${user.id}/password-reset`)
  t.equal(answer.statusCode, 202)
  t.notMatch(answer.body, /token/)
  const mail = await smtp.nextWithSubject(user.email, 'reset')
  t.equal((await confirm(linkToken(mail))).statusCode, 204)
  const event = await app.db.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'password_reset_requested' } })
  t.match(event, { actorId: adminAccount.id, details: { via: 'admin' } }, 'audited, naming the admin')
  const signedIn = await login(app, user.email, { password: NEW_PASSWORD })
  t.equal((await injectAs(app, signedIn.access_token, 'POST', `/admin/users/${user.id}/password-reset`)).statusCode, 403, 'admins only')
  const unknown = await injectAs(app, admin.access_token, 'POST', '/admin/users/00000000-0000-4000-8000-000000000000/password-reset')
  t.equal(unknown.statusCode, 404)
})

t.test('reset requests are limited per address and per IP', async (t) => {
  const limited = await buildTestApp({ SMTP_URL: smtp.url, EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '2', EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '4' })
  t.teardown(() => limited.close())
  const send = (email: string, ip: string) => limited.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, remoteAddress: ip })
  const address = uniqueEmail('limited')
  t.same([(await send(address, '203.0.113.1')).statusCode, (await send(address.toUpperCase(), '203.0.113.2')).statusCode], [202, 202])
  const third = await send(address, '203.0.113.3')
  t.equal(third.statusCode, 429, 'a third to one address within the hour, from anywhere')
  t.ok(Number(third.headers['retry-after']) > 0, 'with Retry-After')
  const codes = []
  for (let i = 0; i < 5; i++) codes.push((await send(uniqueEmail('spray'), '203.0.113.9')).statusCode)
  t.same(codes, [202, 202, 202, 202, 429], 'the fifth address from one IP within the hour')
})

t.test('a password change (POST /users/me/password) sends the same notice', async (t) => {
  const user = await signup(app, { label: 'changer' })
  const changed = await injectAs(app, user.access_token, 'POST', '/users/me/password', { currentPassword: 'a fine passphrase', newPassword: NEW_PASSWORD })
  t.equal(changed.statusCode, 204)
  await smtp.nextWithSubject(user.email, 'was changed')
  const wrong = await injectAs(app, user.access_token, 'POST', '/users/me/password', { currentPassword: 'not the password', newPassword: 'whatever it takes' })
  t.equal(wrong.statusCode, 403)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(smtp.to(user.email).filter((mail) => mail.subject.includes('was changed')).length, 1, 'a refused change sends nothing')
})

const redis = await connectRedis()
t.teardown(async () => {
  await redis?.quit()
})

t.test('with REDIS_URL two instances share the email budget', { skip: redis ? false : `Redis is not reachable at ${REDIS_URL}` }, async (t) => {
  const env = { REDIS_URL, EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '2', EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '1000' }
  const a = await buildTestApp(env)
  t.teardown(() => a.close())
  const b = await buildTestApp(env, { database: a.database })
  t.teardown(() => b.close())
  // A fresh address per run: the counters outlive the run in Redis for their hour.
  const address = `shared-${randomBytes(6).toString('hex')}@limits.test`
  const send = (instance: typeof a) => instance.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: address } })
  t.same([(await send(a)).statusCode, (await send(b)).statusCode, (await send(a)).statusCode], [202, 202, 429])
})
