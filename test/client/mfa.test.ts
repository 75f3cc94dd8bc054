import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ApiRequestError, AuthClient, InvalidCredentialsError, MemoryStore, MfaRequiredError } from '../../src/client/index.js'
import { fileTestApp, type TestApp } from '../helpers/app.js'
import { advance, centreStep as centreStepOf, totpCode } from '../helpers/totp.js'

/**
 * Second factors in the SDK (src/client/mfa.ts) against the running service
 * on a real socket, body transport: enrolment helpers, login throwing
 * MfaRequiredError, and its `complete` with a code or a recovery code.
 */

const server: TestApp = await fileTestApp()
await server.app.listen({ host: '127.0.0.1', port: 0 })
const baseUrl = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`
const PASSWORD = 'a fine passphrase'
let counter = 0
const uniqueEmail = () => `sdk-mfa-${++counter}-${Date.now()}@sdk.test`

/** The middle of a time step of the service's clock: a code computed now is checked in the same step. */
const centreStep = () => centreStepOf(server)
const nextStep = () => advance(server, 30)

const newClient = () => new AuthClient({ baseUrl, clientId: 'mobile', transport: 'body', store: new MemoryStore() })

t.test('enrol with the helpers, sign in again: MfaRequiredError, completed with a code', async (t) => {
  const client = newClient()
  t.teardown(() => client.close())
  const email = uniqueEmail()
  await client.signUp(email, PASSWORD)
  t.same(await client.listFactors(), { totp: null, recoveryCodes: { remaining: 0 } })

  const enrolment = await client.startTotpEnrolment()
  t.match(enrolment.secret, /^[A-Z2-7]{32}$/)
  t.match(enrolment.otpauthUri, /^otpauth:\/\/totp\//)
  t.match(enrolment.qrCode, /^data:image\/svg\+xml;base64,/)
  await centreStep()
  await t.rejects(client.confirmTotp(totpCode(enrolment.secret, server.clock.now()) === '000000' ? '000001' : '000000'), ApiRequestError, 'a wrong code')
  const recoveryCodes = await client.confirmTotp(totpCode(enrolment.secret, server.clock.now()))
  t.equal(recoveryCodes.length, 10)
  const listed = await client.listFactors()
  t.equal(listed.totp?.confirmed, true)
  t.equal(listed.recoveryCodes.remaining, 10)
  await client.logout()
  t.equal(client.isSignedIn, false)

  await nextStep()
  const error = await client.login(email, PASSWORD).then(() => null, (e: unknown) => e)
  t.ok(error instanceof MfaRequiredError, `MfaRequiredError, got ${String(error)}`)
  const required = error as MfaRequiredError
  t.equal(required.code, 'mfa_required')
  t.same(required.factors, ['otp', 'recovery_code'])
  t.equal(client.isSignedIn, false, 'not signed in yet')

  await t.rejects(required.complete({ otp: totpCode(enrolment.secret, server.clock.now(), -3) }), InvalidCredentialsError, 'a wrong code')
  const claims = await required.complete({ otp: totpCode(enrolment.secret, server.clock.now()) })
  t.equal(client.isSignedIn, true)
  t.same(claims?.amr, ['mfa', 'otp', 'pwd'])
  t.equal(claims?.acr, 'urn:token-auth:acr:mfa')
  t.same(await client.request('/users/me').then((u) => (u as { email: string }).email), email, 'the session works')
})

t.test('a recovery code completes the login; regenerate and remove through the helpers', async (t) => {
  const client = newClient()
  t.teardown(() => client.close())
  const email = uniqueEmail()
  await client.signUp(email, PASSWORD)
  const { secret } = await client.startTotpEnrolment()
  await centreStep()
  const codes = await client.confirmTotp(totpCode(secret, server.clock.now()))
  await client.logout()

  const required = (await client.login(email, PASSWORD).catch((e: unknown) => e)) as MfaRequiredError
  t.ok(required instanceof MfaRequiredError)
  await required.complete({ recoveryCode: codes[0]! })
  t.equal(client.isSignedIn, true)
  t.equal((await client.listFactors()).recoveryCodes.remaining, 9)

  const fresh = await client.regenerateRecoveryCodes()
  t.equal(fresh.length, 10)
  t.equal((await client.listFactors()).recoveryCodes.remaining, 10)
  await client.removeTotp({ password: PASSWORD })
  t.same(await client.listFactors(), { totp: null, recoveryCodes: { remaining: 0 } })
  await client.logout()
  t.ok(await client.login(email, PASSWORD), 'the password alone signs in again')
})
