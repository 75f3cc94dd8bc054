import t, { type Test } from 'tap'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../../src/shared/authentication-methods.js'
import { appsOn, buildTestApp, json } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { claimsOf, injectAs, markAddressVerified, signup, signupAdmin, type Response, type Tokens } from '../../helpers/users.js'
import { passkeyGrant, registerPasskey, registrationOptions, signInOptions, SoftAuthenticator, TEST_ORIGIN } from '../../helpers/webauthn.js'

/**
 * A signed-in user's passkeys (DESIGN §3.12): the registration options
 * (relying party from configuration only, discoverable with user
 * verification, a stable random user handle, existing ones excluded), the
 * registration's checks (challenge single use, short-lived, the user's own;
 * origin, RP ID, user verification), listing, renaming and deleting only
 * one's own, recent authentication where it adds or removes a way in (and,
 * to add one beside an existing factor, that factor proven in the session),
 * a verified address to add one, and an admin made to enrol reaching these
 * routes. Refusals are 4xx, never 500.
 *
 * One database for the file; tests that move the clock build their own app.
 */

const database = await createTestDatabase()
const main = await buildTestApp({ PRODUCT_NAME: 'Acme Accounts' }, { database })
const { app } = main
const appOn = appsOn(database)
t.teardown(async () => {
  await main.close()
  await database.drop()
})

type Options = Awaited<ReturnType<typeof registrationOptions>>
type App = typeof app

/**
 * Steps the session of `tokens` up with `authenticator`'s newest passkey
 * (step-up options, then the step-up grant): the new access token asserts
 * acr mfa, which adding a passkey beside an existing one needs. The refresh
 * token rotates: use the returned one. Throws unless it worked.
 */
async function stepUpWithPasskey (target: App, tokens: Tokens, authenticator: SoftAuthenticator): Promise<Tokens> {
  const options = await injectAs(target, tokens.access_token, 'POST', '/users/me/passkeys/step-up-options')
  if (options.statusCode !== 200) throw new Error(`step-up options: ${options.statusCode} ${options.body}`)
  const response = await target.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: `${GRANT_TYPE_PREFIX}step-up`, refresh_token: tokens.refresh_token, credential: authenticator.get(json<{ challenge: string; rpId: string }>(options)) },
  })
  if (response.statusCode !== 200) throw new Error(`step-up: ${response.statusCode} ${response.body}`)
  const stepped = json<Tokens>(response)
  if (claimsOf(stepped.access_token).acr !== ACR_MFA) throw new Error('step-up: the token does not assert mfa')
  return stepped
}

/** A password-only token of an account with a second factor adds no passkey: 401 and the RFC 9470 challenge naming the mfa level. */
function assertNeedsFactorProof (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 401, `${label}: ${response.body}`)
  t.equal(json(response).code, 'insufficient_user_authentication', label)
  t.match(response.headers['www-authenticate'], `acr_values="${ACR_MFA}"`, `${label}: the challenge asks for the mfa level`)
}

function finish (accessToken: string, response: unknown, name?: string, target = app) {
  return injectAs(target, accessToken, 'POST', '/users/me/passkeys', { ...(name === undefined ? {} : { name }), response: response as Record<string, unknown> })
}

