import { decodeJwt } from 'jose'
import t from 'tap'
import { json, listeningTestApp } from '../../helpers/app.js'
import { authorizeUrl, followAuthorization, formFields, PageBrowser, pkcePair } from '../../helpers/oauth.js'
import { centreStep, enrolTotp, totpCode } from '../../helpers/totp.js'
import { injectAs, makeAdmin, PASSWORD, signup, signupAdmin, uniqueEmail } from '../../helpers/users.js'

/**
 * The hosted pages (DESIGN §3.15) run every login path of the token
 * endpoint: sign-up, password, the second step with a TOTP or a recovery
 * code; a refusal reads the same for an unknown address and a wrong
 * password; consent is stored, withdrawn by the user, and seen by admins.
 */

const service = await listeningTestApp()
t.teardown(() => service.close())
const { app, issuer } = service
const admin = await signupAdmin(app)
const REDIRECT = 'https://prints.example/callback'
const registered = json<{ client_id: string; client_secret: string }>(await injectAs(app, admin.access_token, 'POST', '/admin/clients', {
  client_name: 'Photo Prints',
  redirect_uris: [REDIRECT],
  token_endpoint_auth_method: 'client_secret_post',
}))

function start (browser: PageBrowser, scope = 'openid email', extra: Record<string, string> = {}) {
  const pkce = pkcePair()
  return { pkce, url: authorizeUrl(issuer, { clientId: registered.client_id, redirectUri: REDIRECT, scope, state: 's', nonce: 'n', codeChallenge: pkce.challenge, extra }) }
}

