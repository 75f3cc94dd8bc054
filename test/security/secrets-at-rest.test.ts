import Fastify, { type InjectOptions, type LightMyRequestResponse } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { json, TEST_ENV, TestClock } from '../helpers/app.js'
import { base32Decode, MFA_OTP, totpCode } from '../helpers/totp.js'
import { createTestDatabase } from '../helpers/database.js'
import { authorizeUrl, followAuthorization, pkcePair } from '../helpers/oauth.js'
import { InjectedPageBrowser } from '../helpers/oauth-inject.js'
import { SoftAuthenticator } from '../helpers/webauthn.js'
import { Webhook } from 'standardwebhooks'
import { WebhookReceiver } from '../helpers/webhook-receiver.js'
import { unseal } from '../../src/shared/derived-keys.js'
import { serializeRevocationSync } from './context.js'

/**
 * Secrets at rest (DESIGN §3.5 rule 1, §3.7, §3.9): after a scenario that
 * issues, rotates, replays, revokes and introspects every kind of credential,
 * a dump of every database table and every log line (pino at level trace,
 * captured in memory) holds none of the raw refresh tokens, access tokens,
 * API keys, passwords, emailed links' tokens (in account_tokens and in the
 * email outbox), client secrets, authorization codes or browser-session
 * cookies of the hosted sign-in the scenario used, nor webhook signing secrets
 * (whsec_…, created and rotated, which stay sealed in their endpoint's row), in
 * any encoding we can think of
 * (as issued, JSON-escaped, hex of their bytes, base64 of their bytes).
 */

const database = await createTestDatabase()
const config = loadConfig({
  ...TEST_ENV,
  DATABASE_URL: database.url,
  DATABASE_POOL_MAX: String(database.poolMax),
  LOG_LEVEL: 'trace',
  AUTH_RATE_LIMIT_PER_MINUTE: '0',
  // The webhook scenario delivers to a receiver on loopback.
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
})
const logs: string[] = []
const options = serverOptions(config)
const server = Fastify({
  ...options,
  logger: {
    ...(options.logger as object),
    level: 'trace',
    stream: {
      write: (line: string) => {
        logs.push(line)
      },
    },
  },
})
const clock = new TestClock()
await server.register(fp(app), { config, now: clock.now })
await server.ready()
serializeRevocationSync(server)
t.teardown(async () => {
  await server.close()
  await database.drop()
})