t.test('registration options: the configured relying party, a discoverable credential with user verification, no attestation', async (t) => {
  const user = await signup(app)
  const unverified = await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/options')
  t.equal(unverified.statusCode, 403, unverified.body)
  t.equal(json(unverified).code, 'email_verification_required', 'no passkey on an address nobody has proven')
  await markAddressVerified(app, user.access_token)
  // A forged Host and Origin change nothing: the RP ID is configuration (WEBAUTHN_RP_ID, default ISSUER's host).
  const response = await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/options', undefined, { host: 'evil.test', origin: 'http://evil.test' })
  t.equal(response.statusCode, 200, response.body)
  const options = json<Options & Record<string, any>>(response)
  t.same(options.rp, { id: 'auth.test', name: 'Acme Accounts' })
  t.equal(options.user.name, user.email, 'the account picker shows the address')
  t.match(options.user.id, /^[A-Za-z0-9_-]{43}$/, 'the user handle: 32 random bytes, base64url')
  t.not(Buffer.from(options.user.id, 'base64url').toString(), user.id, 'not the user id')
  t.notOk(options.user.id.includes(Buffer.from(user.email).toString('base64url').slice(0, 10)), 'not the address')
  t.match(options.challenge, /^[A-Za-z0-9_-]{43}$/)
  t.same(options.authenticatorSelection, { residentKey: 'required', requireResidentKey: true, userVerification: 'required' })
  t.equal(options.attestation, 'none')
  t.equal(options.timeout, 300_000, 'five minutes')
  t.same(options.excludeCredentials, [])
  t.same(options.pubKeyCredParams.map((p: { alg: number }) => p.alg), [-8, -7, -257])

  const again = await registrationOptions(app, user.access_token)
  t.equal(again.user.id, options.user.id, 'the user handle is stable')
  t.not(again.challenge, options.challenge, 'each ceremony has its own challenge')
  const stored = await app.db.user.findUniqueOrThrow({ where: { id: user.id }, select: { webauthnUserHandle: true } })
  t.equal(Buffer.from(stored.webauthnUserHandle!).toString('base64url'), options.user.id, 'the handle is stored with the user')
  const other = await registrationOptions(app, (await signup(app)).access_token)
  t.not(other.user.id, options.user.id, 'each user has their own handle')
})

t.test('registration verifies and stores the credential; the user handle and the excluded list follow it', async (t) => {
  const user = await signup(app)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN, { backupEligible: true, backedUp: true })
  const options = await registrationOptions(app, user.access_token)
  const response = await finish(user.access_token, authenticator.create(options), '  Work laptop  ')
  t.equal(response.statusCode, 201, response.body)
  const passkey = json(response)
  t.match(passkey, { name: 'Work laptop', deviceType: 'multiDevice', backedUp: true, transports: ['internal'], lastUsedAt: null, aaguid: '00000000-0000-0000-0000-000000000000' })
  const row = await app.db.passkey.findUniqueOrThrow({ where: { id: passkey.id as string } })
  t.equal(row.credentialId, authenticator.credentials[0]!.id.toString('base64url'))
  t.equal(Buffer.from(row.publicKey).toString('base64url'), Buffer.from(authenticator.credentials[0]!.publicKeyCose).toString('base64url'), 'the COSE public key')
  t.equal(row.counter, 0n)
  t.ok(await app.db.auditEvent.findFirst({ where: { type: 'passkey_registered', userId: user.id, details: { path: ['passkeyId'], equals: passkey.id as string } } }), 'audited')
  const notices = await app.db.emailOutbox.findMany({ where: { recipient: user.email, template: 'credential_added' } })
  t.equal(notices.length, 1, 'the address is told of the new passkey')
  t.match(notices[0]?.data, { credential: 'passkey “Work laptop”' }, 'by its name')

  // The account has a passkey now: the next one needs it proven in the session.
  assertNeedsFactorProof(t, await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/options'), 'the password session')
  const stepped = await stepUpWithPasskey(app, user, authenticator)
  const next = await registrationOptions(app, stepped.access_token)
  t.same(next.excludeCredentials, [{ id: row.credentialId, type: 'public-key', transports: ['internal'] }], 'the registered credential is excluded next time')
  const unnamed = await finish(stepped.access_token, new SoftAuthenticator(TEST_ORIGIN).create(next))
  t.equal(unnamed.statusCode, 201, unnamed.body)
  t.match(json(unnamed), { name: 'Passkey', deviceType: 'singleDevice', backedUp: false }, 'a default name; a device-bound key')

  const again = await finish(stepped.access_token, authenticator.create(await registrationOptions(app, stepped.access_token)))
  t.equal(again.statusCode, 201, 'another credential of the same authenticator is another passkey')
})

