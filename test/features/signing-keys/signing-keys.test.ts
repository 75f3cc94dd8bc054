import { randomBytes } from 'node:crypto'
import { PrismaPg } from '@prisma/adapter-pg'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { deriveKeys } from '../../../src/shared/derived-keys.js'
import { KeyStore, SIGNING_ALG } from '../../../src/features/signing-keys/signing-keys.js'
import { PrismaClient } from '../../../src/generated/prisma/client.js'
import { buildTestApp, json } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'

/**
 * Signing keys (DESIGN §3.1): shared by every instance through the database,
 * private halves encrypted, a new key published before it signs, a retired
 * key published until every token it signed has expired.
 */

const LEAD_SECONDS = 900
const MAX_TTL_SECONDS = 600

const database = await createTestDatabase()
t.teardown(() => database.drop())

function client (owner: Test = t): PrismaClient {
  const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url, max: database.poolMax }) })
  owner.teardown(() => db.$disconnect())
  return db
}

const db = client()
const encryptionKey = deriveKeys(randomBytes(32).toString('base64url')).signingKeyEncryption

/** A clock the test moves by hand. */
function manualClock (start = Date.now()) {
  let now = start
  return {
    now: () => now,
    set: (ms: number) => {
      now = ms
    },
  }
}

function store (options: { now?: () => number; key?: Buffer; db?: PrismaClient } = {}) {
  return new KeyStore(options.db ?? db, {
    encryptionKey: options.key ?? encryptionKey,
    publishLeadSeconds: LEAD_SECONDS,
    maxAccessTokenTtlSeconds: MAX_TTL_SECONDS,
    ...(options.now ? { now: options.now } : {}),
  })
}

const kids = (s: KeyStore) => s.jwks().keys.map((k) => k.kid)
const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid

async function signWith (s: KeyStore, now: number) {
  const iat = Math.floor(now / 1000)
  return s.sign({ sub: 'u1', iat, exp: iat + MAX_TTL_SECONDS }, { typ: 'at+jwt' })
}

t.beforeEach(async () => {
  await db.signingKey.deleteMany()
})