const SPA = { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' }

/** Every secret the scenario saw, by kind. `link`: the tokens of emailed links (reset, verification, address change). */
const secrets = {
  refresh: new Set<string>(),
  access: new Set<string>(),
  apiKey: new Set<string>(),
  password: new Set<string>(),
  link: new Set<string>(),
  // Second factors: TOTP secrets (base32), recovery codes, the mfa_tokens of logins' second steps.
  totp: new Set<string>(),
  recoveryCode: new Set<string>(),
  mfaToken: new Set<string>(),
  // WebAuthn challenges, spent and unspent.
  challenge: new Set<string>(),
  // OAuth (DESIGN §3.14, §3.15): client secrets (oauth_clients), authorization codes (authorization_codes), the hosted sign-in's session cookie (a sessions row).
  clientSecret: new Set<string>(),
  code: new Set<string>(),
  browserSession: new Set<string>(),
  // Webhook signing secrets (whsec_…, DESIGN §3.18): sealed in webhook_endpoints, needed in clear to sign.
  webhookSecret: new Set<string>(),
}

function collect (response: LightMyRequestResponse): LightMyRequestResponse {
  if (!response.body.startsWith('{')) return response
  const body = json<Record<string, unknown>>(response)
  if (typeof body.refresh_token === 'string') secrets.refresh.add(body.refresh_token)
  if (typeof body.access_token === 'string') secrets.access.add(body.access_token)
  if (typeof body.key === 'string') secrets.apiKey.add(body.key)
  if (typeof body.secret === 'string') (body.secret.startsWith('whsec_') ? secrets.webhookSecret : secrets.totp).add(body.secret)
  if (typeof body.mfa_token === 'string') secrets.mfaToken.add(body.mfa_token)
  if (typeof body.client_secret === 'string') secrets.clientSecret.add(body.client_secret)
  if (Array.isArray(body.recoveryCodes)) for (const code of body.recoveryCodes as string[]) secrets.recoveryCode.add(code)
  for (const cookie of response.cookies) if (cookie.name.endsWith('refresh_token') && cookie.value) secrets.refresh.add(cookie.value)
  return response
}

async function call (request: InjectOptions): Promise<LightMyRequestResponse> {
  return collect(await server.inject(request))
}

function password (value: string): string {
  secrets.password.add(value)
  return value
}

t.test('scenario: every kind of credential issued, used, rotated, replayed and revoked', async (t) => {
  const email = `secrets-${Date.now()}@rest.test`
  const first = password('correct horse battery')
  const signup = await call({ method: 'POST', url: '/auth/signup', payload: { email, password: first } })
  t.equal(signup.statusCode, 201)
  const { access_token: access, refresh_token: refresh } = json<{ access_token: string; refresh_token: string }>(signup)

  t.equal((await call({ method: 'POST', url: '/auth/signup', payload: { email: `weak-${email}`, password: password('password123') } })).statusCode, 400, 'weak password refused')
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: password('wrong horse battery') } })).statusCode, 400)
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: `nobody-${email}`, password: password('unknown user password') } })).statusCode, 400)
  const formLogin = await call({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=password&username=${encodeURIComponent(email)}&password=${encodeURIComponent(first)}`,
  })
  t.equal(formLogin.statusCode, 200, 'form login')

  // Rotation, a grace retry, and a replay outside the window (reuse detection).
  const rotated = await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: refresh } })
  t.equal(rotated.statusCode, 200)
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: refresh } })).statusCode, 200, 'grace retry')
  clock.advance(config.refreshGraceSeconds + 1)
  await server.revocations.sync()
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: refresh } })).statusCode, 400, 'reuse')

  // Cookie transport: login, refresh with the cookie, logout with the cookie.
  const web = await call({ method: 'POST', url: '/auth/token', headers: SPA, payload: { grant_type: 'password', username: email, password: first, client_id: 'web' } })
  t.equal(web.statusCode, 200)
  const cookie = web.cookies.find((c) => c.name.endsWith('refresh_token'))!
  const webRefresh = await call({
    method: 'POST',
    url: '/auth/token',
    headers: { ...SPA, cookie: `${cookie.name}=${cookie.value}` },
    payload: { grant_type: 'refresh_token', client_id: 'web' },
  })
  t.equal(webRefresh.statusCode, 200)
  const cookie2 = webRefresh.cookies.find((c) => c.name.endsWith('refresh_token'))!
  t.equal((await call({ method: 'POST', url: '/auth/token', headers: { origin: 'https://evil.example', cookie: `${cookie2.name}=${cookie2.value}` }, payload: { grant_type: 'refresh_token', client_id: 'web' } })).statusCode, 403, 'foreign origin')
  t.equal((await call({ method: 'POST', url: '/auth/logout', headers: { ...SPA, cookie: `${cookie2.name}=${cookie2.value}` } })).statusCode, 204)

  // A fresh session for the rest, API keys (a user's and an admin's introspect key).
  const login = json<{ access_token: string; refresh_token: string }>(
    await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: first } })
  )
  const adminEmail = `admin-${email}`
  const adminPassword = password('admin fine passphrase')
  const admin = json<{ user: { id: string } }>(await call({ method: 'POST', url: '/auth/signup', payload: { email: adminEmail, password: adminPassword } }))
  // Promoted as admin:create does, which vouches for the address too.
  await server.db.user.update({ where: { id: admin.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const adminLogin = json<{ access_token: string }>(await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: adminEmail, password: adminPassword } }))
  // A role set in the database reaches the revocation list by its next poll (≤ 1 s): wait for it.
  for (let started = Date.now(); Date.now() - started < 5_000; await new Promise((resolve) => setTimeout(resolve, 50))) {
    if ((await server.inject({ method: 'GET', url: '/admin/users?limit=1', headers: { authorization: `Bearer ${adminLogin.access_token}` } })).statusCode === 200) break
  }
  // Emailed links: verification (before the API keys, which need it), address change, password reset (requested by the user and by an admin).
  // The service has no SMTP_URL, so every message stays in the outbox, its secret encrypted there.
  const mailbox = async (recipient: string, template: string): Promise<string> => {
    await server.recovery.settled()
    const list = json<{ items: { template: string; rendered: { text: string } | null }[] }>(
      await call({ method: 'GET', url: `/admin/outbox?recipient=${encodeURIComponent(recipient)}`, headers: { authorization: `Bearer ${adminLogin.access_token}` } })
    )
    const message = list.items.find((item) => item.template === template)
    const token = /token=([A-Za-z0-9_-]{43})/.exec(message?.rendered?.text ?? '')?.[1]
    if (!token) throw new Error(`no ${template} link for ${recipient}`)
    secrets.link.add(token)
    return token
  }
  t.equal((await call({ method: 'POST', url: '/auth/verify-email', payload: { token: await mailbox(email, 'email_verification') } })).statusCode, 200, 'verify')
  const key = json<{ id: string; key: string }>(await call({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${login.access_token}` }, payload: { name: 'k', scopes: ['profile'] } }))
  t.equal((await call({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${key.key}` } })).statusCode, 200)
  t.equal((await call({ method: 'GET', url: '/users/me', headers: { 'x-api-key': key.key } })).statusCode, 200)
  const introspectKey = json<{ key: string }>(
    await call({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${adminLogin.access_token}` }, payload: { name: 'svc', scopes: ['introspect'] } })
  ).key
  for (const token of [login.access_token, login.refresh_token, key.key, access, 'garbage']) {
    const response = await call({ method: 'POST', url: '/auth/introspect', headers: { authorization: `Bearer ${introspectKey}` }, payload: { token } })
    t.equal(response.statusCode, 200, 'introspect')
  }
  t.equal((await call({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${adminLogin.access_token}` } })).statusCode, 200)

  // Bad credentials of every kind (they are logged as requests, never as values).
  t.equal((await call({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${key.key.slice(0, -1)}${key.key.endsWith('x') ? 'y' : 'x'}` } })).statusCode, 401)
  t.equal((await call({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${access}x` } })).statusCode, 401)
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: login.refresh_token, client_id: 'web' } })).statusCode, 403)

  // Password change, revocations.
  const second = password('battery staple horse')
  t.equal(
    (await call({ method: 'POST', url: '/users/me/password', headers: { authorization: `Bearer ${login.access_token}` }, payload: { currentPassword: first, newPassword: second } })).statusCode,
    204
  )
  t.equal(
    (await call({ method: 'POST', url: '/users/me/password', headers: { authorization: `Bearer ${login.access_token}` }, payload: { currentPassword: password('not my password!'), newPassword: password('whatever it takes') } })).statusCode,
    403
  )
  // Passkeys: a registration, a sign-in, and sign-in and step-up challenges left unspent in the database.
  const authenticator = new SoftAuthenticator('http://auth.test')
  const asUser = { authorization: `Bearer ${login.access_token}` }
  const creation = json<{ challenge: string; rp: { id: string }; user: { id: string } }>(await call({ method: 'POST', url: '/users/me/passkeys/options', headers: asUser }))
  secrets.challenge.add(creation.challenge)
  t.equal((await call({ method: 'POST', url: '/users/me/passkeys', headers: asUser, payload: { response: authenticator.create(creation) } })).statusCode, 201, 'passkey registered')
  const signIn = json<{ challenge: string; rpId: string }>(await call({ method: 'POST', url: '/auth/passkey/options' }))
  secrets.challenge.add(signIn.challenge)
  const passkeySignIn = await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'urn:token-auth:grant-type:passkey', credential: authenticator.get(signIn) } })
  t.equal(passkeySignIn.statusCode, 200, 'passkey sign-in')
  secrets.challenge.add(json<{ challenge: string }>(await call({ method: 'POST', url: '/auth/passkey/options' })).challenge)
  secrets.challenge.add(json<{ challenge: string }>(await call({ method: 'POST', url: '/users/me/passkeys/step-up-options', headers: asUser })).challenge)

  const movedEmail = `moved-${email}`
  t.equal(
    (await call({ method: 'POST', url: '/users/me/email', headers: { authorization: `Bearer ${login.access_token}` }, payload: { newEmail: movedEmail, currentPassword: second } })).statusCode,
    202
  )
  t.equal((await call({ method: 'POST', url: '/auth/verify-email', payload: { token: await mailbox(movedEmail, 'email_change') } })).statusCode, 200, 'address change')
  // A key added since the address was last confirmed (by the passkey's session: the account has a factor now); the reset's notice lists it with a one-click removal link.
  const withPasskey = { authorization: `Bearer ${json<{ access_token: string }>(passkeySignIn).access_token}` }
  const laterKey = json<{ key: string }>(await call({ method: 'POST', url: '/api-keys', headers: withPasskey, payload: { name: 'later', scopes: ['profile'] } }))
  t.ok(laterKey.key.startsWith('tak_'), 'a key after the address change')
  t.equal((await call({ method: 'POST', url: '/auth/password-reset', payload: { email: movedEmail } })).statusCode, 202)
  const unusedReset = await mailbox(movedEmail, 'password_reset')
  t.equal((await call({ method: 'POST', url: `/admin/users/${json<{ id: string }>(await call({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${login.access_token}` } })).id}/password-reset`, headers: { authorization: `Bearer ${adminLogin.access_token}` } })).statusCode, 202)
  const adminReset = await mailbox(movedEmail, 'password_reset')
  t.not(adminReset, unusedReset, 'the admin\'s reset superseded the user\'s')
  t.equal((await call({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: adminReset, newPassword: password('reset horse battery') } })).statusCode, 204, 'reset')
  t.equal((await call({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: adminReset, newPassword: password('replayed reset pass') } })).statusCode, 400, 'reset replay')
  const removal = await mailbox(movedEmail, 'password_changed_review')
  t.same(json(await call({ method: 'POST', url: '/auth/credential-removal', payload: { token: removal } })), { passkeys: 0, apiKeys: 1 }, 'the listed key removed by the one-click link')

  t.equal((await call({ method: 'POST', url: '/auth/revoke', payload: { token: login.refresh_token } })).statusCode, 200)
  t.equal((await call({ method: 'POST', url: '/auth/revoke', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${key.key}` })).statusCode, 200)
  t.equal((await call({ method: 'POST', url: '/auth/logout?scope=global', headers: { authorization: `Bearer ${adminLogin.access_token}` } })).statusCode, 204)

  t.ok(secrets.refresh.size >= 6, `${secrets.refresh.size} refresh tokens`)
  t.ok(secrets.access.size >= 8, `${secrets.access.size} access tokens`)
  t.equal(secrets.apiKey.size, 3, '3 API keys')
  t.ok(secrets.password.size >= 8, `${secrets.password.size} passwords`)
  t.ok(secrets.link.size >= 4, `${secrets.link.size} link tokens`)
  t.equal(secrets.challenge.size, 4, '4 WebAuthn challenges')
})

/** The forms a secret could be stored or logged in. */
function encodings (kind: keyof typeof secrets, secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1), Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('base64')]
  if (kind === 'refresh' || kind === 'link' || kind === 'challenge' || kind === 'code' || kind === 'browserSession') {
    const raw = Buffer.from(secret, 'base64url')
    forms.push(raw.toString('hex'), raw.toString('base64'))
  }
  if (kind === 'access') forms.push(secret.split('.')[2]!) // the signature: the part no one else can make
  if (kind === 'apiKey') forms.push(secret.slice(12)) // the part after the display prefix kept in clear
  if (kind === 'clientSecret') {
    const raw = Buffer.from(secret.slice(secret.indexOf('_') + 1), 'base64url')
    forms.push(secret.slice(secret.indexOf('_') + 1), raw.toString('hex'), raw.toString('base64'))
  }
  if (kind === 'totp') {
    const raw = base32Decode(secret)
    forms.push(raw.toString('hex'), raw.toString('base64'))
  }
  if (kind === 'recoveryCode') forms.push(secret.replaceAll('-', ''), secret.replaceAll('-', '').toLowerCase())
  if (kind === 'webhookSecret') {
    // whsec_ and the base64 of the 32 key bytes: the body alone, and the key's bytes in the other encodings.
    const raw = Buffer.from(secret.slice('whsec_'.length), 'base64')
    forms.push(secret.slice('whsec_'.length), raw.toString('hex'), raw.toString('base64url'))
  }
  if (kind === 'mfaToken') {
    const raw = Buffer.from(secret.slice(4), 'base64url')
    forms.push(secret.slice(4), raw.toString('hex'), raw.toString('base64'))
  }
  return forms.filter((form) => form.length >= 8)
}

function leaks (haystack: string): string[] {
  const lower = haystack.toLowerCase()
  const found: string[] = []
  for (const kind of Object.keys(secrets) as (keyof typeof secrets)[]) {
    for (const secret of secrets[kind]) {
      for (const form of encodings(kind, secret)) {
        const hit = /^[0-9a-f]+$/.test(form) ? lower.includes(form) : haystack.includes(form)
        if (hit) found.push(`${kind} ${secret.slice(0, 10)}… as ${form.slice(0, 16)}…`)
      }
    }
  }
  return found
}

t.test('scenario: second factors enrolled, used at login, regenerated and removed', async (t) => {
  const centreStep = async () => {
    clock.advance(((((15_000 - (clock.now() % 30_000)) % 30_000) + 30_000) % 30_000) / 1000)
    await server.revocations.sync()
  }
  const enrolled = async (label: string) => {
    const email = `${label}-${Date.now()}@rest.test`
    const pass = password(`${label} fine passphrase`)
    const { access_token: access } = json<{ access_token: string }>(await call({ method: 'POST', url: '/auth/signup', payload: { email, password: pass } }))
    const auth = { authorization: `Bearer ${access}` }
    const { secret } = json<{ secret: string }>(await call({ method: 'POST', url: '/users/me/mfa/totp', headers: auth }))
    await centreStep()
    t.equal((await call({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: auth, payload: { code: totpCode(secret, clock.now()) } })).statusCode, 200)
    clock.advance(30)
    await server.revocations.sync()
    return { email, pass, auth, secret }
  }
  const secondStep = async (email: string, pass: string, code: Record<string, string>) => {
    const first = await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: pass } })
    t.equal(first.statusCode, 400)
    return call({ method: 'POST', url: '/auth/token', payload: { grant_type: MFA_OTP, mfa_token: json<{ mfa_token: string }>(first).mfa_token, ...code } })
  }
  const kept = await enrolled('totp-kept')
  t.equal((await secondStep(kept.email, kept.pass, { otp: totpCode(kept.secret, clock.now()) })).statusCode, 200, 'second step with a code')
  const codes = [...secrets.recoveryCode]
  t.equal((await secondStep(kept.email, kept.pass, { recovery_code: codes[0]! })).statusCode, 200, 'second step with a recovery code')
  t.equal((await secondStep(kept.email, kept.pass, { recovery_code: codes[0]! })).statusCode, 400, 'a spent recovery code')
  t.equal((await call({ method: 'POST', url: '/users/me/mfa/recovery-codes', headers: kept.auth })).statusCode, 200, 'new recovery codes')
  // A token left unspent, and one a wrong code left usable.
  t.equal((await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: kept.email, password: kept.pass } })).statusCode, 400)
  t.equal((await secondStep(kept.email, kept.pass, { otp: totpCode(kept.secret, clock.now()) === '000000' ? '000001' : '000000' })).statusCode, 400)
  const removed = await enrolled('totp-removed')
  t.equal((await call({ method: 'DELETE', url: '/users/me/mfa/totp', headers: removed.auth, payload: { password: removed.pass } })).statusCode, 204)
  t.equal(secrets.totp.size, 2, '2 TOTP secrets')
  t.equal(secrets.recoveryCode.size, 30, '30 recovery codes')
  t.ok(secrets.mfaToken.size >= 5, `${secrets.mfaToken.size} mfa tokens`)
  t.equal(await server.db.mfaToken.count(), secrets.mfaToken.size, 'every mfa_token has its row')
})

t.test('scenario: a client registered with a secret, rotated, and a code flow through the hosted pages', async (t) => {
  const adminEmail = `oauth-admin-${Date.now()}@rest.test`
  const adminPassword = password('oauth admin passphrase')
  const admin = json<{ user: { id: string } }>(await call({ method: 'POST', url: '/auth/signup', payload: { email: adminEmail, password: adminPassword } }))
  await server.db.user.update({ where: { id: admin.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const asAdmin = { authorization: `Bearer ${json<{ access_token: string }>(await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: adminEmail, password: adminPassword } })).access_token}` }
  for (let started = Date.now(); Date.now() - started < 5_000; await new Promise((resolve) => setTimeout(resolve, 50))) {
    if ((await server.inject({ method: 'GET', url: '/admin/clients', headers: asAdmin })).statusCode === 200) break
  }
  const redirectUri = 'https://prints.example/callback'
  const registered = await call({ method: 'POST', url: '/admin/clients', headers: asAdmin, payload: { client_name: 'Prints', redirect_uris: [redirectUri], token_endpoint_auth_method: 'client_secret_basic' } })
  t.equal(registered.statusCode, 201, 'a confidential client registered')
  const clientId = json<{ client_id: string }>(registered).client_id
  t.equal((await call({ method: 'POST', url: `/admin/clients/${clientId}/secret`, headers: asAdmin })).statusCode, 200, 'its secret rotated')
  const secret = [...secrets.clientSecret].at(-1)!

  const email = `oauth-user-${Date.now()}@rest.test`
  const pass = password('oauth user passphrase')
  t.equal((await call({ method: 'POST', url: '/auth/signup', payload: { email, password: pass } })).statusCode, 201)
  const browser = new InjectedPageBrowser(server)
  const flow = async () => {
    const pkce = pkcePair()
    const back = await followAuthorization(browser, authorizeUrl(config.issuer, { clientId, redirectUri, scope: 'openid offline_access', codeChallenge: pkce.challenge }), { email, password: pass })
    const code = back.searchParams.get('code')!
    secrets.code.add(code)
    return { code, verifier: pkce.verifier }
  }
  const exchange = ({ code, verifier }: { code: string; verifier: string }) => call({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }).toString(),
  })
  const exchanged = await flow()
  t.equal((await exchange(exchanged)).statusCode, 200, 'a code exchanged')
  t.equal((await exchange(exchanged)).statusCode, 400, 'and replayed')
  await flow() // left unexchanged in the table
  for (const [name, value] of browser.cookies) if (name.endsWith('as_session')) secrets.browserSession.add(value)
  t.equal(secrets.clientSecret.size, 2, '2 client secrets')
  t.equal(secrets.code.size, 2, '2 authorization codes')
  t.equal(secrets.browserSession.size, 1, 'a browser session cookie')
  t.ok(await server.db.session.count({ where: { clientId: 'authorization-server' } }) >= 1, 'the browser session is a sessions row')
})

/** Each webhook endpoint's secrets, oldest first, as its creation and rotations answered them. */
const webhookSecrets = new Map<string, string[]>()

t.test('scenario: webhook endpoints registered, rotated, delivered to (failing, then not), retried, replayed and listed', async (t) => {
  const adminEmail = `webhook-admin-${Date.now()}@rest.test`
  const adminPassword = password('webhook admin passphrase')
  const admin = json<{ user: { id: string } }>(await call({ method: 'POST', url: '/auth/signup', payload: { email: adminEmail, password: adminPassword } }))
  await server.db.user.update({ where: { id: admin.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const asAdmin = { authorization: `Bearer ${json<{ access_token: string }>(await call({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: adminEmail, password: adminPassword } })).access_token}` }
  for (let started = Date.now(); Date.now() - started < 5_000; await new Promise((resolve) => setTimeout(resolve, 50))) {
    if ((await server.inject({ method: 'GET', url: '/admin/webhooks', headers: asAdmin })).statusCode === 200) break
  }
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  // The first answer to each message is a 500 (an attempt logged with its error), the next accepts it. The worker
  // polls on its own too, so messages may come before a secret is known here: they are verified at the end.
  const failedOnce = new Set<string>()
  receiver.answer = (message) => (failedOnce.has(message.id) ? 200 : (failedOnce.add(message.id), 500))
  const admit = (response: LightMyRequestResponse, status: number, label: string) => {
    t.equal(response.statusCode, status, `${label} (${response.body.slice(0, 120)})`)
    const body = json<{ id: string; secret?: string }>(response)
    if (body.secret) webhookSecrets.set(body.id, [...(webhookSecrets.get(body.id) ?? []), body.secret])
    return body.id
  }
  // One endpoint rotated once (its previous secret sealed beside the new one), one rotated twice (the first secret dropped).
  const all = admit(await call({ method: 'POST', url: '/admin/webhooks', headers: asAdmin, payload: { url: receiver.url, events: ['*'] } }), 201, 'an endpoint for every event')
  admit(await call({ method: 'POST', url: `/admin/webhooks/${all}/secret`, headers: asAdmin }), 200, 'its secret rotated')
  const rare = admit(await call({ method: 'POST', url: '/admin/webhooks', headers: asAdmin, payload: { url: receiver.url, events: ['webhook_replayed'], description: 'replays' } }), 201, 'an endpoint for replays')
  admit(await call({ method: 'POST', url: `/admin/webhooks/${rare}/secret`, headers: asAdmin }), 200, 'its secret rotated')
  admit(await call({ method: 'POST', url: `/admin/webhooks/${rare}/secret`, headers: asAdmin }), 200, 'and rotated again')
  t.equal((await call({ method: 'POST', url: '/admin/webhooks', headers: asAdmin, payload: { url: 'http://user:pw@127.0.0.1/', events: ['*'] } })).statusCode, 400, 'a refused registration')

  const signedUp = json<{ user: { id: string } }>(await call({ method: 'POST', url: '/auth/signup', payload: { email: `webhook-user-${Date.now()}@rest.test`, password: password('webhook user passphrase') } }))
  const signUpDelivered = () => receiver.accepted.some((m) => JSON.parse(m.body).type === 'user_signed_up' && JSON.parse(m.body).data.userId === signedUp.user.id)
  await server.webhookDelivery.idle()
  for (let round = 0; round < 40 && !(signUpDelivered() && receiver.accepted.length >= 3); round++) {
    await server.db.$executeRaw`UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE next_attempt_at IS NOT NULL`
    await server.webhookDelivery.deliverOnce()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(signUpDelivered() && receiver.accepted.length >= 3, `${receiver.accepted.length} messages delivered, the sign-up's among them`)
  const secretsIssued = [...webhookSecrets.values()].flat()
  const verifies = (m: (typeof receiver.received)[number]) => secretsIssued.some((secret) => {
    try {
      new Webhook(secret).verify(m.body, { 'webhook-id': m.id, 'webhook-timestamp': m.timestamp, 'webhook-signature': m.signature })
      return true
    } catch {
      return false
    }
  })
  t.ok(receiver.received.every(verifies), `every one of the ${receiver.received.length} attempts verifies under a secret the answers handed out`)
  const listed = json<{ items: { id: string; attemptLog: unknown[] }[] }>(await call({ method: 'GET', url: `/admin/webhooks/${all}/deliveries`, headers: asAdmin }))
  t.ok(listed.items.some((item) => item.attemptLog.length >= 2), 'the deliveries list shows failed attempts')
  t.equal((await call({ method: 'POST', url: `/admin/webhooks/${all}/deliveries/${listed.items[0]!.id}/retry`, headers: asAdmin })).statusCode, 202, 'a retry')
  const range = { since: new Date(clock.now() - 86_400_000).toISOString(), until: new Date(clock.now() + 60_000).toISOString() }
  t.equal((await call({ method: 'POST', url: `/admin/webhooks/${all}/replay`, headers: asAdmin, payload: range })).statusCode, 202, 'a replay')
  await server.webhookDelivery.idle()
  await server.webhookDelivery.deliverOnce()
  for (const url of ['/admin/webhooks', `/admin/webhooks/${all}`, `/admin/webhooks/${rare}/deliveries`, '/admin/audit-events?type=webhook_secret_rotated']) {
    const response = await call({ method: 'GET', url, headers: asAdmin })
    t.equal(response.statusCode, 200, `GET ${url}`)
    t.notMatch(response.body, /whsec_|"secret"/, `GET ${url}: no secret`)
  }
  t.equal((await call({ method: 'PATCH', url: `/admin/webhooks/${all}`, headers: asAdmin, payload: { enabled: false } })).statusCode, 200, 'the endpoint for every event disabled (its receiver is going away)')
  t.equal(secrets.webhookSecret.size, 5, '5 webhook secrets')
  t.ok(await server.db.webhookAttempt.count() >= 4, 'attempts were logged')
})

