import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../../src/config.js'
import { isWellFormedApiKey } from '../../../src/features/api-keys/api-keys.js'
import { buildTestApp, json, TEST_ENV, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { createApiKey, injectAs, markAddressVerified, PASSWORD, signup, signupAdmin, type CreatedApiKey } from '../../helpers/users.js'

/**
 * API keys (DESIGN §3.7): creation (shown once), listing without secrets,
 * revocation, scopes a user may grant, both ways of sending a key, scope
 * enforcement, routes that take access tokens only, revocation and expiry at
 * once, the checksum refusing a mistyped key before any look-up, the
 * throttled last-used write, and no raw key in the database.
 *
 * One database for the file; tests that move the clock build their own app.
 */

const database = await createTestDatabase()
// A second scope so a key can lack `profile`.
const ENV = { SCOPES: 'profile links:read' }
const main = await buildTestApp(ENV, { database })
const { app } = main
t.teardown(async () => {
  await main.close()
  await database.drop()
})

const KEY_FORMAT = /^tak_[0-9A-Za-z]{49}$/

type App = TestApp['app']

type CreatedKey = CreatedApiKey

function createKeyRequest (target: App, accessToken: string, body: Record<string, unknown>) {
  return injectAs(target, accessToken, 'POST', '/api-keys', body)
}

function createKey (target: App, accessToken: string, body: Record<string, unknown> = {}): Promise<CreatedKey> {
  return createApiKey(target, accessToken, { name: 'test key', scopes: ['profile'], ...body })
}

interface ListedKey {
  id: string
  prefix: string
  name: string
  scopes: string[]
  expiresAt: string | null
  createdAt: string
  lastUsedAt: string | null
}

async function listKeys (target: App, accessToken: string): Promise<ListedKey[]> {
  const response = await target.inject({ method: 'GET', url: '/api-keys', headers: { authorization: `Bearer ${accessToken}` } })
  if (response.statusCode !== 200) throw new Error(`list keys: ${response.statusCode} ${response.body}`)
  return json<{ items: ListedKey[] }>(response).items
}

function me (target: App, headers: Record<string, string>) {
  return target.inject({ method: 'GET', url: '/users/me', headers })
}

function assert401 (t: Test, response: Awaited<ReturnType<typeof me>>, message: string) {
  t.equal(response.statusCode, 401, `${message}: 401 (${response.body})`)
  t.match(response.headers['www-authenticate'], /^Bearer/, `${message}: WWW-Authenticate challenge`)
}

/** Counts calls of a Prisma model method while `fn` runs. */
async function countCalls<T> (
  delegate: Record<string, unknown>,
  method: string,
  fn: () => Promise<T>
): Promise<{ calls: number; result: T }> {
  const original = delegate[method] as (...args: unknown[]) => unknown
  let calls = 0
  delegate[method] = (...args: unknown[]) => {
    calls++
    return original.apply(delegate, args)
  }
  try {
    const result = await fn()
    return { calls, result }
  } finally {
    delegate[method] = original
  }
}

/** Polls until `check` returns a value (background writes), for at most `ms`. */
async function eventually<T> (check: () => Promise<T | null | undefined>, ms = 5_000): Promise<T | null> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== null && value !== undefined) return value
    if (Date.now() > deadline) return null
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('create: 201, the key shown once with its summary, no-store', async (t) => {
  const user = await signup(app)
  // A key acts without the password: none on an address nobody has proven.
  const unverified = await createKeyRequest(app, user.access_token, { name: 'CI deploys', scopes: ['profile'] })
  t.equal(unverified.statusCode, 403, unverified.body)
  t.equal(json(unverified).code, 'email_verification_required')
  t.equal(await app.db.apiKey.count({ where: { userId: user.id } }), 0, 'no key for an unverified address')
  await markAddressVerified(app, user.access_token)

  const before = Date.now()
  const response = await createKeyRequest(app, user.access_token, { name: 'CI deploys', scopes: ['profile', 'links:read'] })
  t.equal(response.statusCode, 201, response.body)
  t.equal(response.headers['cache-control'], 'no-store', 'the secret is not cached')
  const body = json<CreatedKey>(response)
  t.same(Object.keys(body).sort(), ['createdAt', 'expiresAt', 'id', 'key', 'name', 'prefix', 'scopes'])
  t.match(body.id, /^[0-9a-f-]{36}$/)
  t.match(body.key, KEY_FORMAT, 'tak_ + 49 base62 characters')
  t.ok(isWellFormedApiKey(body.key), 'the checksum matches')
  t.ok(body.prefix.length > 'tak_'.length && body.prefix.length < body.key.length, 'the prefix is a part of the key')
  t.ok(body.key.startsWith(body.prefix), "the prefix is the key's start")
  t.equal(body.name, 'CI deploys')
  t.same(body.scopes, ['profile', 'links:read'])
  t.equal(body.expiresAt, null, 'no expiry unless asked')
  t.ok(Date.parse(body.createdAt) >= before - 1000 && Date.parse(body.createdAt) <= Date.now() + 1000, 'createdAt is now')
  const notices = await app.db.emailOutbox.findMany({ where: { recipient: user.email, template: 'credential_added' } })
  t.equal(notices.length, 1, 'the address is told of the new key')
  t.match(notices[0]?.data, { credential: `API key “CI deploys (${body.prefix}…)”` }, 'naming it by name and prefix')
  t.notOk(JSON.stringify(notices[0]?.data).includes(body.key), 'never the key itself')

  const expiresAt = new Date(Date.now() + 3600_000).toISOString()
  const expiring = await createKey(app, user.access_token, { expiresAt })
  t.equal(expiring.expiresAt, expiresAt, 'expiresAt as asked')

  const other = await createKey(app, user.access_token)
  t.not(other.key, body.key, 'keys are random')
  t.not(other.prefix, body.prefix, 'prefixes tell keys apart')
})

