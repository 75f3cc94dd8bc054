import { createHmac, generateKeyPair, randomUUID, sign, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose'
import t, { type Test } from 'tap'
import { buildTestApp, json } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { decodePart } from '../helpers/users.js'
import { b64, es256 } from '../security/context.js'

/**
 * Request-side verification of access tokens (DESIGN §3.2, RFC 8725, RFC
 * 6750): every forged or invalid token is refused with 401 and
 * `WWW-Authenticate: Bearer error="invalid_token"`. Each forgery changes one
 * thing in an otherwise valid token; a control proves the harness makes
 * tokens the service accepts when nothing is changed.
 */

const database = await createTestDatabase()
const main = await buildTestApp({}, { database })
const { app, config } = main
t.teardown(async () => {
  await main.close()
  await database.drop()
})

// A user with a live session, whose claims the forgeries reuse.
const signup = await app.inject({
  method: 'POST',
  url: '/auth/signup',
  payload: { email: `forge-${Date.now()}@auth.test`, password: 'a fine passphrase' },
})
if (signup.statusCode !== 201) throw new Error(`signup: ${signup.statusCode} ${signup.body}`)
const issued = json<{ access_token: string }>(signup).access_token
const issuedClaims = decodePart(issued, 1)

// The server's real signing key, as the KeyStore holds it once it has signed.
await app.keys.sign({}, { typ: 'warm-up' })
const serverKey = app.keys.currentKey()
if (!serverKey?.privateKey) throw new Error('the KeyStore did not expose its current private key')
const SERVER_PRIVATE: KeyObject = serverKey.privateKey
const SERVER_KID = serverKey.kid
const SERVER_PEM = app.keys.publicKeyPem(SERVER_KID)!
const SERVER_JWK = json<{ keys: JWK[] }>(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys.find(
  (k) => k.kid === SERVER_KID
)!

// Key generation off the event loop: a blocked loop would trip the service's load shedding.
const generate = promisify(generateKeyPair)

// An attacker's own key pair.
const attacker = await generate('ec', { namedCurve: 'P-256' })
const ATTACKER_JWK = await exportJWK(attacker.publicKey)
const ATTACKER_KID = await calculateJwkThumbprint(ATTACKER_JWK)

type Header = Record<string, unknown>
type Claims = Record<string, unknown>

const nowSeconds = () => Math.floor(Date.now() / 1000)

function claims (overrides: Claims = {}): Claims {
  const iat = nowSeconds()
  const base: Claims = {
    iss: config.issuer,
    aud: config.audience,
    sub: issuedClaims.sub,
    client_id: 'mobile',
    sid: issuedClaims.sid,
    jti: randomUUID(),
    iat,
    exp: iat + 600,
    scope: 'profile',
    role: 'user',
    amr: ['pwd'],
    auth_time: iat,
  }
  const merged = { ...base, ...overrides }
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key]
  return merged
}

function header (overrides: Header = {}): Header {
  const merged: Header = { alg: 'ES256', kid: SERVER_KID, typ: 'at+jwt', ...overrides }
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key]
  return merged
}

function hmac (algorithm: 'sha256' | 'sha384' | 'sha512', secret: string | Buffer, h: Header, c: Claims): string {
  const input = `${b64(h)}.${b64(c)}`
  return `${input}.${createHmac(algorithm, secret).update(input).digest('base64url')}`
}

const serverSigned = (h: Header = {}, c: Claims = {}) => es256(SERVER_PRIVATE, header(h), claims(c))

function me (authorization: string | undefined) {
  return app.inject({ method: 'GET', url: '/users/me', headers: authorization === undefined ? {} : { authorization } })
}