t.test('webhook secrets are sealed in their endpoint rows: the current and the previous one, bound to the row', async (t) => {
  const key = server.serverKeys.webhookSecretEncryption
  const rows = await server.db.webhookEndpoint.findMany()
  t.equal(rows.length, webhookSecrets.size, 'every endpoint of the scenario')
  for (const row of rows) {
    const issued = webhookSecrets.get(row.id)!
    t.equal(unseal(key, row.secretEncrypted, `webhook:${row.id}`).toString('utf8'), issued.at(-1), 'secret_encrypted opens to the current secret')
    t.equal(unseal(key, row.previousSecretEncrypted!, `webhook:${row.id}`).toString('utf8'), issued.at(-2), 'previous_secret_encrypted to the one before it')
    const other = rows.find((r) => r.id !== row.id)!
    t.throws(() => unseal(key, row.secretEncrypted, `webhook:${other.id}`), 'sealed for its row: it does not open as another endpoint\'s')
    t.throws(() => unseal(server.serverKeys.totpSecretEncryption, row.secretEncrypted, `webhook:${row.id}`), 'nor under another purpose\'s key')
    const sealed = Buffer.from(row.secretEncrypted)
    t.notOk(sealed.includes(Buffer.from(issued.at(-1)!.slice('whsec_'.length), 'base64')), 'the key bytes are not in the sealed value')
  }
})

