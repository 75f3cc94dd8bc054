import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { ApiRequestError, AuthClient, InvalidCredentialsError, MemoryStore, MfaRequiredError, StepUpRequiredError } from '../../src/client/index.js'
import { fileTestApp, type TestApp } from '../helpers/app.js'
import { advance, centreStep as centreStepOf, totpCode } from '../helpers/totp.js'
import { registerPasskey, SoftAuthenticator, TEST_ORIGIN } from '../helpers/webauthn.js'

/**
 * Second factors in the SDK (src/client/mfa.ts) against the running service
 * on a real socket, body transport: enrolment helpers, login throwing
 * MfaRequiredError, and its `complete` with a code, a recovery code or a
 * passkey's assertion (`passkeyOptions`, `completeWithPasskey`); adding a
 * factor beside a passkey asks for a step-up with it, and onStepUpRequired's
 * step-up lets the request be retried. The passkeys are the software
 * authenticator of test/helpers/webauthn.ts, behind a stand-in for the
 * browser's navigator.credentials where the SDK calls it.
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

const MFA_ACR = 'urn:token-auth:acr:mfa'

/**
 * A browser's WebAuthn for the length of `t`, backed by `authenticator`:
 * navigator.credentials.get/create over the options WebAuthn Level 3's
 * PublicKeyCredential.parse*FromJSON hand them (here: the JSON itself),
 * answering credentials whose toJSON() is the authenticator's JSON.
 */
function browserWebAuthn (t: Test, authenticator: SoftAuthenticator): { calls: string[] } {
  const g = globalThis as Record<string, unknown>
  const saved = ['navigator', 'PublicKeyCredential'].map((name) => [name, Object.getOwnPropertyDescriptor(g, name)] as const)
  const calls: string[] = []
  type Options = { publicKey: Parameters<SoftAuthenticator['get']>[0] & Parameters<SoftAuthenticator['create']>[0] }
  Object.defineProperty(g, 'navigator', {
    configurable: true,
    writable: true,
    value: {
      credentials: {
        get: async ({ publicKey }: Options) => {
          calls.push('get')
          const credential = authenticator.get(publicKey)
          return { toJSON: () => credential }
        },
        create: async ({ publicKey }: Options) => {
          calls.push('create')
          const credential = authenticator.create(publicKey)
          return { toJSON: () => credential }
        },
      },
    },
  })
  Object.defineProperty(g, 'PublicKeyCredential', {
    configurable: true,
    writable: true,
    value: { parseRequestOptionsFromJSON: (options: unknown) => options, parseCreationOptionsFromJSON: (options: unknown) => options },
  })
  t.teardown(() => {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(g, name, descriptor)
      else delete g[name]
    }
  })
  return { calls }
}

/** A new account with one passkey of a new software authenticator, signed out. */
async function accountWithPasskey (t: Test) {
  const client = newClient()
  t.teardown(() => client.close())
  const email = uniqueEmail()
  await client.signUp(email, PASSWORD)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const passkey = await registerPasskey(server.app, await client.getAccessToken(), authenticator, 'SDK key')
  await client.logout()
  return { client, email, authenticator, passkey }
}

t.test('a passkey as the second factor: mfa_required names it; passkeyOptions, then complete with the assertion', async (t) => {
  const { client, email, authenticator, passkey } = await accountWithPasskey(t)
  const required = await client.login(email, PASSWORD).then(() => null, (e: unknown) => e)
  t.ok(required instanceof MfaRequiredError, `MfaRequiredError, got ${String(required)}`)
  if (!(required instanceof MfaRequiredError)) return
  t.same(required.factors, ['passkey'], 'the passkey is the only factor')
  t.equal(client.isSignedIn, false)

  const options = await required.passkeyOptions()
  t.equal(options.userVerification, 'required')
  t.same((options.allowCredentials as { id: string }[]).map((c) => c.id), [authenticator.credentials[0]!.id.toString('base64url')], 'the account\'s passkey is allowed')
  await t.rejects(required.complete({ credential: authenticator.get(options as { challenge: string }, { userVerified: false }) }), InvalidCredentialsError, 'without user verification: refused')
  t.equal(client.isSignedIn, false)

  const claims = await required.complete({ credential: authenticator.get((await required.passkeyOptions()) as { challenge: string }) })
  t.equal(client.isSignedIn, true)
  t.equal(claims?.acr, MFA_ACR)
  t.same(claims?.amr, ['hwk', 'mfa', 'pwd', 'user'])
  t.equal((await server.app.db.session.findUniqueOrThrow({ where: { id: claims!.sid } })).passkeyId, passkey.id, 'the session knows its passkey')
  t.match(await client.request('/users/me'), { email }, 'the session works')

  await t.rejects(required.passkeyOptions(), { name: 'InvalidCredentialsError', message: /sign in again/ }, 'the step is spent')
})