t.test('list: summaries with lastUsedAt, never the key or its hash', async (t) => {
  const user = await signup(app)
  const first = await createKey(app, user.access_token, { name: 'first' })
  const second = await createKey(app, user.access_token, { name: 'second', scopes: ['links:read'] })
  const response = await app.inject({ method: 'GET', url: '/api-keys', headers: { authorization: `Bearer ${user.access_token}` } })
  t.equal(response.statusCode, 200)
  t.notOk(response.body.includes(first.key) || response.body.includes(second.key), 'no key in the listing')
  t.notMatch(response.body, /tak_[0-9A-Za-z]{49}/, 'nothing shaped like a key')
  const items = json<{ items: ListedKey[] }>(response).items
  t.equal(items.length, 2, "the user's keys only")
  for (const item of items) {
    t.same(Object.keys(item).sort(), ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'prefix', 'scopes'], 'summary fields only')
    t.equal(item.lastUsedAt, null, 'not used yet')
  }
  const byId = new Map(items.map((item) => [item.id, item]))
  t.equal(byId.get(first.id)?.prefix, first.prefix)
  t.same(byId.get(second.id)?.scopes, ['links:read'])
  t.same(await listKeys(app, (await signup(app)).access_token), [], 'another user sees none of them')
})

t.test('revoke: 204, then 404; a key of another user is 404 and stays live', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token)
  const revoke = (id: string, token = user.access_token) =>
    app.inject({ method: 'DELETE', url: `/api-keys/${id}`, headers: { authorization: `Bearer ${token}` } })

  const mallory = await signup(app, { label: 'mallory' })
  const notHers = await revoke(key.id, mallory.access_token)
  t.equal(notHers.statusCode, 404, "another user's key id is not found")
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'the key still works')

  const first = await revoke(key.id)
  t.equal(first.statusCode, 204)
  t.equal(first.body, '')
  const again = await revoke(key.id)
  t.equal(again.statusCode, 404, 'a revoked key is not found again')
  t.equal(json(again).code, 'api_key_not_found')
  t.equal((await revoke('00000000-0000-4000-8000-000000000000')).statusCode, 404, 'unknown id')
  t.equal((await revoke('not-a-uuid')).statusCode, 400, 'malformed id')
  t.same(await listKeys(app, user.access_token), [], 'gone from the listing')
  assert401(t, await me(app, { 'x-api-key': key.key }), 'the revoked key')
})