t.test('control: the search finds a planted secret in each form', async (t) => {
  const refresh = [...secrets.refresh][0]!
  const key = [...secrets.apiKey][0]!
  t.ok(leaks(`x ${refresh} y`).length > 0, 'a refresh token as issued')
  t.ok(leaks(`\\x${Buffer.from(refresh, 'base64url').toString('hex').toUpperCase()}`).length > 0, 'its raw bytes as bytea hex')
  t.ok(leaks(`"${key.slice(12)}"`).length > 0, 'the secret part of an API key')
  t.ok(leaks([...secrets.password][0]!).length > 0, 'a password')
  t.ok(leaks(`token=${[...secrets.link][0]!}`).length > 0, 'a link token')
  t.ok(leaks(`\\x${base32Decode([...secrets.totp][0]!).toString('hex')}`).length > 0, 'a TOTP secret\'s raw bytes')
  t.ok(leaks([...secrets.recoveryCode][0]!.replaceAll('-', '')).length > 0, 'a recovery code without its hyphens')
  t.ok(leaks([...secrets.mfaToken][0]!.slice(4)).length > 0, 'an mfa_token without its prefix')
  t.ok(leaks(`\\x${Buffer.from([...secrets.challenge][0]!, 'base64url').toString('hex')}`).length > 0, 'a WebAuthn challenge\'s bytes')
  t.ok(leaks([...secrets.clientSecret][0]!.slice(5)).length > 0, 'a client secret without its prefix')
  t.ok(leaks(`code=${[...secrets.code][0]!}&state=x`).length > 0, 'an authorization code')
  t.ok(leaks(`\\x${Buffer.from([...secrets.browserSession][0]!, 'base64url').toString('hex')}`).length > 0, 'a browser session cookie\'s bytes')
  t.ok(leaks(`"${[...secrets.webhookSecret][0]!.slice('whsec_'.length)}"`).length > 0, 'a webhook secret without its prefix')
  t.ok(leaks(`\\x${Buffer.from([...secrets.webhookSecret][0]!.slice('whsec_'.length), 'base64').toString('hex')}`).length > 0, 'a webhook secret\'s key bytes')
  t.same(leaks('nothing secret here'), [], 'no false alarm')
})