async function exchange (code: string, verifier: string) {
  const response = await fetch(`${issuer}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: registered.client_id, client_secret: registered.client_secret }),
  })
  return { status: response.status, body: await response.json() as Record<string, string> }
}

/** The sign-in page of a fresh authorization, and its form's fields. */
async function signInPage (browser: PageBrowser) {
  const page = await browser.get(start(browser).url)
  const html = await page.text()
  return { page, html, fields: formFields(html, '/oauth/sign-in')! }
}

t.test('sign-up on the hosted pages creates the account, signs the browser in and goes on to consent and the code', async (t) => {
  const browser = new PageBrowser(issuer)
  const { html, fields } = await signInPage(browser)
  t.match(html, /Create an account/)
  const form = await browser.post('/oauth/sign-up/form', fields)
  const page = await form.text()
  t.equal(form.status, 200)
  t.match(page, /<label for="email">Email<\/label>/)
  const email = uniqueEmail('hosted')
  const weak = await browser.post('/oauth/sign-up', { ...formFields(page, '/oauth/sign-up')!, email, password: 'password' })
  t.equal(weak.status, 400, 'a common password is refused on the page')
  t.match(await weak.text(), /role="alert"/)
  const created = await browser.post('/oauth/sign-up', { ...formFields(page, '/oauth/sign-up')!, email, password: PASSWORD })
  t.equal(created.status, 200, 'the consent page follows')
  const consent = formFields(await created.text(), '/oauth/consent')
  t.ok(consent, 'a third-party client asks for consent')
  const allowed = await browser.post('/oauth/consent', { ...consent!, decision: 'allow' })
  t.equal(allowed.status, 303)
  t.match(allowed.headers.get('location'), /^https:\/\/prints\.example\/callback\?code=/)
  const user = await app.db.user.findUnique({ where: { email } })
  t.ok(user, 'the account exists')
  t.equal(await app.db.emailOutbox.count({ where: { recipient: email } }), 1, 'the verification message is queued')
})

t.test('a wrong password and an unknown address get the same page; the sign-in page is shown again', async (t) => {
  const user = await signup(app)
  const browser = new PageBrowser(issuer)
  const { fields } = await signInPage(browser)
  const wrong = await browser.post('/oauth/sign-in', { ...fields, email: user.email, password: 'not the password at all' })
  const unknown = await browser.post('/oauth/sign-in', { ...fields, email: uniqueEmail('nobody'), password: 'not the password at all' })
  t.equal(wrong.status, 401)
  t.equal(unknown.status, wrong.status, 'the same status')
  const alertOf = async (response: Response) => /<p class="error" role="alert">([^<]*)<\/p>/.exec(await response.text())?.[1]
  const [wrongAlert, unknownAlert] = [await alertOf(wrong), await alertOf(unknown)]
  t.ok(wrongAlert)
  t.equal(unknownAlert, wrongAlert, 'the same words')
  t.notOk(browser.cookies.has('__Host-as_session'), 'no browser session')
})

t.test('an account with an authenticator signs in with its code, then with a recovery code; a wrong code keeps the second step', async (t) => {
  const user = await signup(app)
  await centreStep(service)
  const enrolled = await enrolTotp(app, user.access_token, service.clock.now())
  // The next time step: the enrolment's code is spent.
  service.clock.advance(30)
  await centreStep(service)
  const browser = new PageBrowser(issuer)
  const { fields } = await signInPage(browser)
  const second = await browser.post('/oauth/sign-in', { ...fields, email: user.email, password: PASSWORD })
  const secondHtml = await second.text()
  const step = formFields(secondHtml, '/oauth/sign-in/second-factor')
  t.ok(step?.mfa_token, 'the second-step page')
  t.match(secondHtml, /<label for="code">Code<\/label>/)
  const wrong = await browser.post('/oauth/sign-in/second-factor', { ...step!, code: totpCode(enrolled.secret, service.clock.now()) === '000000' ? '111111' : '000000' })
  t.equal(wrong.status, 401)
  const again = formFields(await wrong.text(), '/oauth/sign-in/second-factor')
  t.ok(again, 'the second step is offered again')
  const done = await browser.post('/oauth/sign-in/second-factor', { ...again!, code: totpCode(enrolled.secret, service.clock.now()) })
  t.equal(done.status, 200, 'consent follows the second step')
  const session = [...browser.cookies].find(([name]) => name.endsWith('as_session'))
  t.ok(session, 'the browser is signed in')

  const other = new PageBrowser(issuer)
  const { pkce, url } = start(other)
  const back = await followAuthorization(other, url, { email: user.email, password: PASSWORD, code: () => enrolled.recoveryCodes[0]! })
  const tokens = await exchange(back.searchParams.get('code')!, pkce.verifier)
  t.equal(tokens.status, 200)
  const claims = decodeJwt(tokens.body.id_token!)
  t.ok((claims.amr as string[]).includes('mfa'), 'the ID token says two factors')
  t.equal(claims.acr, 'urn:token-auth:acr:mfa')
})

t.test('a disabled account and, under REQUIRE_EMAIL_VERIFICATION, an unverified one cannot sign in on the pages', async (t) => {
  const user = await signup(app)
  await injectAs(app, admin.access_token, 'PATCH', `/admin/users/${user.id}`, { disabled: true })
  const browser = new PageBrowser(issuer)
  const { fields } = await signInPage(browser)
  const refused = await browser.post('/oauth/sign-in', { ...fields, email: user.email, password: PASSWORD })
  t.equal(refused.status, 401)
  t.notOk([...browser.cookies.keys()].some((name) => name.endsWith('as_session')))

  const strict = await listeningTestApp(() => ({ REQUIRE_EMAIL_VERIFICATION: 'true' }))
  t.teardown(() => strict.close())
  const unverified = await signup(strict.app)
  const adminAccount = await signup(strict.app, { label: 'admin' })
  await strict.app.db.user.update({ where: { id: adminAccount.id }, data: { emailVerifiedAt: new Date() } })
  const strictAdmin = await makeAdmin(strict.app, adminAccount)
  const client = json<{ client_id: string }>(await injectAs(strict.app, strictAdmin.access_token, 'POST', '/admin/clients', { client_name: 'x', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }))
  const strictBrowser = new PageBrowser(strict.issuer)
  const page = await strictBrowser.get(authorizeUrl(strict.issuer, { clientId: client.client_id, redirectUri: REDIRECT, codeChallenge: pkcePair().challenge, scope: 'openid' }))
  const answer = await strictBrowser.post('/oauth/sign-in', { ...formFields(await page.text(), '/oauth/sign-in')!, email: unverified.email, password: PASSWORD })
  t.equal(answer.status, 400, 'the page says why, with the token endpoint\'s status')
  t.match(await answer.text(), /confirm your email address/)
})

t.test('consent is stored, asked again with prompt=consent, listed, withdrawn (ending the app\'s sessions), and shown to admins; Deny answers access_denied', async (t) => {
  const user = await signup(app)
  const browser = new PageBrowser(issuer)
  const first = start(browser, 'openid email offline_access')
  const back = await followAuthorization(browser, first.url, { email: user.email, password: PASSWORD })
  const tokens = await exchange(back.searchParams.get('code')!, first.pkce.verifier)
  t.ok(tokens.body.refresh_token, 'offline_access granted: a refresh token')

  const second = start(browser, 'openid email')
  const quiet = await browser.get(second.url)
  t.equal(quiet.status, 303, 'granted scopes: no page, straight back with a code')
  const asked = await browser.get(start(browser, 'openid', { prompt: 'consent' }).url)
  t.equal(asked.status, 200, 'prompt=consent asks again')
  const denied = await browser.post('/oauth/consent', { ...formFields(await asked.text(), '/oauth/consent')!, decision: 'deny' })
  t.equal(new URL(denied.headers.get('location')!).searchParams.get('error'), 'access_denied')

  const list = json<{ items: { clientId: string; clientName: string; scope: string }[] }>(await injectAs(app, user.access_token, 'GET', '/users/me/grants'))
  const grant = list.items.find((item) => item.clientId === registered.client_id)
  t.ok(grant)
  t.equal(grant!.clientName, 'Photo Prints')
  t.same(grant!.scope.split(' ').sort(), ['email', 'offline_access', 'openid'])
  const seenByAdmin = json<{ items: { clientId: string }[] }>(await injectAs(app, admin.access_token, 'GET', `/admin/users/${user.id}/grants`))
  t.ok(seenByAdmin.items.some((item) => item.clientId === registered.client_id))

  t.equal((await injectAs(app, user.access_token, 'DELETE', `/users/me/grants/${registered.client_id}`)).statusCode, 204)
  t.equal((await injectAs(app, user.access_token, 'DELETE', `/users/me/grants/${registered.client_id}`)).statusCode, 404, 'gone')
  const refreshed = await fetch(`${issuer}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token!, client_id: registered.client_id, client_secret: registered.client_secret }),
  })
  t.equal(refreshed.status, 400, 'the app\'s session ended with its access')
  const afterwards = await browser.get(start(browser).url)
  t.equal(afterwards.status, 200, 'the next authorization asks for consent again')
  t.ok(formFields(await afterwards.text(), '/oauth/consent'))
})