t.test('scopes: a user may not grant introspect, an admin may; unknown scopes and past expiry are refused', async (t) => {
  const user = await signup(app)
  await markAddressVerified(app, user.access_token) // refusals for the scope, not the address
  for (const scopes of [['introspect'], ['profile', 'introspect']]) {
    const response = await createKeyRequest(app, user.access_token, { name: 'x', scopes })
    t.equal(response.statusCode, 400, `user asks for ${scopes.join(' ')}: 400`)
    t.equal(json(response).code, 'invalid_scope')
  }
  const unknown = await createKeyRequest(app, user.access_token, { name: 'x', scopes: ['links:write'] })
  t.equal(unknown.statusCode, 400, 'a scope not in SCOPES')
  t.equal(json(unknown).code, 'invalid_scope')

  const admin = await signupAdmin(app)
  await markAddressVerified(app, admin.access_token)
  const introspector = await createKeyRequest(app, admin.access_token, { name: 'gateway', scopes: ['introspect'] })
  t.equal(introspector.statusCode, 201, `an admin may grant introspect (${introspector.body})`)
  t.same(json<CreatedKey>(introspector).scopes, ['introspect'])
  const adminUnknown = await createKeyRequest(app, admin.access_token, { name: 'x', scopes: ['superuser'] })
  t.equal(adminUnknown.statusCode, 400, 'not even an admin may grant an unknown scope')
  t.equal(json(adminUnknown).code, 'invalid_scope')

  const past = await createKeyRequest(app, user.access_token, {
    name: 'x',
    scopes: ['profile'],
    expiresAt: new Date(Date.now() - 60_000).toISOString(),
  })
  t.equal(past.statusCode, 400, 'expiresAt in the past')
  t.equal(json(past).code, 'invalid_expiry')
  const garbage = await createKeyRequest(app, user.access_token, { name: 'x', scopes: ['profile'], expiresAt: 'next tuesday' })
  t.equal(garbage.statusCode, 400, 'expiresAt not a date-time')
  t.equal((await createKeyRequest(app, user.access_token, { name: 'x', scopes: [] })).statusCode, 400, 'no scopes')
  t.equal((await createKeyRequest(app, user.access_token, { name: 'x', scopes: ['profile'], admin: true })).statusCode, 400, 'unknown field')
  t.same(await listKeys(app, user.access_token), [], 'nothing was created by the refused requests')
})

t.test('using a key: Bearer or X-API-Key; scopes are enforced', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token)

  for (const headers of [{ authorization: `Bearer ${key.key}` }, { 'x-api-key': key.key }] as Record<string, string>[]) {
    const response = await me(app, headers)
    t.equal(response.statusCode, 200, `${Object.keys(headers)[0]}: 200 (${response.body})`)
    t.equal(json(response).id, user.id, 'the key acts for its user')
    t.equal(json(response).email, user.email)
  }

  const narrow = await createKey(app, user.access_token, { scopes: ['links:read'] })
  for (const headers of [{ authorization: `Bearer ${narrow.key}` }, { 'x-api-key': narrow.key }] as Record<string, string>[]) {
    const response = await me(app, headers)
    t.equal(response.statusCode, 403, 'a key without profile: 403')
    t.equal(json(response).code, 'insufficient_scope')
    t.match(response.headers['www-authenticate'], /error="insufficient_scope"/, 'RFC 6750 challenge')
    t.match(response.headers['www-authenticate'], /scope="profile"/, 'naming the scope needed')
  }
})

t.test('API keys are refused on routes that take access tokens only', async (t) => {
  const admin = await signupAdmin(app)
  const key = await createKey(app, admin.access_token, { scopes: ['profile', 'introspect'] })
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'the key itself is good')

  const routes: { method: 'GET' | 'POST' | 'DELETE' | 'PATCH'; url: string; payload?: Record<string, unknown> }[] = [
    { method: 'POST', url: '/api-keys', payload: { name: 'minted by a key', scopes: ['profile'] } },
    { method: 'GET', url: '/api-keys' },
    { method: 'DELETE', url: `/api-keys/${key.id}` },
    { method: 'GET', url: '/auth/sessions' },
    { method: 'POST', url: '/auth/logout' },
    { method: 'POST', url: '/users/me/password', payload: { currentPassword: PASSWORD, newPassword: 'another fine passphrase' } },
    { method: 'GET', url: '/admin/users' },
    { method: 'GET', url: `/admin/users/${admin.id}` },
    { method: 'PATCH', url: `/admin/users/${admin.id}`, payload: { role: 'admin' } },
    { method: 'GET', url: '/admin/audit-events' },
  ]
  for (const route of routes) {
    for (const headers of [{ authorization: `Bearer ${key.key}` }, { 'x-api-key': key.key }] as Record<string, string>[]) {
      const response = await app.inject({ ...route, headers })
      assert401(t, response, `${route.method} ${route.url} with ${Object.keys(headers)[0]}`)
    }
  }
  t.same((await listKeys(app, admin.access_token)).map((k) => k.id), [key.id], 'no key was minted or revoked by a key')
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'and it still works')
})