t.test('a registration challenge is single use, short-lived, the user\'s own, and replaced by the next', async (t) => {
  const { app: clocked, clock } = await appOn(t)
  const user = await signup(clocked)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const options = await registrationOptions(clocked, user.access_token)
  const first = await finish(user.access_token, authenticator.create(options), undefined, clocked)
  t.equal(first.statusCode, 201)
  // With a passkey on the account, adding one needs it proven in the session: what refuses the replay is then the challenge.
  const stepped = await stepUpWithPasskey(clocked, user, authenticator)
  const replay = await finish(stepped.access_token, authenticator.create(options), undefined, clocked)
  t.equal(replay.statusCode, 400, 'the same challenge again')
  t.equal(json(replay).code, 'passkey_challenge_invalid')

  const expiring = await registrationOptions(clocked, stepped.access_token)
  clock.advance(301)
  // The revocation list is stale after a jump of the clock: refresh it, as its poll would.
  await clocked.revocations.sync()
  const late = await finish(stepped.access_token, authenticator.create(expiring), undefined, clocked)
  t.equal(json(late).code, 'passkey_challenge_invalid', 'past five minutes')

  // Stay within the recent-authentication window for what follows.
  const fresh = await signup(clocked)
  const other = await signup(clocked)
  await markAddressVerified(clocked, fresh.access_token) // refused for the challenge, not the address
  const theirs = await registrationOptions(clocked, other.access_token)
  const stolen = await finish(fresh.access_token, new SoftAuthenticator(TEST_ORIGIN).create(theirs), undefined, clocked)
  t.equal(json(stolen).code, 'passkey_challenge_invalid', 'another user\'s challenge')
  t.equal(await clocked.db.passkey.count({ where: { userId: fresh.id } }), 0)
  const stillTheirs = await finish(other.access_token, new SoftAuthenticator(TEST_ORIGIN).create(theirs), undefined, clocked)
  t.equal(stillTheirs.statusCode, 201, 'a presentation by someone else spends nothing')

  const older = await registrationOptions(clocked, fresh.access_token)
  const newer = await registrationOptions(clocked, fresh.access_token)
  t.equal(json(await finish(fresh.access_token, new SoftAuthenticator(TEST_ORIGIN).create(older), undefined, clocked)).code, 'passkey_challenge_invalid', 'a newer ceremony replaces the older')
  const freshAuthenticator = new SoftAuthenticator(TEST_ORIGIN)
  t.equal((await finish(fresh.access_token, freshAuthenticator.create(newer), undefined, clocked)).statusCode, 201)
  const freshStepped = await stepUpWithPasskey(clocked, fresh, freshAuthenticator)
  const authenticationChallenge = await signInOptions(clocked)
  const crossPurpose = await finish(freshStepped.access_token, new SoftAuthenticator(TEST_ORIGIN).create({ ...newer, challenge: authenticationChallenge.challenge }), undefined, clocked)
  t.equal(json(crossPurpose).code, 'passkey_challenge_invalid', 'a sign-in challenge does not register')
  t.ok(await clocked.db.auditEvent.findFirst({ where: { type: 'passkey_registration_failed', userId: fresh.id } }), 'refusals are audited')
})

t.test('registration refuses another origin, another RP ID, no user verification, a get() response and a broken attestation', async (t) => {
  const user = await signup(app)
  const cases: [string, (options: Options) => unknown, string][] = [
    ['an origin outside WEBAUTHN_ORIGINS', (o) => new SoftAuthenticator('https://evil.test').create(o), 'origin'],
    ['a look-alike origin', (o) => new SoftAuthenticator('http://auth.test.evil.test').create(o), 'origin'],
    ['another RP ID', (o) => new SoftAuthenticator(TEST_ORIGIN).create(o, { rpId: 'evil.test' }), 'RP ID'],
    ['no user verification', (o) => new SoftAuthenticator(TEST_ORIGIN).create(o, { userVerified: false }), 'verif'],
    ['clientData of a sign-in', (o) => new SoftAuthenticator(TEST_ORIGIN).create(o, { type: 'webauthn.get' }), 'type'],
    ['a truncated attestation object', (o) => {
      const response = new SoftAuthenticator(TEST_ORIGIN).create(o)
      return { ...response, response: { ...response.response, attestationObject: response.response.attestationObject.slice(0, 40) } }
    }, 'Authenticator data'],
  ]
  for (const [label, make, words] of cases) {
    const response = await finish(user.access_token, make(await registrationOptions(app, user.access_token)))
    t.equal(response.statusCode, 400, `${label}: 400 (${response.body})`)
    t.equal(json(response).code, 'passkey_rejected', label)
    t.match(json(response).message, words, label)
  }
  t.equal(await app.db.passkey.count({ where: { userId: user.id } }), 0, 'nothing stored')
})