t.test('sign produces a compact JWS that jose verifies against the published keys', async (t) => {
  const s = store()
  await s.ensureSigningKey()
  const iat = Math.floor(Date.now() / 1000)
  const claims = { sub: 'u1', iat, exp: iat + 60, scope: 'profile', note: 'ünïcödé "quoted"' }
  const token = s.sign(claims, { typ: 'at+jwt' })
  const [header, payload, signature] = token.split('.')
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'three base64url segments, no padding')
  t.same(JSON.parse(Buffer.from(header!, 'base64url').toString()), { alg: SIGNING_ALG, kid: s.currentKey()!.kid, typ: 'at+jwt' }, 'exactly alg, kid and typ')
  t.same(JSON.parse(Buffer.from(payload!, 'base64url').toString()), claims, 'the claims, unchanged')
  t.equal(Buffer.from(signature!, 'base64url').length, 64, 'an ES256 signature is R || S, 64 bytes (RFC 7518 §3.4), not DER')
  const verified = await jwtVerify(token, createLocalJWKSet(s.jwks()), { algorithms: [SIGNING_ALG], typ: 'at+jwt' })
  t.same(verified.payload, claims)
  const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'u2' })).toString('base64url')}.${signature}`
  await t.rejects(jwtVerify(tampered, createLocalJWKSet(s.jwks()), { algorithms: [SIGNING_ALG] }), 'the signature covers the payload')
})

t.test('ensureSigningKey creates exactly one key when two stores race on an empty database', async (t) => {
  const other = client(t) // a second instance: its own connection pool
  const a = store()
  const b = store({ db: other })
  await Promise.all([a.ensureSigningKey(), b.ensureSigningKey(), a.ensureSigningKey(), b.ensureSigningKey()])
  t.equal(await db.signingKey.count(), 1, 'one key row')
  const kid = a.currentKey()?.kid
  t.ok(kid)
  t.equal(b.currentKey()?.kid, kid, 'both stores sign with it')
  t.same(kids(a), [kid])
  t.same(kids(b), [kid])

  // Idempotent afterwards.
  await store().ensureSigningKey()
  t.equal(await db.signingKey.count(), 1)
})

t.test('rotation: published at once, signs after the lead, the old key stays published until its tokens expired', async (t) => {
  // Start on a whole second: activation then falls on one too, the case where the
  // last old token's floored iat makes it expire a full second before activatesAt + TTL.
  const clock = manualClock(Math.floor(Date.now() / 1000) * 1000)
  const t0 = clock.now()
  const s = store({ now: clock.now })
  await s.ensureSigningKey()
  const oldKid = s.currentKey()!.kid
  t.equal(kidOf(await signWith(s, t0)), oldKid)

  const { kid: newKid, activatesAt } = await s.rotate()
  t.not(newKid, oldKid)
  t.equal(activatesAt.getTime(), t0 + LEAD_SECONDS * 1000, 'activates after the publish lead')
  t.same(new Set(kids(s)), new Set([oldKid, newKid]), 'the new key is published at once')
  t.ok(s.publicKeyPem(newKid), 'and known to the request-side verifier')

  // Another instance sees it after its next reload, long before it signs.
  const peer = store({ now: clock.now })
  await peer.load()
  t.same(new Set(kids(peer)), new Set([oldKid, newKid]))

  // During the lead the old key keeps signing.
  for (const at of [t0 + 1, t0 + (LEAD_SECONDS / 2) * 1000, activatesAt.getTime() - 1]) {
    clock.set(at)
    t.equal(kidOf(await signWith(s, at)), oldKid, `old key signs ${Math.round((at - t0) / 1000)} s after rotate`)
    t.equal(peer.currentKey()?.kid, oldKid)
  }
  // The last token the old key signs.
  const lastOldToken = await signWith(s, activatesAt.getTime() - 1)

  // From activation the new key signs, on both instances.
  clock.set(activatesAt.getTime())
  const firstNewToken = await signWith(s, clock.now())
  t.equal(kidOf(firstNewToken), newKid, 'the new key signs from activatesAt')
  t.equal(peer.currentKey()?.kid, newKid)
  t.equal(decodeProtectedHeader(firstNewToken).alg, SIGNING_ALG)
  t.equal(decodeProtectedHeader(firstNewToken).typ, 'at+jwt')

  // Both tokens verify against the published set.
  const verifyAt = async (token: string, at: number) =>
    jwtVerify(token, createLocalJWKSet(s.jwks()), { algorithms: [SIGNING_ALG], currentDate: new Date(at) })
  await t.resolves(verifyAt(firstNewToken, clock.now()))
  await t.resolves(verifyAt(lastOldToken, clock.now()))

  // The old key retired at activation; its row says until when it stays published.
  const oldRow = await db.signingKey.findUniqueOrThrow({ where: { kid: oldKid } })
  t.equal(oldRow.retiredAt?.getTime(), activatesAt.getTime(), 'retired when the new key activates')
  const lastOldExpiry = activatesAt.getTime() + MAX_TTL_SECONDS * 1000
  const expiresAt = oldRow.expiresAt!.getTime()
  t.ok(expiresAt >= lastOldExpiry, 'published at least until the last token it signed expires')
  t.ok(expiresAt <= lastOldExpiry + 5 * 60_000, 'plus a small clock skew, not much more')

  // Still published (and verifying) just before the last old token expires, and in the skew after.
  for (const at of [lastOldExpiry - 1000, lastOldExpiry, expiresAt - 1]) {
    clock.set(at)
    await s.load()
    t.ok(kids(s).includes(oldKid), `old key published ${(at - activatesAt.getTime()) / 1000} s after retirement`)
    t.ok(s.publicKeyPem(oldKid))
  }
  // Its exp is whole seconds (floored iat + TTL): it verifies in its last second.
  const lastOldTokenExpiresAt = decodeJwt(lastOldToken).exp! * 1000
  clock.set(lastOldTokenExpiresAt - 1)
  await t.resolves(verifyAt(lastOldToken, clock.now()), 'a token signed just before retirement verifies until it expires')
  clock.set(lastOldTokenExpiresAt)
  t.ok(kids(s).includes(oldKid), 'its key still published at its exp')
  await t.rejects(verifyAt(lastOldToken, clock.now()), { code: 'ERR_JWT_EXPIRED' }, 'and it is refused as expired from its exp')

  // Then it disappears: from the in-memory set at once, and from a fresh load.
  clock.set(expiresAt)
  t.same(kids(s), [newKid], 'gone once expired (without reloading)')
  t.equal(s.publicKeyPem(oldKid), undefined)
  await s.load()
  await peer.load()
  t.same(kids(s), [newKid])
  t.same(kids(peer), [newKid])
  t.equal(kidOf(await signWith(s, clock.now())), newKid)
})

t.test('private keys are stored encrypted under SECRET_KEY', async (t) => {
  const s = store()
  await s.ensureSigningKey()
  await signWith(s, Date.now()) // decrypts the private key
  const key = s.currentKey()!
  const privateJwk = key.privateKey!.export({ format: 'jwk' })
  t.equal(privateJwk.kty, 'EC')
  t.type(privateJwk.d, 'string')
  const d = privateJwk.d!

  const [row] = await db.$queryRaw<{ private_key_encrypted: Uint8Array; public_jwk: unknown }[]>`
    SELECT private_key_encrypted, public_jwk FROM signing_keys WHERE kid = ${key.kid}`
  const stored = Buffer.from(row!.private_key_encrypted)
  t.ok(stored.length > 12 + 16, 'an iv, ciphertext and tag')
  t.notOk(stored.includes(d), 'the column does not contain d as base64url')
  t.notOk(stored.includes(Buffer.from(d, 'base64url')), 'nor as raw bytes')
  t.notOk(stored.includes('"d"'), 'nor a JWK at all')
  t.notOk(stored.toString('base64').includes(Buffer.from(d, 'base64url').toString('base64')), 'nor as base64')
  t.notOk(JSON.stringify(row!.public_jwk).includes(d), 'the public JWK has no private part')
  t.same(Object.keys(row!.public_jwk as object).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'])

  // Another store with the same SECRET_KEY can sign; with the wrong one it cannot.
  const same = store()
  await same.load()
  t.equal(kidOf(await signWith(same, Date.now())), key.kid)

  const wrongKey = deriveKeys(randomBytes(32).toString('base64url')).signingKeyEncryption
  const wrong = store({ key: wrongKey })
  await wrong.load()
  t.same(kids(wrong), [key.kid], 'public keys load without the secret')
  await t.rejects(signWith(wrong, Date.now()), 'decryption with the wrong SECRET_KEY fails')

  // The ciphertext is bound to its kid: moving it to another key's row does not work.
  const { kid: otherKid } = await s.rotate()
  await db.signingKey.update({ where: { kid: otherKid }, data: { privateKeyEncrypted: new Uint8Array(stored), activatesAt: new Date(0) } })
  await db.signingKey.update({ where: { kid: key.kid }, data: { retiredAt: new Date(0) } })
  const moved = store()
  await moved.load()
  t.equal(moved.currentKey()?.kid, otherKid)
  await t.rejects(signWith(moved, Date.now()), 'a ciphertext moved to another row does not decrypt')
})

t.test('publicKeyPem of an unknown kid is undefined', async (t) => {
  const s = store()
  await s.ensureSigningKey()
  t.equal(s.publicKeyPem('no-such-kid'), undefined)
  t.equal(s.publicKeyPem(''), undefined)
  t.equal(s.publicKeyPem('__proto__'), undefined)
  t.match(s.publicKeyPem(s.currentKey()!.kid), /^-----BEGIN PUBLIC KEY-----/)
})

t.test('a key rotated on one instance is published by another in time; JWKS cache lifetime below the lead', async (t) => {
  const env = { KEY_PUBLISH_LEAD_SECONDS: '4', JWKS_MAX_AGE_SECONDS: '2' }
  // Both instances on this file's database (its keys were just cleared).
  const one = await buildTestApp(env, { database })
  const two = await buildTestApp(env, { database })
  t.teardown(async () => {
    await two.close()
    await one.close()
  })

  const jwks = async (instance: typeof one) => {
    const response = await instance.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.equal(response.statusCode, 200)
    return { response, kids: json<{ keys: { kid: string }[] }>(response).keys.map((k) => k.kid) }
  }

  const before = await jwks(two)
  t.equal(before.response.headers['cache-control'], 'public, max-age=2', 'JWKS cached for JWKS_MAX_AGE_SECONDS')
  const maxAge = Number(/max-age=(\d+)/.exec(String(before.response.headers['cache-control']))![1])
  t.ok(maxAge < 4, 'shorter than the publish lead')
  t.same((await jwks(one)).kids, before.kids, 'both instances publish the same key')
  const oldKid = before.kids[0]!

  const signIn = async (instance: typeof one, email: string) => {
    const response = await instance.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: 'a fine passphrase' } })
    t.equal(response.statusCode, 201, response.body)
    return json<{ access_token: string }>(response).access_token
  }
  const { kid: newKid, activatesAt } = await one.app.keys.rotate()
  t.ok((await jwks(one)).kids.includes(newKid), 'the rotating instance publishes at once')
  t.equal(kidOf(await signIn(one, 'during-lead@example.test')), oldKid, 'the old key signs during the lead')

  // A verifier that fetched instance two's JWKS just before it reloaded may
  // cache that set for max-age: the new key must appear there by
  // activatesAt - max-age, so no cache lacks it when it starts signing.
  const deadline = activatesAt.getTime() - maxAge * 1000
  let seenAt: number | undefined
  while (Date.now() < activatesAt.getTime()) {
    if ((await jwks(two)).kids.includes(newKid)) {
      seenAt = Date.now()
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(seenAt !== undefined && seenAt <= deadline, `instance two published the new key ${seenAt === undefined ? 'never' : `${seenAt - (activatesAt.getTime() - 4000)} ms`} after rotation (deadline: ${4000 - maxAge * 1000} ms)`)

  // After activation both instances sign with the new key.
  one.clock.advance(4)
  two.clock.advance(4)
  const token = await signIn(two, 'after@example.test')
  t.equal(kidOf(token), newKid, 'instance two signs with the key instance one rotated in')
  // And instance one's published set verifies it.
  const set = json<{ keys: import('jose').JWK[] }>(await one.app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
  await t.resolves(
    jwtVerify(token, createLocalJWKSet(set), {
      algorithms: [SIGNING_ALG],
      issuer: one.config.issuer,
      audience: one.config.audience,
      typ: 'at+jwt',
      currentDate: new Date(two.clock.now()),
    })
  )
  const me = await one.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(me.statusCode, 200, 'instance one accepts a token instance two signed with the new key')
})