t.test('a revoked key is refused at once; a disabled user\'s key too', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token)
  t.equal((await me(app, { authorization: `Bearer ${key.key}` })).statusCode, 200)
  const revoked = await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: { authorization: `Bearer ${user.access_token}` } })
  t.equal(revoked.statusCode, 204)
  assert401(t, await me(app, { authorization: `Bearer ${key.key}` }), 'right after revocation, Bearer')
  assert401(t, await me(app, { 'x-api-key': key.key }), 'right after revocation, X-API-Key')

  const other = await signup(app)
  const otherKey = await createKey(app, other.access_token)
  t.equal((await me(app, { 'x-api-key': otherKey.key })).statusCode, 200)
  await app.db.user.update({ where: { id: other.id }, data: { disabled: true } })
  assert401(t, await me(app, { 'x-api-key': otherKey.key }), "a disabled user's key")
  await app.db.user.update({ where: { id: other.id }, data: { disabled: false } })
  t.equal((await me(app, { 'x-api-key': otherKey.key })).statusCode, 200, 'works again once re-enabled')
})

t.test('an expired key is refused', async (t) => {
  const built = await buildTestApp(ENV, { database })
  t.teardown(built.close)
  const { app, clock } = built
  const user = await signup(app)
  const key = await createKey(app, user.access_token, { expiresAt: new Date(clock.now() + 120_000).toISOString() })
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'before expiry')
  clock.advance(119)
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'a second before expiry')
  clock.advance(2)
  assert401(t, await me(app, { 'x-api-key': key.key }), 'after expiresAt, X-API-Key')
  assert401(t, await me(app, { authorization: `Bearer ${key.key}` }), 'after expiresAt, Bearer')
})

t.test('a key with one character changed is refused without a database look-up', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token)
  const delegate = app.db.apiKey as unknown as Record<string, unknown>

  const good = await countCalls(delegate, 'findUnique', () => me(app, { 'x-api-key': key.key }))
  t.equal(good.result.statusCode, 200)
  t.equal(good.calls, 1, 'the spy sees the look-up of a well-formed key')

  const swap = (c: string) => (c === 'A' ? 'B' : 'A')
  const variants = new Map<string, string>()
  for (const index of [4, 20, key.key.length - 7, key.key.length - 1]) {
    variants.set(`character ${index} changed`, key.key.slice(0, index) + swap(key.key[index]!) + key.key.slice(index + 1))
  }
  const letter = [...key.key].findIndex((c, i) => i >= 4 && /[A-Za-z]/.test(c))
  const flipped = key.key[letter]!
  variants.set('case of one letter flipped', key.key.slice(0, letter) + (flipped === flipped.toUpperCase() ? flipped.toLowerCase() : flipped.toUpperCase()) + key.key.slice(letter + 1))
  variants.set('two characters transposed', key.key.slice(0, 10) + key.key[11] + key.key[10] + key.key.slice(12))
  variants.set('truncated', key.key.slice(0, -1))
  for (const [label, variant] of variants) {
    if (variant === key.key) continue // a transposition of two equal characters
    t.notOk(isWellFormedApiKey(variant), `${label}: the checksum fails`)
    for (const headers of [{ 'x-api-key': variant }, { authorization: `Bearer ${variant}` }] as Record<string, string>[]) {
      const bad = await countCalls(delegate, 'findUnique', () => me(app, headers))
      assert401(t, bad.result, `${label}, ${Object.keys(headers)[0]}`)
      t.equal(bad.calls, 0, `${label}, ${Object.keys(headers)[0]}: no database look-up`)
    }
  }
})