t.test('a malformed registration body is a 400, never a 500', async (t) => {
  const user = await signup(app)
  const options = await registrationOptions(app, user.access_token)
  const good = new SoftAuthenticator(TEST_ORIGIN).create(options)
  const bodies: [string, unknown][] = [
    ['no response', {}],
    ['an unknown field', { response: good, admin: true }],
    ['a blank name', { name: '   ', response: good }],
    ['a long name', { name: 'x'.repeat(65), response: good }],
    ['clientDataJSON not base64url', { response: { ...good, response: { ...good.response, clientDataJSON: '%%%' } } }],
    ['type not public-key', { response: { ...good, type: 'password' } }],
    ['a huge attestation', { response: { ...good, response: { ...good.response, attestationObject: 'A'.repeat(20_000) } } }],
  ]
  for (const [label, body] of bodies) {
    const response = await injectAs(app, user.access_token, 'POST', '/users/me/passkeys', body as Record<string, unknown>)
    t.equal(response.statusCode, 400, `${label}: ${response.body}`)
  }
  const garbage: [string, string][] = [
    ['clientDataJSON not JSON', Buffer.from('not json').toString('base64url')],
    ['clientDataJSON without a challenge', Buffer.from('{"type":"webauthn.create"}').toString('base64url')],
    ['a challenge of another shape', Buffer.from('{"challenge":"abc"}').toString('base64url')],
  ]
  for (const [label, clientDataJSON] of garbage) {
    const response = await finish(user.access_token, { ...good, response: { ...good.response, clientDataJSON } })
    t.equal(response.statusCode, 400, label)
    t.equal(json(response).code, 'passkey_challenge_invalid', label)
  }
  const unauthenticated = await app.inject({ method: 'POST', url: '/users/me/passkeys/options' })
  t.equal(unauthenticated.statusCode, 401)
})

t.test('a credential is registered once; a user holds at most 20 passkeys', async (t) => {
  const user = await signup(app)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const options = await registrationOptions(app, user.access_token)
  const response = authenticator.create(options)
  t.equal((await finish(user.access_token, response)).statusCode, 201)
  const other = await signup(app)
  // The same credential attested again, under another user's ceremony.
  const copied = authenticator.create(await registrationOptions(app, other.access_token), { reuse: authenticator.credentials[0]! })
  const refused = await finish(other.access_token, copied)
  t.equal(refused.statusCode, 409, refused.body)
  t.equal(json(refused).code, 'passkey_exists')
  const stepped = await stepUpWithPasskey(app, user, authenticator) // the account has a passkey: adding another needs it proven
  const againMine = await finish(stepped.access_token, authenticator.create(await registrationOptions(app, stepped.access_token), { reuse: authenticator.credentials[0]! }))
  t.equal(json(againMine).code, 'passkey_exists', 'and for its own user too')

  // One real passkey (to step up with: the account has a factor) and 19 fillers.
  const full = await signup(app)
  const fullAuthenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(app, full.access_token, fullAuthenticator)
  await app.db.passkey.createMany({
    data: Array.from({ length: 19 }, (_, i) => ({ userId: full.id, credentialId: `filler-${full.id}-${i}`, publicKey: new Uint8Array([1]), deviceType: 'singleDevice', backedUp: false, aaguid: '0', name: `filler ${i}` })),
  })
  t.equal(await app.db.passkey.count({ where: { userId: full.id } }), 20)
  const fullStepped = await stepUpWithPasskey(app, full, fullAuthenticator)
  const limited = await injectAs(app, fullStepped.access_token, 'POST', '/users/me/passkeys/options')
  t.equal(limited.statusCode, 409)
  t.equal(json(limited).code, 'passkey_limit')
})