t.test('acr_values asking for two factors makes a password-only browser session sign in again, with the second step', async (t) => {
  const user = await signup(app)
  await centreStep(service)
  const enrolled = await enrolTotp(app, user.access_token, service.clock.now())
  service.clock.advance(30)
  await centreStep(service)
  const browser = new PageBrowser(issuer)
  // A first sign-in with the password only is impossible for this account: it has a factor. Sign in fully, then ask for mfa.
  const first = start(browser)
  await followAuthorization(browser, first.url, { email: user.email, password: PASSWORD, code: () => totpCode(enrolled.secret, service.clock.now()) })
  const quiet = await browser.get(start(browser, 'openid', { acr_values: 'urn:token-auth:acr:mfa' }).url)
  t.equal(quiet.status, 303, 'a session that met mfa needs no new sign-in')

  const plain = await signup(app)
  const other = new PageBrowser(issuer)
  const signedIn = start(other)
  await followAuthorization(other, signedIn.url, { email: plain.email, password: PASSWORD })
  const again = await other.get(start(other, 'openid', { acr_values: 'urn:token-auth:acr:mfa' }).url)
  t.equal(again.status, 200, 'a password-only session signs in again')
  t.ok(formFields(await again.text(), '/oauth/sign-in'), 'the sign-in page')
  const none = await other.get(start(other, 'openid', { acr_values: 'urn:token-auth:acr:mfa', prompt: 'none' }).url)
  t.equal(new URL(none.headers.get('location')!).searchParams.get('error'), 'login_required', 'prompt=none cannot raise it')
})

t.test('concurrent exchanges of one code: one wins, and the reuse ends the session it started', async (t) => {
  const user = await signup(app)
  const browser = new PageBrowser(issuer)
  const { pkce, url } = start(browser, 'openid offline_access')
  const back = await followAuthorization(browser, url, { email: user.email, password: PASSWORD })
  const code = back.searchParams.get('code')!
  const answers = await Promise.all(Array.from({ length: 6 }, () => exchange(code, pkce.verifier)))
  const won = answers.filter((answer) => answer.status === 200)
  t.ok(won.length <= 1, 'at most one exchange succeeds')
  t.ok(answers.filter((answer) => answer.status === 400).every((answer) => answer.body.error === 'invalid_grant'), 'the others are invalid_grant')
  for (const answer of won) {
    await service.app.revocations.sync()
    const me = await injectAs(app, answer.body.access_token!, 'GET', '/users/me')
    t.equal(me.statusCode, 401, 'the winner\'s session was revoked by the reuse')
    const refreshed = await exchange(code, pkce.verifier)
    t.equal(refreshed.status, 400)
  }
  const live = await app.db.session.count({ where: { userId: user.id, clientId: registered.client_id, revokedAt: null } })
  t.equal(live, 0, 'no live session of the client is left')
})