t.test('no raw secret in any database table', async (t) => {
  const tables = await server.db.$queryRawUnsafe<{ table_name: string }[]>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = \'public\' AND table_type = \'BASE TABLE\''
  )
  t.ok(tables.length >= 6, `${tables.length} tables: ${tables.map((r) => r.table_name).join(', ')}`)
  let rows = 0
  const dump: string[] = []
  for (const { table_name: table } of tables) {
    const result = await server.db.$queryRawUnsafe<{ row: string }[]>(`SELECT row_to_json(x)::text AS row FROM "${table.replaceAll('"', '""')}" x`)
    rows += result.length
    for (const { row } of result) dump.push(`${table}: ${row}`)
  }
  t.ok(rows > 20, `${rows} rows dumped`)
  t.same(leaks(dump.join('\n')), [], 'zero hits')
})

t.test('no raw secret in the logs (pino at trace)', async (t) => {
  t.ok(logs.length > 50, `${logs.length} log lines`)
  t.equal(server.log.level, 'trace', 'the logger ran at trace')
  t.ok(logs.some((line) => line.includes('incoming request')) && logs.some((line) => line.includes('request completed')), 'requests were logged')
  t.ok(logs.some((line) => line.includes('/auth/token')), 'token endpoint requests were logged')
  t.same(leaks(logs.join('\n')), [], 'zero hits')
})