t.test('listing, renaming and deleting: one\'s own passkeys only', async (t) => {
  const owner = await signup(app)
  const stranger = await signup(app)
  const ownerAuthenticator = new SoftAuthenticator(TEST_ORIGIN)
  const first = await registerPasskey(app, owner.access_token, ownerAuthenticator, 'First')
  // A second passkey beside the first needs the first proven in the session.
  const second = await registerPasskey(app, (await stepUpWithPasskey(app, owner, ownerAuthenticator)).access_token, new SoftAuthenticator(TEST_ORIGIN), 'Second')
  await registerPasskey(app, stranger.access_token, new SoftAuthenticator(TEST_ORIGIN), 'Theirs')

  const list = await injectAs(app, owner.access_token, 'GET', '/users/me/passkeys')
  t.equal(list.statusCode, 200)
  t.same(json<{ items: { name: string }[] }>(list).items.map((p) => p.name), ['First', 'Second'], 'oldest first, only the owner\'s')
  t.notOk(list.body.includes('publicKey') || list.body.includes('credentialId'), 'no key material in the listing')

  const renamed = await injectAs(app, owner.access_token, 'PATCH', `/users/me/passkeys/${first.id}`, { name: 'Phone' })
  t.equal(renamed.statusCode, 200, renamed.body)
  t.equal(json(renamed).name, 'Phone')
  t.ok(await app.db.auditEvent.findFirst({ where: { type: 'passkey_renamed', userId: owner.id } }), 'rename audited')
  const foreignRename = await injectAs(app, stranger.access_token, 'PATCH', `/users/me/passkeys/${first.id}`, { name: 'Mine now' })
  t.equal(foreignRename.statusCode, 404)
  t.equal(json(foreignRename).code, 'passkey_not_found')
  t.equal((await injectAs(app, owner.access_token, 'PATCH', `/users/me/passkeys/${first.id}`, { name: '' })).statusCode, 400, 'an empty name')
  t.equal((await injectAs(app, owner.access_token, 'PATCH', '/users/me/passkeys/not-a-uuid', { name: 'x' })).statusCode, 400, 'a malformed id')

  const foreignDelete = await injectAs(app, stranger.access_token, 'DELETE', `/users/me/passkeys/${second.id}`)
  t.equal(foreignDelete.statusCode, 404)
  t.equal(await app.db.passkey.count({ where: { userId: owner.id } }), 2, 'a stranger deleted nothing')
  const deleted = await injectAs(app, owner.access_token, 'DELETE', `/users/me/passkeys/${second.id}`)
  t.equal(deleted.statusCode, 204)
  t.ok(await app.db.auditEvent.findFirst({ where: { type: 'passkey_deleted', userId: owner.id, details: { path: ['passkeyId'], equals: second.id } } }), 'deletion audited')
  t.equal((await injectAs(app, owner.access_token, 'DELETE', `/users/me/passkeys/${second.id}`)).statusCode, 404, 'gone')
  t.same(json<{ items: { name: string }[] }>(await injectAs(app, owner.access_token, 'GET', '/users/me/passkeys')).items.map((p) => p.name), ['Phone'])
})