t.test('completeWithPasskey runs the browser\'s ceremony over the step\'s options', async (t) => {
  const { client, email, authenticator } = await accountWithPasskey(t)
  const browser = browserWebAuthn(t, authenticator)
  const required = (await client.login(email, PASSWORD).catch((e: unknown) => e)) as MfaRequiredError
  t.ok(required instanceof MfaRequiredError)
  const claims = await required.completeWithPasskey()
  t.same(browser.calls, ['get'])
  t.equal(claims?.acr, MFA_ACR)
  t.equal(client.isSignedIn, true)
})

t.test('an account with an authenticator app and a passkey offers both; either finishes', async (t) => {
  const { client, email, authenticator } = await accountWithPasskey(t)
  // Signed in with the passkey step, to enrol the app beside it.
  const first = (await client.login(email, PASSWORD).catch((e: unknown) => e)) as MfaRequiredError
  await first.complete({ credential: authenticator.get((await first.passkeyOptions()) as { challenge: string }) })
  const { secret } = await client.startTotpEnrolment()
  await centreStep()
  await client.confirmTotp(totpCode(secret, server.clock.now()))
  await client.logout()

  const required = (await client.login(email, PASSWORD).catch((e: unknown) => e)) as MfaRequiredError
  t.same(required.factors, ['otp', 'recovery_code', 'passkey'])
  await nextStep()
  const claims = await required.complete({ otp: totpCode(secret, server.clock.now()) })
  t.same(claims?.amr, ['mfa', 'otp', 'pwd'])
  await client.logout()
  const again = (await client.login(email, PASSWORD).catch((e: unknown) => e)) as MfaRequiredError
  t.equal((await again.complete({ credential: authenticator.get((await again.passkeyOptions()) as { challenge: string }) }))?.acr, MFA_ACR)
})

t.test('adding a factor beside a passkey asks for a step-up with it; onStepUpRequired steps up and the request is retried', async (t) => {
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const asked: StepUpRequiredError[] = []
  let answer = false
  const client: AuthClient = new AuthClient({
    baseUrl,
    clientId: 'mobile',
    transport: 'body',
    store: new MemoryStore(),
    onStepUpRequired: async (required) => {
      asked.push(required)
      if (!answer) return false
      await client.stepUpWithPasskey()
      return true
    },
  })
  t.teardown(() => client.close())
  const browser = browserWebAuthn(t, authenticator)
  await client.signUp(uniqueEmail(), PASSWORD)
  await server.app.db.user.update({ where: { id: client.claims!.sub }, data: { emailVerifiedAt: new Date(server.clock.now()) } })

  const first = await client.registerPasskey('First')
  t.equal(first.name, 'First')
  t.equal(asked.length, 0, 'the first passkey of a fresh sign-in needs no step-up')
  t.same(browser.calls, ['create'])

  await t.rejects(client.startTotpEnrolment(), StepUpRequiredError, 'declined: the refusal is thrown')
  t.same(asked.at(-1)?.acrValues, [MFA_ACR], 'the service asks for the mfa level')
  await t.rejects(client.registerPasskey('Second'), StepUpRequiredError)

  answer = true
  browser.calls.length = 0
  const before = asked.length
  const second = await client.registerPasskey('Second')
  t.equal(second.name, 'Second')
  t.equal(asked.length, before + 1, 'one step-up')
  t.same(browser.calls, ['get', 'create'], 'the step-up with the passkey, then the new one')
  t.equal(client.claims?.acr, MFA_ACR, 'the session proved its factor')

  const enrolment = await client.startTotpEnrolment()
  await centreStep()
  t.equal((await client.confirmTotp(totpCode(enrolment.secret, server.clock.now()))).length, 10)
  t.equal(asked.length, before + 1, 'no second step-up while the proof is recent')
  t.equal((await client.listPasskeys()).length, 2)
})