t.test('lastUsedAt is set on use, written at most once a minute', async (t) => {
  const built = await buildTestApp(ENV, { database })
  t.teardown(built.close)
  const { app, clock } = built
  const user = await signup(app)
  const key = await createKey(app, user.access_token)
  const delegate = app.db.apiKey as unknown as Record<string, unknown>
  const lastUsed = async () => (await app.db.apiKey.findUniqueOrThrow({ where: { id: key.id } })).lastUsedAt

  t.equal(await lastUsed(), null, 'never used')
  const firstUseAt = clock.now()
  const first = await countCalls(delegate, 'update', () => me(app, { 'x-api-key': key.key }))
  t.equal(first.result.statusCode, 200)
  t.equal(first.calls, 1, 'the first use writes lastUsedAt')
  const written = await eventually(lastUsed)
  t.ok(written, 'lastUsedAt is set (written in the background)')
  t.ok(Math.abs(written!.getTime() - firstUseAt) < 5_000, 'to the time of use')
  const listed = (await listKeys(app, user.access_token)).find((k) => k.id === key.id)
  t.equal(listed?.lastUsedAt, written!.toISOString(), 'and listed')

  clock.advance(30)
  const again = await countCalls(delegate, 'update', async () => {
    const responses = [await me(app, { 'x-api-key': key.key }), await me(app, { authorization: `Bearer ${key.key}` })]
    return responses.map((r) => r.statusCode)
  })
  t.same(again.result, [200, 200])
  t.equal(again.calls, 0, 'uses within the minute write nothing')
  t.same(await lastUsed(), written, 'lastUsedAt unchanged')

  clock.advance(31)
  const later = await countCalls(delegate, 'update', () => me(app, { 'x-api-key': key.key }))
  t.equal(later.result.statusCode, 200)
  t.equal(later.calls, 1, 'a use over a minute later writes again')
  const moved = await eventually(async () => {
    const value = await lastUsed()
    return value && value.getTime() > written!.getTime() ? value : null
  })
  t.ok(moved, 'lastUsedAt moved')
  t.ok(moved!.getTime() - written!.getTime() >= 60_000, 'by the time that passed')
})

