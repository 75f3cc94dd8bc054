import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import * as oauth from 'oauth4webapi'
import t from 'tap'
import { listeningTestApp } from '../helpers/app.js'

/**
 * The service driven by off-the-shelf clients over real HTTP, as other
 * software would use it: oauth4webapi (discovery, password and refresh
 * grants, RFC 9068 validation, RFC 7009 revocation) and jose with a remote
 * JWKS, the way another platform service verifies access tokens offline.
 */

const AUDIENCE = 'https://api.shortener.test'

const app = await listeningTestApp(() => ({ ACCESS_TOKEN_AUDIENCE: AUDIENCE }))
const { issuer } = app
t.teardown(() => app.close())

const insecure = { [oauth.allowInsecureRequests]: true } as const
const client: oauth.Client = { client_id: 'mobile' }
const clientAuth = oauth.None()

t.test('an RFC 6749/8414/9068/7009 client round trip with oauth4webapi', async (t) => {
  // Discovery (RFC 8414).
  const issuerUrl = new URL(issuer)
  const preflight = await fetch(`${issuer}/.well-known/oauth-authorization-server`)
  t.equal(preflight.status, 200, `discovery answers: ${preflight.status === 200 ? 'ok' : await preflight.text()}`)
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure }))
  t.equal(as.issuer, issuer)
  t.equal(as.token_endpoint, `${issuer}/auth/token`)
  t.equal(as.revocation_endpoint, `${issuer}/auth/revoke`)
  t.equal(as.introspection_endpoint, `${issuer}/auth/introspect`)
  t.equal(as.jwks_uri, `${issuer}/.well-known/jwks.json`)
  t.ok(as.grant_types_supported?.includes('password'))
  t.ok(as.grant_types_supported?.includes('refresh_token'))
  t.ok(as.token_endpoint_auth_methods_supported?.includes('none'), 'public clients')

  // A user signs up through the service's own endpoint.
  const email = 'interop@example.test'
  const password = 'a long interop passphrase'
  const signup = await fetch(`${issuer}/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  t.equal(signup.status, 201, 'signed up')

  // Password grant (RFC 6749 §4.3) through the generic token endpoint request, form-encoded.
  const passwordResponse = await oauth.genericTokenEndpointRequest(as, client, clientAuth, 'password', { username: email, password }, insecure)
  t.equal(passwordResponse.headers.get('cache-control'), 'no-store')
  const tokens = await oauth.processGenericTokenEndpointResponse(as, client, passwordResponse)
  t.equal(tokens.token_type, 'bearer', 'oauth4webapi lower-cases the token type')
  t.type(tokens.access_token, 'string')
  t.type(tokens.refresh_token, 'string')
  t.ok(tokens.expires_in !== undefined && tokens.expires_in > 0)

  // Wrong password: an OAuth error oauth4webapi understands.
  const bad = await oauth.genericTokenEndpointRequest(as, client, clientAuth, 'password', { username: email, password: 'not the password' }, insecure)
  const badError = await oauth.processGenericTokenEndpointResponse(as, client, bad).catch((e: unknown) => e)
  t.ok(badError instanceof oauth.ResponseBodyError)
  t.equal((badError as oauth.ResponseBodyError).error, 'invalid_grant')
  t.equal((badError as oauth.ResponseBodyError).status, 400)

  // The access token passes the RFC 9068 validator, pinned to ES256 and our audience.
  const resourceRequest = (token: string) => new Request('https://api.shortener.test/links', { headers: { authorization: `Bearer ${token}` } })
  const claims = await oauth.validateJwtAccessToken(as, resourceRequest(tokens.access_token), AUDIENCE, {
    signingAlgorithms: ['ES256'],
    ...insecure,
  })
  t.equal(claims.iss, issuer)
  t.equal(claims.aud, AUDIENCE)
  t.equal(claims.client_id, 'mobile')
  t.type(claims.sub, 'string')
  t.type(claims.jti, 'string')
  t.type(claims.sid, 'string')
  t.equal(claims.role, 'user')
  t.equal(claims.exp - claims.iat, tokens.expires_in)
  t.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt')
  await t.rejects(
    oauth.validateJwtAccessToken(as, resourceRequest(tokens.access_token), 'https://another-service.test', insecure),
    'another audience refuses it'
  )

  // Refresh (RFC 6749 §6): a new pair, the old refresh token retired.
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token!, insecure)
  )
  t.type(refreshed.access_token, 'string')
  t.type(refreshed.refresh_token, 'string')
  t.not(refreshed.refresh_token, tokens.refresh_token, 'the refresh token rotated')
  const refreshedClaims = await oauth.validateJwtAccessToken(as, resourceRequest(refreshed.access_token), AUDIENCE, {
    signingAlgorithms: ['ES256'],
    ...insecure,
  })
  t.equal(refreshedClaims.sid, claims.sid, 'same session')
  t.equal(refreshedClaims.sub, claims.sub)

  // The service's own API accepts the new access token.
  const me = await fetch(`${issuer}/users/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })
  t.equal(me.status, 200)
  t.equal(((await me.json()) as { email: string }).email, email)

  // Revocation (RFC 7009).
  const revocation = await oauth.revocationRequest(as, client, clientAuth, refreshed.refresh_token!, insecure)
  t.equal(revocation.status, 200)
  t.equal(await oauth.processRevocationResponse(revocation), undefined)
  // Revoking an unknown token is also 200.
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, 'not-a-token-we-issued', insecure))

  // Refresh now fails with invalid_grant.
  const afterRevoke = await oauth
    .processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token!, insecure))
    .catch((e: unknown) => e)
  t.ok(afterRevoke instanceof oauth.ResponseBodyError, 'refresh after revocation is an OAuth error')
  t.equal((afterRevoke as oauth.ResponseBodyError).error, 'invalid_grant')

  // And the revoked session's access token is refused by the service itself (§3.5 rule 7).
  const meAfter = await fetch(`${issuer}/users/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })
  t.equal(meAfter.status, 401)
  t.match(meAfter.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
})

t.test('another platform service verifies access tokens with jose and the remote JWKS', async (t) => {
  const discovery = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as { jwks_uri: string }
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri))

  const signup = await fetch(`${issuer}/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'jose@example.test', password: 'another fine passphrase' }),
  })
  t.equal(signup.status, 201)
  const { access_token: token, user } = (await signup.json()) as { access_token: string; user: { id: string } }

  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'] })
  t.equal(payload.sub, user.id)
  t.equal(payload.iss, issuer)
  t.equal(payload.aud, AUDIENCE)
  t.equal(protectedHeader.alg, 'ES256')
  t.type(protectedHeader.kid, 'string')
  for (const claim of ['iss', 'aud', 'sub', 'client_id', 'sid', 'jti', 'iat', 'exp', 'scope', 'role']) {
    t.ok(claim in payload, `claim ${claim}`)
  }

  // The pinned options refuse what they should.
  await t.rejects(jwtVerify(token, jwks, { issuer: 'http://evil.test', audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'] }))
  await t.rejects(jwtVerify(token, jwks, { issuer, audience: 'https://other.test', typ: 'at+jwt', algorithms: ['ES256'] }))
  await t.rejects(jwtVerify(token, jwks, { issuer, audience: AUDIENCE, typ: 'JWT', algorithms: ['ES256'] }))
  await t.rejects(jwtVerify(token, jwks, { issuer, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['EdDSA'] }))

  // The JWKS response is public keys only, and cacheable for less than the publish lead.
  const response = await fetch(discovery.jwks_uri)
  t.equal(response.headers.get('cache-control'), `public, max-age=${app.config.jwksMaxAgeSeconds}`)
  t.ok(app.config.jwksMaxAgeSeconds < app.config.keyPublishLeadSeconds)
  const { keys } = (await response.json()) as { keys: Record<string, unknown>[] }
  t.ok(keys.length >= 1)
  for (const key of keys) {
    t.equal(key.use, 'sig')
    t.equal(key.alg, 'ES256')
    t.notOk('d' in key, 'no private part')
  }
})