async function assertRefused (t: Test, token: string, label: string) {
  const response = await me(`Bearer ${token}`)
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 160)})`)
  t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/, `${label}: WWW-Authenticate invalid_token`)
  t.equal(json(response).code, 'invalid_token', `${label}: code invalid_token`)
}

async function assertAccepted (t: Test, token: string, label: string) {
  const response = await me(`Bearer ${token}`)
  t.equal(response.statusCode, 200, `${label}: 200 (${response.body.slice(0, 160)})`)
}

t.test('controls: the issued token and a harness-made token are accepted', async (t) => {
  await assertAccepted(t, issued, 'the token the service issued')
  await assertAccepted(t, serverSigned(), 'a token made by the harness with the server key')
  await assertAccepted(t, await app.keys.sign(claims(), { typ: 'at+jwt' }), 'a token made through app.keys.sign')
  t.equal(decodePart(issued, 0).kid, SERVER_KID, 'the harness uses the key that signs now')
})

t.test('no Authorization header: 401 with a bare Bearer challenge', async (t) => {
  const response = await me(undefined)
  t.equal(response.statusCode, 401)
  t.equal(response.headers['www-authenticate'], 'Bearer', 'no error code without credentials (RFC 6750 §3.1)')
  t.same(Object.keys(json(response)).sort(), ['code', 'error', 'message', 'statusCode'])
})

t.test('malformed credentials', async (t) => {
  for (const authorization of ['Bearer', 'Bearer ', 'Bearer a.b', 'Bearer not-a-jwt', 'Bearer a.b.c', `Basic ${b64('user:pass')}`, `Bearer ${issued} extra`, `Bearer ${issued.split('.').slice(0, 2).join('.')}`]) {
    const response = await me(authorization)
    t.equal(response.statusCode, 401, `${authorization.slice(0, 30)}: 401`)
    t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  }
})

t.test('the Bearer scheme is case-insensitive and may be followed by several spaces (RFC 7235 §2.1)', async (t) => {
  // Security review finding 9: `bearer <token>` got 401.
  for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
    const response = await me(`${scheme} ${issued}`)
    t.equal(response.statusCode, 200, `${scheme}: 200 (${response.body.slice(0, 120)})`)
  }
  t.equal((await me(`Bearer   ${issued}`)).statusCode, 200, 'three spaces after the scheme')
  t.equal((await me(`Bearer ${issued} `)).statusCode, 200, 'a trailing space')
  t.equal((await me(`Bearerx ${issued}`)).statusCode, 401, 'another scheme is still refused')
})

t.test('alg none is refused', async (t) => {
  const c = claims()
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await assertRefused(t, `${b64(header({ alg }))}.${b64(c)}.`, `alg ${alg}, empty signature`)
    await assertRefused(t, `${b64(header({ alg }))}.${b64(c)}`, `alg ${alg}, no signature part`)
  }
  // A valid token whose header is swapped for alg none, its signature kept.
  const [, payload, signature] = issued.split('.')
  await assertRefused(t, `${b64(header({ alg: 'none' }))}.${payload}.${signature}`, 'alg none with the original signature')
  await assertRefused(t, `${b64({ typ: 'at+jwt', kid: SERVER_KID })}.${b64(c)}.`, 'no alg at all')
})

t.test('HS256/384/512 signed with the public key (PEM and JWK forms) is refused', async (t) => {
  const secrets: [string, string][] = [
    ['the PEM', SERVER_PEM],
    ['the PEM without its final newline', SERVER_PEM.trimEnd()],
    ['the PEM with leading whitespace', `  \n${SERVER_PEM}`],
    ['the PEM with CRLF', SERVER_PEM.replace(/\n/g, '\r\n')],
    ['the JWK as published (JSON)', JSON.stringify(SERVER_JWK)],
    ['the bare JWK members (JSON)', JSON.stringify({ kty: SERVER_JWK.kty, crv: SERVER_JWK.crv, x: SERVER_JWK.x, y: SERVER_JWK.y })],
    ['the x coordinate', String(SERVER_JWK.x)],
    ['an empty secret', ''],
  ]
  for (const [label, secret] of secrets) {
    for (const [alg, digest] of [['HS256', 'sha256'], ['HS384', 'sha384'], ['HS512', 'sha512']] as const) {
      await assertRefused(t, hmac(digest, secret, header({ alg }), claims()), `${alg} with ${label}`)
    }
  }
})

t.test('a kid that is not published is refused', async (t) => {
  await assertRefused(t, es256(attacker.privateKey, header({ kid: ATTACKER_KID }), claims()), 'attacker key, its own kid')
  await assertRefused(t, es256(attacker.privateKey, header({ kid: undefined }), claims()), 'attacker key, no kid')
  await assertRefused(t, es256(SERVER_PRIVATE, header({ kid: 'unknown-kid' }), claims()), 'server key, unknown kid')
  await assertRefused(t, es256(SERVER_PRIVATE, header({ kid: undefined }), claims()), 'server key, no kid')
  await assertRefused(t, es256(SERVER_PRIVATE, header({ kid: 42 }), claims()), 'server key, numeric kid')
  await assertRefused(t, es256(SERVER_PRIVATE, header({ kid: [SERVER_KID] }), claims()), 'server key, kid in an array')
  await assertRefused(t, es256(SERVER_PRIVATE, header({ kid: SERVER_KID.toUpperCase() }), claims()), 'server key, kid in another case')
})

t.test('kid injection strings are refused', async (t) => {
  const kids = [
    '../../etc/passwd',
    '../../../../../../dev/null',
    '/dev/null',
    "' OR '1'='1",
    `${SERVER_KID}' OR '1'='1`,
    "x'; DROP TABLE signing_keys; --",
    'http://evil.test/key.pem',
    'https://evil.test/.well-known/jwks.json',
    'file:///etc/passwd',
    '__proto__',
    'constructor',
    'toString',
    `${SERVER_KID}\u0000`,
    ` ${SERVER_KID}`,
    '|cat /etc/passwd',
    // eslint-disable-next-line no-template-curly-in-string -- the literal text of a log4j lookup, an injection payload
    '${jndi:ldap://evil.test/a}',
  ]
  for (const kid of kids) {
    await assertRefused(t, es256(attacker.privateKey, header({ kid }), claims()), `ES256 attacker key, kid ${JSON.stringify(kid)}`)
    await assertRefused(t, hmac('sha256', '', header({ alg: 'HS256', kid }), claims()), `HS256 empty secret, kid ${JSON.stringify(kid)}`)
  }
  t.equal(await app.db.signingKey.count(), (await app.db.signingKey.findMany()).length, 'signing_keys still readable')
  t.ok(await app.db.signingKey.findUnique({ where: { kid: SERVER_KID } }), 'the signing key is still there')
  await assertAccepted(t, serverSigned(), 'the service still verifies good tokens')
})

t.test('wrong or missing typ is refused', async (t) => {
  for (const typ of ['JWT', 'jwt', undefined, '', 'at+jwt ', 'at+jwt+evil', 'application/jwt', 'dpop+jwt', 42]) {
    await assertRefused(t, serverSigned({ typ }), `typ ${JSON.stringify(typ)}`)
  }
  await assertRefused(t, await app.keys.sign(claims(), { typ: 'JWT' }), 'typ JWT through app.keys.sign')
})

t.test('expired, not yet valid and issued-in-the-future tokens are refused', async (t) => {
  const now = nowSeconds()
  await assertRefused(t, serverSigned({}, { iat: now - 700, exp: now - 100 }), 'expired 100 s ago')
  await assertRefused(t, serverSigned({}, { iat: now - 3600, exp: now - 3000 }), 'expired an hour ago')
  await assertRefused(t, serverSigned({}, { iat: now - 600, exp: now - 1 }), 'expired a second ago')
  await assertRefused(t, serverSigned({}, { exp: undefined }), 'no exp')
  await assertRefused(t, serverSigned({}, { exp: String(now + 600) }), 'exp as a string')
  await assertRefused(t, serverSigned({}, { nbf: now + 3600 }), 'nbf an hour ahead')
  await assertRefused(t, serverSigned({}, { nbf: now + 120 }), 'nbf two minutes ahead')
  await assertRefused(t, serverSigned({}, { iat: now + 3600, exp: now + 4200 }), 'iat an hour ahead')
  await assertRefused(t, serverSigned({}, { iat: now + 600, exp: now + 1200 }), 'iat ten minutes ahead')
  await assertRefused(t, await app.keys.sign(claims({ iat: now - 700, exp: now - 100 }), { typ: 'at+jwt' }), 'expired, through app.keys.sign')
  // Control: the same shape with times in order is accepted.
  await assertAccepted(t, serverSigned({}, { nbf: now - 5 }), 'nbf in the past')
})

t.test('a tampered token is refused', async (t) => {
  const [h, p, s] = issued.split('.') as [string, string, string]
  const payload = decodePart(issued, 1)
  await assertRefused(t, `${h}.${b64({ ...payload, role: 'admin' })}.${s}`, 'role changed to admin')
  await assertRefused(t, `${h}.${b64({ ...payload, sub: randomUUID() })}.${s}`, 'sub changed')
  await assertRefused(t, `${h}.${b64({ ...payload, exp: Number(payload.exp) + 3600 })}.${s}`, 'exp extended')
  await assertRefused(t, `${h}.${b64({ ...payload, scope: 'profile admin' })}.${s}`, 'scope widened')
  await assertRefused(t, `${h}.${b64(JSON.stringify(payload) + ' ')}.${s}`, 'payload re-encoded with a trailing space')
  const sigBytes = Buffer.from(s, 'base64url')
  sigBytes[10] = sigBytes[10]! ^ 0x01
  await assertRefused(t, `${h}.${p}.${sigBytes.toString('base64url')}`, 'one signature bit flipped')
  await assertRefused(t, `${h}.${p}.${s.slice(0, -4)}`, 'signature truncated')
  await assertRefused(t, `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`, 'all-zero signature')
  await assertRefused(t, `${h}.${p}.${serverSigned().split('.')[2]}`, "another token's signature")
  await assertRefused(t, `${b64({ ...decodePart(issued, 0), typ: 'at+jwt', extra: 1 })}.${p}.${s}`, 'header changed')
  // DER-encoded ECDSA signature instead of the JWS (R || S) form.
  const input = `${b64(header())}.${b64(claims())}`
  const der = sign('sha256', Buffer.from(input), { key: SERVER_PRIVATE, dsaEncoding: 'der' })
  await assertRefused(t, `${input}.${der.toString('base64url')}`, 'DER signature')
  await assertAccepted(t, issued, 'the original is still fine')
})

t.test('wrong issuer or audience is refused', async (t) => {
  for (const iss of ['http://evil.test', `${config.issuer}/`, config.issuer.toUpperCase(), `${config.issuer}.evil.test`, undefined, [config.issuer]]) {
    await assertRefused(t, serverSigned({}, { iss }), `iss ${JSON.stringify(iss)}`)
  }
  for (const aud of ['other-service', `${config.audience}/`, ['other-service'], [], undefined, '']) {
    await assertRefused(t, serverSigned({}, { aud }), `aud ${JSON.stringify(aud)}`)
  }
})

t.test('required claims are required', async (t) => {
  for (const claim of ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'sid', 'client_id', 'role']) {
    await assertRefused(t, serverSigned({}, { [claim]: undefined }), `no ${claim}`)
  }
})

t.test('claims of the wrong type are refused with 401, even when signed with our key', async (t) => {
  for (const [claim, value] of [
    ['sub', { id: 'x' }],
    ['sid', 42],
    ['role', ['admin']],
    ['scope', null],
    ['client_id', true],
    ['iat', '1'],
  ] as const) {
    await assertRefused(t, await app.keys.sign(claims({ [claim]: value } as Claims), { typ: 'at+jwt' }), `${claim} as ${JSON.stringify(value)}`)
  }
})

t.test('a crit header naming an unknown extension is refused', async (t) => {
  await assertRefused(t, serverSigned({ crit: ['exp-unknown'], 'exp-unknown': true }), 'crit ["exp-unknown"]')
  await assertRefused(t, serverSigned({ crit: ['urn:example:must-understand'], 'urn:example:must-understand': 1 }), 'crit URN extension')
  await assertRefused(t, serverSigned({ crit: ['b64'], b64: false }), 'crit b64=false (unencoded payload)')
  await assertRefused(t, serverSigned({ crit: [] }), 'crit empty')
  await assertRefused(t, serverSigned({ crit: 'exp-unknown' }), 'crit not an array')
  await assertRefused(t, serverSigned({ crit: ['exp-unknown'] }), 'crit naming a parameter that is absent')
})

t.test('jku, x5u and jwk headers pointing at an attacker key are refused', async (t) => {
  const attackerSigned = (h: Header) => es256(attacker.privateKey, header(h), claims())
  const embedded = { ...ATTACKER_JWK, kid: ATTACKER_KID, alg: 'ES256', use: 'sig' }
  await assertRefused(t, attackerSigned({ kid: ATTACKER_KID, jwk: embedded }), 'embedded jwk, attacker kid')
  await assertRefused(t, attackerSigned({ kid: undefined, jwk: embedded }), 'embedded jwk, no kid')
  await assertRefused(t, attackerSigned({ kid: SERVER_KID, jwk: { ...embedded, kid: SERVER_KID } }), 'embedded jwk claiming the server kid')
  await assertRefused(t, attackerSigned({ kid: ATTACKER_KID, jku: 'http://evil.test/.well-known/jwks.json' }), 'jku, attacker kid')
  await assertRefused(t, attackerSigned({ kid: SERVER_KID, jku: 'http://evil.test/.well-known/jwks.json' }), 'jku, server kid')
  await assertRefused(t, attackerSigned({ kid: ATTACKER_KID, x5u: 'http://evil.test/cert.pem' }), 'x5u, attacker kid')
  await assertRefused(t, attackerSigned({ kid: SERVER_KID, x5u: 'http://evil.test/cert.pem' }), 'x5u, server kid')
  await assertRefused(t, attackerSigned({ kid: SERVER_KID, x5c: ['MIIB'] }), 'x5c, server kid')
  await assertRefused(t, attackerSigned({ kid: SERVER_KID }), 'the server kid, signed by the attacker')
})

t.test('another algorithm or curve under the server kid is refused', async (t) => {
  const p384 = await generate('ec', { namedCurve: 'P-384' })
  const input384 = `${b64(header({ alg: 'ES384' }))}.${b64(claims())}`
  const sig384 = sign('sha384', Buffer.from(input384), { key: p384.privateKey, dsaEncoding: 'ieee-p1363' })
  await assertRefused(t, `${input384}.${sig384.toString('base64url')}`, 'ES384 with an attacker key')
  const rsa = await generate('rsa', { modulusLength: 2048 })
  const inputRs = `${b64(header({ alg: 'RS256' }))}.${b64(claims())}`
  await assertRefused(t, `${inputRs}.${sign('sha256', Buffer.from(inputRs), rsa.privateKey).toString('base64url')}`, 'RS256 with an attacker key')
  const inputPs = `${b64(header({ alg: 'PS256' }))}.${b64(claims())}`
  await assertRefused(t, `${inputPs}.${sign('sha256', Buffer.from(inputPs), rsa.privateKey).toString('base64url')}`, 'PS256 with an attacker key')
  const ed = await generate('ed25519')
  const inputEd = `${b64(header({ alg: 'EdDSA' }))}.${b64(claims())}`
  await assertRefused(t, `${inputEd}.${sign(null, Buffer.from(inputEd), ed.privateKey).toString('base64url')}`, 'EdDSA with an attacker key')
  // The server's own key under a different alg name.
  await assertRefused(t, serverSigned({ alg: 'ES384' }), 'server key, alg relabelled ES384')
  await assertRefused(t, serverSigned({ alg: 'es256' }), 'server key, alg in lower case')
})

t.test('a refused token does not poison the cache for valid ones', async (t) => {
  const good = serverSigned()
  await assertAccepted(t, good, 'a good token')
  const [h, p] = good.split('.')
  await assertRefused(t, `${h}.${p}.${Buffer.alloc(64, 1).toString('base64url')}`, 'the same header and payload with a bad signature')
  await assertRefused(t, `${h}.${p}.`, 'the same header and payload without a signature')
  await assertAccepted(t, good, 'the good token again')
})

t.test('the verified-token cache serves the whole token only: an edit under a cached signature is refused', async (t) => {
  // The cache finds entries by signature; what it serves must still be the exact token.
  const good = serverSigned()
  await assertAccepted(t, good, 'a good token (now cached)')
  await assertAccepted(t, good, 'the same token, from the cache')
  const [h, p, s] = good.split('.') as [string, string, string]
  const payload = decodePart(good, 1)
  await assertRefused(t, `${h}.${b64({ ...payload, role: 'admin' })}.${s}`, 'payload edited under the cached signature')
  await assertRefused(t, `${b64(header({ extra: 1 }))}.${p}.${s}`, 'header edited under the cached signature')
  await assertRefused(t, `${h}.${p}x.${s}`, 'a character appended to the payload')
  await assertAccepted(t, good, 'the good token again')
})