t.test('adding and deleting a passkey need a recent authentication; listing and renaming do not', async (t) => {
  const { app: clocked, clock } = await appOn(t)
  const user = await signup(clocked)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const passkey = await registerPasskey(clocked, user.access_token, authenticator)
  // The account has a passkey: prove it in the session, so that only the authentication's age is wrong below.
  const stepped = await stepUpWithPasskey(clocked, user, authenticator)
  clock.advance(901)
  await clocked.revocations.sync()
  // The access token itself has expired by now (10 minutes): refresh, which keeps auth_time (and the level).
  const refreshed = await clocked.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: stepped.refresh_token } })
  const token = json<{ access_token: string }>(refreshed).access_token
  t.equal(claimsOf(token).acr, ACR_MFA, 'the session proved its passkey')
  // A well-formed body, so that what refuses it is the authentication's age.
  const shaped = new SoftAuthenticator(TEST_ORIGIN).create({ challenge: 'A'.repeat(43), rp: { id: 'auth.test' }, user: { id: 'AAAA' } })
  for (const [method, url] of [['POST', '/users/me/passkeys/options'], ['POST', '/users/me/passkeys'], ['DELETE', `/users/me/passkeys/${passkey.id}`]] as const) {
    const response = await injectAs(clocked, token, method, url, url.endsWith('passkeys') ? { response: shaped } : undefined)
    t.equal(response.statusCode, 401, `${method} ${url}`)
    t.equal(json(response).code, 'insufficient_user_authentication', `${method} ${url}`)
    t.match(json(response).message, /recent authentication/, `${method} ${url}: for its age`)
    t.match(response.headers['www-authenticate'], /max_age=/, `${method} ${url}: the challenge names max_age`)
  }
  t.equal((await injectAs(clocked, token, 'GET', '/users/me/passkeys')).statusCode, 200)
  t.equal((await injectAs(clocked, token, 'PATCH', `/users/me/passkeys/${passkey.id}`, { name: 'Renamed' })).statusCode, 200)
})

t.test('API keys cannot manage passkeys', async (t) => {
  const user = await signup(app)
  await markAddressVerified(app, user.access_token) // an API key needs a verified address
  const created = await injectAs(app, user.access_token, 'POST', '/api-keys', { name: 'k', scopes: ['profile'] })
  t.equal(created.statusCode, 201, created.body)
  const key = json<{ key: string }>(created).key
  for (const [method, url] of [['POST', '/users/me/passkeys/options'], ['GET', '/users/me/passkeys']] as const) {
    const response = await app.inject({ method, url, headers: { 'x-api-key': key } })
    t.equal(response.statusCode, 401, `${method} ${url}`)
  }
})

t.test('step-up options name the user\'s own passkeys, over a challenge bound to the user', async (t) => {
  const user = await signup(app)
  const none = await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/step-up-options')
  t.equal(none.statusCode, 404)
  t.equal(json(none).code, 'passkey_not_found')
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(app, user.access_token, authenticator)
  await registerPasskey(app, (await signup(app)).access_token, new SoftAuthenticator(TEST_ORIGIN))
  const response = await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/step-up-options')
  t.equal(response.statusCode, 200)
  const options = json<{ challenge: string; rpId: string; userVerification: string; allowCredentials: { id: string }[] }>(response)
  t.equal(options.rpId, 'auth.test')
  t.equal(options.userVerification, 'required')
  t.same(options.allowCredentials.map((c) => c.id), [authenticator.credentials[0]!.id.toString('base64url')])
  // Its challenge is a step-up's: the sign-in grant does not take it.
  const signIn = await passkeyGrant(app, authenticator.get(options))
  t.equal(signIn.statusCode, 400)
  t.equal(json(signIn).error, 'invalid_grant')
})

t.test('an admin made to enrol a second factor registers a passkey, then signs in with it to reach the admin API', async (t) => {
  const { app: strict } = await appOn(t, { REQUIRE_MFA_FOR_ADMINS: 'true' })
  const admin = await signupAdmin(strict)
  const refused = await injectAs(strict, admin.access_token, 'GET', '/admin/users?limit=1')
  t.equal(refused.statusCode, 401, 'a password alone does not reach the admin API')
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(strict, admin.access_token, authenticator)
  t.equal((await injectAs(strict, admin.access_token, 'GET', '/users/me/passkeys')).statusCode, 200, 'listing is open to enrolment')
  t.equal((await injectAs(strict, admin.access_token, 'POST', '/users/me/passkeys/step-up-options')).statusCode, 200, 'and so are step-up options')
  const signedIn = await passkeyGrant(strict, authenticator.get(await signInOptions(strict)), { client_id: 'mobile' })
  t.equal(signedIn.statusCode, 200, signedIn.body)
  const token = json<{ access_token: string }>(signedIn).access_token
  t.equal(claimsOf(token).acr, 'urn:token-auth:acr:mfa')
  t.equal((await injectAs(strict, token, 'GET', '/admin/users?limit=1')).statusCode, 200, 'a passkey login is two factors')
})
