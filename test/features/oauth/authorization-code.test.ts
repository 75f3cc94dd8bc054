import t from 'tap'
import { listeningTestApp } from '../../helpers/app.js'
import { PASSWORD, signup, signupAdmin } from '../../helpers/users.js'
import { authorizeUrl, followAuthorization, PageBrowser, pkcePair } from '../../helpers/oauth.js'

t.test('a third-party client signs a user in with code + PKCE through the hosted pages', async (t) => {
  const service = await listeningTestApp()
  t.teardown(() => service.close())
  const { issuer } = service
  const admin = await signupAdmin(service.app)
  const registered = await service.app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { authorization: `Bearer ${admin.access_token}` },
    payload: { client_name: 'Photo Prints', redirect_uris: ['https://prints.example/callback'], scope: '', token_endpoint_auth_method: 'client_secret_basic' },
  })
  t.equal(registered.statusCode, 201, 'the client is registered')
  const client = registered.json() as { client_id: string; client_secret: string }
  const user = await signup(service.app)
  const browser = new PageBrowser(issuer)
  const pkce = pkcePair()
  const back = await followAuthorization(browser, authorizeUrl(issuer, {
    clientId: client.client_id,
    redirectUri: 'https://prints.example/callback',
    scope: 'openid email offline_access',
    state: 'st-1',
    nonce: 'n-1',
    codeChallenge: pkce.challenge,
  }), { email: user.email, password: PASSWORD })
  t.equal(back.origin + back.pathname, 'https://prints.example/callback')
  t.equal(back.searchParams.get('state'), 'st-1')
  t.equal(back.searchParams.get('iss'), issuer)
  const code = back.searchParams.get('code')!
  t.ok(code)
  const token = await fetch(`${issuer}/auth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'https://prints.example/callback', code_verifier: pkce.verifier }),
  })
  const body = await token.json() as Record<string, string>
  t.equal(token.status, 200, `the code is exchanged: ${body.error ?? 'ok'}`)
  t.ok(body.access_token)
  t.ok(body.id_token)
  t.ok(body.refresh_token)
  const again = await fetch(`${issuer}/auth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'https://prints.example/callback', code_verifier: pkce.verifier }),
  })
  t.equal(again.status, 400)
  const me = await fetch(`${issuer}/users/me`, { headers: { authorization: `Bearer ${body.access_token}` } })
  t.equal(me.status, 401, 'the reuse revoked what the first exchange issued')
})
