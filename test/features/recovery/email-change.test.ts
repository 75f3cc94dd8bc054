import t from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import { linkToken, TestSmtpServer } from '../../helpers/smtp.js'
import { injectAs, me, PASSWORD, passwordGrant, signup, uniqueEmail } from '../../helpers/users.js'

/**
 * Email change (DESIGN §3.11): POST /users/me/email sends a link to the new
 * address and a notice to the old one; the address changes only when the
 * link's token is POSTed to /auth/verify-email.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())
const { app, database } = await fileTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25' })

const ACCEPTED = { status: 'accepted', message: 'Open the link sent to the new address to confirm the change.' }
const changeEmail = (accessToken: string, newEmail: string, currentPassword = PASSWORD) =>
  injectAs(app, accessToken, 'POST', '/users/me/email', { newEmail, currentPassword })
const verify = (token: string) => app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })
const noticeTo = (email: string) => smtp.waitFor(() => smtp.to(email).some((mail) => mail.subject.includes('change of your email')))

t.test('the address changes when the new one confirms; the old one is told', async (t) => {
  const user = await signup(app, { label: 'mover' })
  const newEmail = uniqueEmail('moved')
  const answer = await changeEmail(user.access_token, newEmail.toUpperCase())
  t.equal(answer.statusCode, 202)
  t.same(json(answer), ACCEPTED)

  const link = await smtp.nextTo(newEmail)
  t.equal(link.subject, 'token-auth: confirm your new email address')
  await noticeTo(user.email)
  t.match(smtp.to(user.email).find((mail) => mail.subject.includes('change of your email'))!.text, newEmail, 'the notice names the new address')
  t.equal(json(await me(app, user.access_token)).email, user.email, 'nothing changed before the confirmation')

  const confirmed = await verify(linkToken(link))
  t.equal(confirmed.statusCode, 200)
  t.same(json(confirmed), { purpose: 'email_change', email: newEmail })
  const after = json(await me(app, user.access_token))
  t.equal(after.email, newEmail, 'GET /users/me shows the new address')
  t.type(after.emailVerifiedAt, 'string', 'and it is verified')
  t.equal((await passwordGrant(app, newEmail)).statusCode, 200, 'sign in with the new address')
  t.equal((await passwordGrant(app, user.email)).statusCode, 400, 'not with the old one')
  t.equal(json(await verify(linkToken(link))).code, 'invalid_link_token', 'the link works once')
  const types = (await app.db.auditEvent.findMany({ where: { userId: user.id } })).map((e) => e.type)
  t.ok(types.includes('email_change_requested') && types.includes('email_changed'), 'audited')
})

t.test('a verification link for the old address dies with the change', async (t) => {
  const user = await signup(app, { label: 'old-link' })
  await smtp.waitFor(() => smtp.to(user.email).some((mail) => mail.subject.includes('confirm your email')))
  const oldLink = linkToken(smtp.to(user.email).find((mail) => mail.subject.includes('confirm your email'))!)
  const newEmail = uniqueEmail('new-link')
  await changeEmail(user.access_token, newEmail)
  t.equal((await verify(linkToken(await smtp.nextTo(newEmail)))).statusCode, 200)
  t.equal(json(await verify(oldLink)).code, 'invalid_link_token', 'it cannot verify the new address')
})

t.test('the current password is required, checked and audited', async (t) => {
  const user = await signup(app, { label: 'wrong-password' })
  const newEmail = uniqueEmail('never')
  const refused = await changeEmail(user.access_token, newEmail, 'not my password at all')
  t.equal(refused.statusCode, 403)
  t.equal(json(refused).code, 'invalid_credentials')
  t.ok(await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'email_change_failed' } }), 'audited')
  t.equal((await changeEmail(user.access_token, user.email.toUpperCase())).statusCode, 400, 'the same address: nothing to change')
  t.equal((await changeEmail(user.access_token, 'two@@ats.test')).statusCode, 400, 'an invalid address')
  await app.recovery.settled()
  t.equal(await app.db.emailOutbox.count({ where: { recipient: newEmail } }), 0, 'nothing sent')
  t.equal((await app.inject({ method: 'POST', url: '/users/me/email', payload: { newEmail, currentPassword: PASSWORD } })).statusCode, 401, 'signed in only')
})

t.test('a taken address gets the same answer, and no link', async (t) => {
  const owner = await signup(app, { label: 'owner' })
  const user = await signup(app, { label: 'grabber' })
  const answer = await changeEmail(user.access_token, owner.email)
  t.equal(answer.statusCode, 202)
  t.same(json(answer), ACCEPTED, 'as for a free address')
  await noticeTo(user.email)
  t.notOk(smtp.to(owner.email).some((mail) => mail.subject.includes('new email address')), 'the owner of the address gets nothing')
})

t.test('an address taken between the request and the confirmation: 409 email_taken', async (t) => {
  const user = await signup(app, { label: 'late' })
  const contested = uniqueEmail('contested')
  await changeEmail(user.access_token, contested)
  const token = linkToken(await smtp.nextTo(contested))
  await signup(app, { email: contested })
  const late = await verify(token)
  t.equal(late.statusCode, 409)
  t.equal(json(late).code, 'email_taken')
  t.equal(json(await me(app, user.access_token)).email, user.email, 'the account keeps its address')
})

t.test('checking the password spends the password budget', async (t) => {
  const limited = await buildTestApp({ SMTP_URL: smtp.url, AUTH_RATE_LIMIT_PER_MINUTE: '2' }, { database })
  t.teardown(() => limited.close())
  const user = await signup(limited.app, { label: 'budget' })
  const codes = []
  for (let i = 0; i < 3; i++) codes.push((await injectAs(limited.app, user.access_token, 'POST', '/users/me/email', { newEmail: uniqueEmail('b'), currentPassword: 'wrong guess number ' + i })).statusCode)
  t.same(codes, [403, 403, 429])
})