t.test('no raw key is ever in the database', async (t) => {
  const user = await signup(app)
  const keys = [await createKey(app, user.access_token), await createKey(app, user.access_token, { scopes: ['links:read'] })]
  // Use, revoke by id and revoke by value (RFC 7009), so every write path has run.
  t.equal((await me(app, { 'x-api-key': keys[0]!.key })).statusCode, 200)
  await eventually(async () => (await app.db.apiKey.findUniqueOrThrow({ where: { id: keys[0]!.id } })).lastUsedAt)
  t.equal((await app.inject({ method: 'DELETE', url: `/api-keys/${keys[0]!.id}`, headers: { authorization: `Bearer ${user.access_token}` } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: keys[1]!.key } })).statusCode, 200)
  t.ok((await app.db.apiKey.findUniqueOrThrow({ where: { id: keys[1]!.id } })).revokedAt, 'revoked by value')

  const tables = await app.db.$queryRaw<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`
  t.ok(tables.some((row) => row.tablename === 'api_keys') && tables.some((row) => row.tablename === 'audit_events'))
  for (const { tablename } of tables) {
    const rows = await app.db.$queryRawUnsafe<{ row: string }[]>(`SELECT t::text AS row FROM "${tablename}" AS t`)
    const dump = rows.map((r) => r.row).join('\n')
    for (const { key } of keys) {
      const body = key.slice(4)
      t.notOk(dump.includes(key) || dump.includes(body), `${tablename}: no raw key`)
      t.notOk(dump.includes(Buffer.from(key).toString('hex')), `${tablename}: not even hex-encoded`)
      t.notOk(dump.includes(createHash('sha256').update(key).digest('hex')), `${tablename}: no unkeyed hash`)
    }
  }
  const rows = await app.db.apiKey.findMany({ where: { id: { in: keys.map((k) => k.id) } } })
  for (const row of rows) t.equal(row.keyHash.length, 32, 'a 256-bit keyed hash is stored')
  const events = await app.db.auditEvent.findMany({ where: { userId: user.id, type: { in: ['api_key_created', 'api_key_revoked'] } } })
  t.equal(events.length, 4, 'created and revoked events are recorded (without the key)')
})

t.test('the cap: API_KEY_LIMIT_PER_USER live keys, then 409 api_key_limit; revoked and expired keys do not count', async (t) => {
  const capped = await buildTestApp({ ...ENV, API_KEY_LIMIT_PER_USER: '3' }, { database })
  t.teardown(capped.close)
  const user = await signup(capped.app)
  const kept = await createKey(capped.app, user.access_token, { name: 'kept' })
  const revoked = await createKey(capped.app, user.access_token, { name: 'revoked later' })
  const expiring = await createKey(capped.app, user.access_token, { name: 'expiring', expiresAt: new Date(Date.now() + 60_000).toISOString() })

  const refused = await createKeyRequest(capped.app, user.access_token, { name: 'one too many', scopes: ['profile'] })
  t.equal(refused.statusCode, 409, refused.body)
  t.equal(json(refused).code, 'api_key_limit')
  t.match(json(refused).message, /at most 3 live API keys/)
  t.equal(await capped.app.db.apiKey.count({ where: { userId: user.id } }), 3, 'nothing was written')
  const another = await signup(capped.app)
  await markAddressVerified(capped.app, another.access_token)
  t.equal((await createKeyRequest(capped.app, another.access_token, { name: 'x', scopes: ['profile'] })).statusCode, 201, "another user's keys are their own count")

  const revoke = await capped.app.inject({ method: 'DELETE', url: `/api-keys/${revoked.id}`, headers: { authorization: `Bearer ${user.access_token}` } })
  t.equal(revoke.statusCode, 204)
  await createKey(capped.app, user.access_token, { name: 'in the revoked one’s place' })
  t.equal((await createKeyRequest(capped.app, user.access_token, { name: 'again too many', scopes: ['profile'] })).statusCode, 409, 'at the limit again')

  // Its expiry passes (moved in the database: moving the app's clock would outrun the revocation poller).
  await capped.app.db.apiKey.update({ where: { id: expiring.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
  await createKey(capped.app, user.access_token, { name: 'in the expired one’s place' })
  t.equal((await createKeyRequest(capped.app, user.access_token, { name: 'and again', scopes: ['profile'] })).statusCode, 409)
  t.equal((await me(capped.app, { 'x-api-key': kept.key })).statusCode, 200, 'refusals touch no existing key')
})

t.test('the cap holds under concurrent creation: 20 requests at limit - 1, exactly one succeeds', async (t) => {
  const LIMIT = 5
  const capped = await buildTestApp({ ...ENV, API_KEY_LIMIT_PER_USER: String(LIMIT) }, { database })
  t.teardown(capped.close)
  const user = await signup(capped.app)
  for (let i = 0; i < LIMIT - 1; i++) await createKey(capped.app, user.access_token, { name: `before ${i}` })
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => createKeyRequest(capped.app, user.access_token, { name: `racer ${i}`, scopes: ['profile'] }))
  )
  const statuses = responses.map((response) => response.statusCode)
  t.equal(statuses.filter((status) => status === 201).length, 1, `one creation wins (${statuses.join(' ')})`)
  t.equal(statuses.filter((status) => status === 409).length, 19, 'the others are refused with 409')
  t.equal(await capped.app.db.apiKey.count({ where: { userId: user.id, revokedAt: null } }), LIMIT, 'the database holds exactly the limit')
})

t.test('list pagination: limit and cursor visit every key once, newest first, ties included; bad paging is 400', async (t) => {
  const user = await signup(app)
  const created: CreatedKey[] = []
  for (let i = 0; i < 7; i++) created.push(await createKey(app, user.access_token, { name: `key ${i}` }))
  // Four keys created in the same millisecond: the order breaks the tie by id.
  const tie = new Date(Date.parse(created[1]!.createdAt))
  await app.db.apiKey.updateMany({ where: { id: { in: created.slice(1, 5).map((key) => key.id) } }, data: { createdAt: tie } })

  const get = (query: string) => app.inject({ method: 'GET', url: `/api-keys${query}`, headers: { authorization: `Bearer ${user.access_token}` } })
  const whole = json<{ items: ListedKey[]; nextCursor: string | null }>(await get(''))
  t.equal(whole.items.length, 7, 'the default page holds them all')
  t.equal(whole.nextCursor, null, 'and says it is the last')

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const response = await get(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    t.equal(response.statusCode, 200, response.body)
    const body = json<{ items: ListedKey[]; nextCursor: string | null }>(response)
    t.ok(body.items.length <= 2, 'at most limit items')
    seen.push(...body.items.map((item) => item.id))
    cursor = body.nextCursor
    if (++pages === 1) {
      // A key created after the first page is newer than the cursor: later pages neither show it nor shift.
      await createKey(app, user.access_token, { name: 'created while paging' })
    }
  } while (cursor && pages < 10)
  t.equal(pages, 4, '7 keys in pages of 2')
  t.same(seen, whole.items.map((item) => item.id), 'every key once, in the order of the whole list')
  t.equal(new Set(seen).size, 7, 'no repeats')
  const order = whole.items.map((item) => [Date.parse(item.createdAt), item.id] as const)
  t.ok(order.every((entry, i) => i === 0 || entry[0] < order[i - 1]![0] || (entry[0] === order[i - 1]![0] && entry[1] < order[i - 1]![1])), 'newest first, then by id')

  const badCursor = await get('?cursor=bm90IGEgY3Vyc29y')
  t.equal(badCursor.statusCode, 400)
  t.equal(json(badCursor).code, 'invalid_cursor')
  for (const query of ['?limit=0', '?limit=101', '?limit=two', '?cursor=', '?page=2']) {
    t.equal((await get(query)).statusCode, 400, `${query}: 400`)
  }
})

t.test('API_KEY_LIMIT_PER_USER: default 100; a value that is not a positive integer stops the start, named', async (t) => {
  t.equal(loadConfig(TEST_ENV).apiKeyLimitPerUser, 100)
  t.equal(loadConfig({ ...TEST_ENV, API_KEY_LIMIT_PER_USER: '7' }).apiKeyLimitPerUser, 7)
  for (const value of ['0', '-1', '2.5', 'many', '10001']) {
    const error = (() => {
      try {
        loadConfig({ ...TEST_ENV, API_KEY_LIMIT_PER_USER: value })
        return null
      } catch (caught) {
        return caught
      }
    })()
    t.ok(error instanceof ConfigError && /API_KEY_LIMIT_PER_USER/.test(error.message), `${value}: refused, named`)
  }
})

// ---------------------------------------------------------------- security review, finding 6

t.test('finding 6: a urn-prefixed id, a leap second, an unstorable year or a NUL in the name is 400, never 500', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token)
  const revoke = (id: string) => app.inject({ method: 'DELETE', url: `/api-keys/${id}`, headers: { authorization: `Bearer ${user.access_token}` } })
  for (const id of [`urn:uuid:${key.id}`, `URN:UUID:${key.id}`, `{${key.id}}`, key.id.replaceAll('-', '')]) {
    const response = await revoke(id)
    t.equal(response.statusCode, 400, `DELETE /api-keys/${id}: 400 (${response.body})`)
    t.equal(json(response).code, 'validation_failed')
  }
  t.equal((await me(app, { 'x-api-key': key.key })).statusCode, 200, 'the key still works')

  for (const expiresAt of ['2030-12-31T23:59:60Z', '2030-06-30T23:59:60+00:00', '10000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2030-02-30T00:00:00Z']) {
    const response = await createKeyRequest(app, user.access_token, { name: 'x', scopes: ['profile'], expiresAt })
    t.equal(response.statusCode, 400, `expiresAt ${expiresAt}: 400 (${response.body})`)
    t.equal(json(response).code, 'validation_failed')
  }
  const lastDay = await createKeyRequest(app, user.access_token, { name: 'x', scopes: ['profile'], expiresAt: '9999-12-31T23:59:59Z' })
  t.equal(lastDay.statusCode, 201, `the last storable second is fine (${lastDay.body})`)
  t.equal(json<CreatedKey>(lastDay).expiresAt, '9999-12-31T23:59:59.000Z')

  for (const name of ['\u0000', 'a\u0000b', 'key\u0000']) {
    const response = await createKeyRequest(app, user.access_token, { name, scopes: ['profile'] })
    t.equal(response.statusCode, 400, `name ${JSON.stringify(name)}: 400 (${response.body})`)
    t.equal(json(response).code, 'validation_failed')
    t.match(json(response).message, /U\+0000/, 'the message names the character')
  }
  t.same((await listKeys(app, user.access_token)).map((k) => k.id).sort(), [key.id, json<CreatedKey>(lastDay).id].sort(), 'nothing else was created')

  // Any case of an id is the same id: an upper-case one revokes the key.
  t.equal((await revoke(key.id.toUpperCase())).statusCode, 204, 'an upper-case id revokes')
  assert401(t, await me(app, { 'x-api-key': key.key }), 'the revoked key')
})
