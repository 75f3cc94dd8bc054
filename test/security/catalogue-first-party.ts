import { createHash, randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { lifetimesFor } from '../../src/features/tokens/clients.js'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../src/shared/authentication-methods.js'
import { json } from '../helpers/app.js'
import { pkcePair } from '../helpers/oauth.js'
import { centreStep, enrolTotp, totpCode } from '../helpers/totp.js'
import * as users from '../helpers/users.js'
import { registerPasskey, signInOptions, SoftAuthenticator, TEST_ORIGIN } from '../helpers/webauthn.js'
import {
  assertInvalidGrant,
  assertInvalidToken,
  assertNo5xx,
  CHALLENGE_ENDPOINT,
  ChallengePath,
  holdNextCodeIssue,
  makeAdminThrough,
  signInTokens,
  type SignInOptions,
} from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { cookieCases, loginCsrf, refreshCookieAttributes } from './catalogue-cookies.js'
import { answersAlike, enumerationCases, perAccountBudget, perIpBudget, spoofedAddressSameBudget, timeAlike } from './catalogue-enumeration.js'
import { canonicalFormCases } from './catalogue-canonical-forms.js'
import { hardeningCases } from './catalogue-hardening.js'
import { inputCases } from './catalogue-input.js'
import {
  assertionReplay,
  chosenOrStaleChallenge,
  clonedAuthenticator,
  forgedAssertion,
  holder,
  hostileCredentials,
  passkeyBudget,
  passkeyCases,
  phishingOrigin,
  withoutUserVerification,
} from './catalogue-passkeys.js'
import { floodShed, loginRacesPasswordChange, passwordCases } from './catalogue-passwords.js'
import { refreshTokenCases } from './catalogue-refresh-tokens.js'
import { adminPasswordOnly, stepUpCases } from './catalogue-step-up.js'
import { lostPasskeyEndsSessions, refusedWithinASecond, takeoverCases } from './catalogue-takeover.js'
import { adminWithoutFactor, copiedSecret, enrolled, recoveryCodeRace, stepTokenLife, totpCases, totpDrift, totpGuessing, totpReplay } from './catalogue-totp.js'
import { EVIL_ORIGIN, PASSWORD, SPA_ORIGIN, setCookies, uniqueEmail, type AttackContext, type Response, type Tokens } from './context.js'

/**
 * First-party sign-in through the Authorization Challenge Endpoint
 * (POST /oauth/authorize-challenge, draft-ietf-oauth-first-party-apps-04,
 * DESIGN §3.16, issue 27).
 *
 * FP-01…FP-45: the catalogue's login rows again, each against the
 * challenge endpoint instead of the password grant family: its title names
 * the original row and its source is the original's. Where a row was written
 * as a function of the sign-in path (attack-helpers.ts SignInPath), the very
 * function runs with the challenge path; the others are written again here.
 * FP-46: bcrypt's 72-byte limit, which no row attacked yet. FP-47…FP-56:
 * the draft's security considerations (§9, and the §5.3.1 and §6 they lean
 * on), each citing its section. FP-57: a service with PASSWORD_GRANT
 * disabled, where the grant must really be gone.
 *
 * The rows set up accounts by sign-up and sign in through the challenge
 * endpoint only, so they hold whether the catalogue's service serves the
 * password grant or not; a row about the grant builds its own service.
 */

const FP = new ChallengePath()
const CSRF = { origin: SPA_ORIGIN, 'x-requested-with': 'XMLHttpRequest' }
const MFA_OTP = `${GRANT_TYPE_PREFIX}mfa-otp`
const PASSKEY_GRANT = `${GRANT_TYPE_PREFIX}passkey`

type App = AttackContext['app']

const ORIGINALS: AttackCase[] = [
  ...enumerationCases, ...passwordCases, ...refreshTokenCases, ...totpCases, ...stepUpCases, ...passkeyCases,
  ...takeoverCases, ...cookieCases, ...inputCases, ...canonicalFormCases, ...hardeningCases,
]

/** A row re-run on the challenge endpoint: its title names the original row, its source is the original's. */
function twin (id: string, of: string, title: string, run: AttackCase['run']): AttackCase {
  const original = ORIGINALS.find((c) => c.id === of)
  if (!original) throw new Error(`${id}: no row ${of} in the catalogue`)
  return { id, title: `(as ${of} on the challenge endpoint): ${title}`, source: original.source, run }
}

/** A request to the challenge endpoint with exactly this raw body and content type. */
function raw (app: App, payload: string, contentType: string, options: { headers?: Record<string, string>; url?: string } = {}) {
  return app.inject({ method: 'POST', url: options.url ?? CHALLENGE_ENDPOINT, headers: { 'content-type': contentType, ...options.headers }, payload })
}

/** A first request with a fresh PKCE pair (kept for the caller): its answer and the pair. */
async function startFlow (app: App, credentials: Record<string, unknown>, options: SignInOptions = {}) {
  const pkce = pkcePair()
  const answer = await FP.request(
    app,
    { response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', ...credentials },
    options,
    { clientId: options.clientId ?? 'mobile', verifier: pkce.verifier }
  )
  return { answer, pkce }
}

function codeOf (answer: Response): string {
  const code = json<{ authorization_code?: unknown }>(answer).authorization_code
  if (answer.statusCode !== 200 || typeof code !== 'string') throw new Error(`expected a code: ${answer.statusCode} ${answer.body}`)
  return code
}

function assertNoCode (t: Test, response: Response, label: string) {
  t.notOk('authorization_code' in json(response), `${label}: no code`)
  t.notOk('auth_session' in json(response), `${label}: no auth_session`)
}

function assertError (t: Test, response: Response, status: number, error: string, label: string) {
  t.equal(response.statusCode, status, `${label}: ${status} (${response.body.slice(0, 140)})`)
  t.equal(json(response).error, error, `${label}: ${error}`)
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

// ------------------------------------------------------------ the login rows, on the challenge endpoint

const twins: AttackCase[] = [
  // Enumeration and brute force (catalogue-enumeration.ts).
  twin('FP-01', 'EN-01', 'user enumeration by status and body: unknown email, wrong password and disabled user answer alike',
    (ctx, t) => answersAlike(ctx, t, FP)),
  twin('FP-02', 'EN-02', 'user enumeration by time: an unknown email costs a bcrypt compare like a wrong password',
    (ctx, t) => timeAlike(ctx, t, FP)),
  twin('FP-03', 'EN-03', 'brute force: the first request is rate-limited per IP with 429 and Retry-After, the right password included',
    (ctx, t) => perIpBudget(ctx, t, FP)),
  twin('FP-04', 'EN-04', 'brute force from rotating addresses and email spellings hits the per-account limit',
    (ctx, t) => perAccountBudget(ctx, t, FP)),
  twin('FP-05', 'EN-05', 'a spoofed X-Forwarded-For does not reset the per-IP limit (proxy headers not trusted by default)',
    (ctx, t) => spoofedAddressSameBudget(ctx, t, FP)),

  // Login races and load (catalogue-passwords.ts).
  twin('FP-06', 'PW-02', 'a sign-in with the old password, in flight during a password change (between its password check and its code, or between its code and the exchange), opens no session that outlives the change',
    async (ctx, t) => {
      await loginRacesPasswordChange(ctx, t, FP)
      const b = await ctx.signup('fp-pw-race-code')
      const code = codeOf(await FP.password(ctx.app, b.email, PASSWORD))
      const change = await users.injectAs(ctx.app, b.access_token, 'POST', '/users/me/password', { currentPassword: PASSWORD, newPassword: 'changed before the code was exchanged' })
      t.equal(change.statusCode, 204)
      assertInvalidGrant(t, await FP.exchange(ctx.app, code), 'the code issued before the change, exchanged after it')
      t.equal(await ctx.app.db.session.count({ where: { userId: b.id, revokedAt: null } }), 1, "only the changer's session is live")
    }),
  twin('FP-07', 'PW-03', 'a sign-in in flight during a promotion to admin gets no admin token with a user\'s session lifetimes: a session, if its code starts one, has the role of the exchange and that role\'s lifetimes',
    async (ctx, t) => {
      const boss = await makeAdminThrough(FP, ctx.app, await ctx.signup('fp-boss'))
      const mobile = ctx.config.clients.mobile!
      const asAdmin = lifetimesFor(ctx.config, mobile, 'admin')
      const asUser = lifetimesFor(ctx.config, mobile, 'user')
      const promote = async (id: string) => {
        const patch = await users.injectAs(ctx.app, boss.access_token, 'PATCH', `/admin/users/${id}`, { role: 'admin' })
        t.equal(patch.statusCode, 200, 'promoted')
      }
      /** Refused with no session left, or an admin session with an admin's lifetimes and token. */
      const consistent = async (answer: Response, account: { id: string; sessionId: string }, label: string) => {
        if (answer.statusCode !== 200) {
          assertInvalidGrant(t, answer, label)
          t.equal(await ctx.app.db.session.count({ where: { userId: account.id, revokedAt: null, id: { not: account.sessionId } } }), 0, `${label}: no session of the sign-in left`)
          return
        }
        const tokens = json<Tokens>(answer)
        const claims = users.claimsOf(tokens.access_token)
        t.equal(claims.role, 'admin', `${label}: the token has the role of the exchange`)
        t.equal(Number(claims.exp) - Number(claims.iat), asAdmin.accessTokenTtlSeconds, `${label}: an admin's access-token lifetime`)
        const session = await ctx.sessionOf(tokens.access_token)
        t.equal(session.idleTtlSeconds, asAdmin.idleTtlSeconds, `${label}: an admin's idle lifetime (a user's: ${asUser.idleTtlSeconds})`)
        t.equal(Math.round((session.absoluteExpiresAt.getTime() - session.createdAt.getTime()) / 1000), asAdmin.absoluteTtlSeconds, `${label}: an admin's absolute lifetime (a user's: ${asUser.absoluteTtlSeconds})`)
      }
      const a = await ctx.signup('fp-promoted-in-check')
      const held = holdNextCodeIssue(ctx.app)
      const login = (async () => FP.tokens(ctx.app, await FP.password(ctx.app, a.email, PASSWORD)))()
      await held.reached
      await promote(a.id)
      held.release()
      await consistent(await login, a, 'promoted between the password check and the code')
      const b = await ctx.signup('fp-promoted-before-exchange')
      const code = codeOf(await FP.password(ctx.app, b.email, PASSWORD))
      await promote(b.id)
      await consistent(await FP.exchange(ctx.app, code), b, 'promoted between the code and its exchange')
      await ctx.app.db.user.updateMany({ where: { id: { in: [a.id, b.id] } }, data: { role: 'user' } })
    }),
  twin('FP-08', 'PW-06', 'a sign-in flood is shed with 503 and Retry-After once the bcrypt queue is full, instead of queueing without bound',
    (ctx, t) => floodShed(ctx, t, FP)),
  twin('FP-09', 'RT-10', 'a disabled user: the first request, a pending auth_session, an unexchanged code, refresh, access tokens and API keys all refused at once',
    async (ctx, t) => {
      const admin = await makeAdminThrough(FP, ctx.app, await ctx.signup('fp-disabler'))
      const plain = await ctx.signup('fp-disabled')
      const key = await ctx.createApiKey(plain.access_token)
      const session = await signInTokens(FP, ctx.app, plain.email)
      const code = codeOf(await FP.password(ctx.app, plain.email, PASSWORD))
      const withFactor = await enrolled(ctx, 'fp-disabled-factor')
      const authSession = await FP.secondStepToken(ctx.app, withFactor.email)
      for (const id of [plain.id, withFactor.id]) {
        const patch = await users.injectAs(ctx.app, admin.access_token, 'PATCH', `/admin/users/${id}`, { disabled: true })
        t.equal(patch.statusCode, 200)
      }
      assertInvalidGrant(t, await FP.password(ctx.app, plain.email, PASSWORD), 'the first request')
      assertInvalidGrant(t, await FP.exchange(ctx.app, code), 'the code issued before')
      await centreStep(ctx)
      const step = await FP.secondStep(ctx.app, authSession, { otp: totpCode(withFactor.secret, ctx.clock.now()) })
      t.equal(step.statusCode, 400, `the pending auth_session with the right code: 400 (${step.body.slice(0, 120)})`)
      t.ok(['invalid_grant', 'invalid_session'].includes(String(json(step).error)), `invalid_grant or invalid_session (${String(json(step).error)})`)
      assertNoCode(t, step, 'the pending auth_session')
      assertInvalidGrant(t, await ctx.refresh(session.refresh_token), 'the refresh token of a session the endpoint opened')
      assertInvalidToken(t, await refusedWithinASecond(ctx, session.access_token), 'its access token')
      assertInvalidToken(t, await ctx.me(undefined, { 'x-api-key': key.key }), 'API key')
    }),

  // The second step (catalogue-totp.ts, catalogue-step-up.ts).
  twin('FP-10', 'TOTP-01', 'a TOTP code that was accepted at a step is refused when presented again inside its window, and so is an older step\'s code',
    (ctx, t) => totpReplay(ctx, t, FP)),
  twin('FP-11', 'TOTP-02', 'a code two time steps away (60 s of drift) is refused at a step; one step either side is the whole window',
    (ctx, t) => totpDrift(ctx, t, FP)),
  twin('FP-12', 'TOTP-03', 'guessing codes: an auth_session dies after five wrong codes (then invalid_session), and a per-user budget answers 429 across auth_sessions',
    (ctx, t) => totpGuessing(ctx, t, FP)),
  twin('FP-13', 'TOTP-04', 'a recovery code works once: 20 concurrent steps of 20 auth_sessions with one code, one authorization code',
    (ctx, t) => recoveryCodeRace(ctx, t, FP)),
  twin('FP-14', 'TOTP-05', 'the auth_session is single use, expires in 5 minutes, and works only for the client it was issued to (invalid_session otherwise)',
    (ctx, t) => stepTokenLife(ctx, t, FP)),
  twin('FP-15', 'TOTP-06', 'a step keeps the first request\'s transport, and in cookie transport the CSRF defence (no cross-site sign-in into the attacker\'s account)',
    async (ctx, t) => {
      const user = await enrolled(ctx, 'fp-totp-transport')
      const bodySession = await FP.secondStepToken(ctx.app, user.email, { clientId: 'mobile' })
      await centreStep(ctx)
      const code = totpCode(user.secret, ctx.clock.now())
      const switched = await FP.secondStep(ctx.app, bodySession, { otp: code }, { clientId: 'mobile', headers: { ...CSRF, 'token-transport': 'cookie' } })
      FP.assertStepTokenRefused(t, switched, 'a body-transport auth_session in cookie transport')
      t.equal(switched.cookies.length, 0, 'no cookie')
      const cookieSession = await FP.secondStepToken(ctx.app, user.email, { clientId: 'web', headers: CSRF })
      const crossSite = await raw(ctx.app, new URLSearchParams({ client_id: 'web', auth_session: cookieSession, otp: code }).toString(), 'application/x-www-form-urlencoded', { headers: { origin: 'http://evil.test' } })
      t.equal(crossSite.statusCode, 403, 'a cross-site form is refused')
      t.equal(crossSite.cookies.length, 0, 'and sets no cookie')
      assertNoCode(t, crossSite, 'the cross-site form')
      // Control: the same step from the SPA's origin, then its exchange, which alone sets the cookie.
      const sameSite = await FP.secondStep(ctx.app, cookieSession, { otp: code }, { clientId: 'web', headers: CSRF })
      t.equal(sameSite.statusCode, 200, `control: the same step from the allowed origin gets its code (${sameSite.body.slice(0, 120)})`)
      t.equal(sameSite.cookies.length, 0, 'the step itself sets no cookie')
      const exchanged = await FP.tokens(ctx.app, sameSite, { clientId: 'web', headers: CSRF })
      t.equal(exchanged.statusCode, 200, 'control: the exchange')
      t.match(setCookies(exchanged).join('\n'), /__Secure-refresh_token=[^;]/, 'the exchange sets the refresh cookie')
    }),
  twin('FP-16', 'TOTP-07', 'for an account with a second factor the password alone yields no code: insufficient_authorization carries only the auth_session and the factors',
    async (ctx, t) => {
      const user = await enrolled(ctx, 'fp-password-only')
      const before = await ctx.app.db.session.count({ where: { userId: user.id } })
      const response = await FP.password(ctx.app, user.email, PASSWORD)
      t.equal(response.statusCode, 403, 'the draft\'s status for insufficient_authorization')
      const body = json(response)
      t.equal(body.error, 'insufficient_authorization')
      t.same(Object.keys(body).sort(), ['auth_session', 'error', 'error_description', 'factors'])
      t.same(body.factors, ['otp', 'recovery_code'])
      t.equal(response.cookies.length, 0, 'no cookie')
      t.equal(await ctx.app.db.session.count({ where: { userId: user.id } }), before, 'no session')
      t.equal(await ctx.app.db.authorizationCode.count({ where: { userId: user.id } }), 0, 'no code stored')
    }),
  twin('FP-17', 'TOTP-09', 'REQUIRE_MFA_FOR_ADMINS: an admin token from a password-only code reaches only the enrolment routes',
    (ctx, t) => adminWithoutFactor(ctx, t, FP)),
  twin('FP-18', 'SU-04', 'REQUIRE_MFA_FOR_ADMINS: an admin signed in at the challenge endpoint with a password alone reaches no admin route, only enrolment',
    (ctx, t) => adminPasswordOnly(ctx, t, FP)),
  twin('FP-19', 'TOTP-10', 'a TOTP secret copied to another user\'s row does not decrypt there: no code is accepted at a step, nothing fails open',
    (ctx, t) => copiedSecret(ctx, t, FP)),
  twin('FP-20', 'ATO-04', 'REQUIRE_MFA_FOR_ADMINS: an admin whose one factor is a passkey must prove it at a step; a password-only code adds no factor and reaches no admin route',
    async (ctx, t) => {
      const strict = await ctx.buildApp({ REQUIRE_MFA_FOR_ADMINS: 'true' })
      try {
        const { app } = strict
        const account = await users.signup(app, { label: 'fp-passkey-admin' })
        await app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
        await app.revocations.sync()
        // Signed in before the admin has any factor: a password-only code.
        const passwordOnly = await signInTokens(FP, app, account.email)
        const authenticator = new SoftAuthenticator(TEST_ORIGIN)
        await registerPasskey(app, passwordOnly.access_token, authenticator, 'admin key')
        for (const [method, url] of [['POST', '/users/me/passkeys/options'], ['POST', '/users/me/mfa/totp'], ['GET', '/admin/users']] as const) {
          const refused = await users.injectAs(app, passwordOnly.access_token, method, url)
          t.equal(refused.statusCode, 401, `the password-only session: ${method} ${url}: 401 (${refused.body.slice(0, 120)})`)
          t.match(String(refused.headers['www-authenticate']), `acr_values="${ACR_MFA}"`, `${method} ${url}: asks for the mfa level`)
        }
        t.equal(await app.db.passkey.count({ where: { userId: account.id } }), 1, 'one passkey, the first')

        const sessionsBefore = await app.db.session.count({ where: { userId: account.id } })
        const first = await FP.password(app, account.email, PASSWORD)
        const body = json<{ error?: string; auth_session?: string; factors?: string[] }>(first)
        t.equal(first.statusCode, 403, `the first request answers 403 (${first.body.slice(0, 160)})`)
        t.equal(body.error, 'insufficient_authorization')
        t.same(body.factors, ['passkey'], 'naming the passkey')
        t.equal(first.cookies.length, 0, 'no cookie')
        t.equal(await app.db.session.count({ where: { userId: account.id } }), sessionsBefore, 'and no session')
        if (body.auth_session !== undefined) {
          const options = await app.inject({ method: 'POST', url: '/auth/mfa/passkey-options', payload: { mfa_token: body.auth_session } })
          t.equal(options.statusCode, 200, `POST /auth/mfa/passkey-options with the auth_session (${options.body.slice(0, 120)})`)
          t.equal(json<{ allowCredentials?: unknown[] }>(options).allowCredentials?.length, 1, 'offering the admin\'s passkey')
          const step = await FP.secondStep(app, body.auth_session, { credential: authenticator.get(json<{ challenge: string; rpId: string }>(options)) })
          t.equal(step.statusCode, 200, `the step with the assertion gets a code (${step.body.slice(0, 120)})`)
          const answer = await FP.tokens(app, step)
          t.equal(answer.statusCode, 200, 'the code\'s exchange')
          const claims = users.claimsOf(json<Tokens>(answer).access_token)
          t.equal(claims.acr, ACR_MFA, 'the session is mfa')
          t.ok((claims.amr as string[]).includes('pwd') && (claims.amr as string[]).includes('hwk'), `amr: the password and the key (${String(claims.amr)})`)
          t.equal((await users.injectAs(app, json<Tokens>(answer).access_token, 'GET', '/admin/users?limit=1')).statusCode, 200, 'it reaches the admin API')
        }
      } finally {
        await strict.close()
      }
    }),

  // Passkeys (catalogue-passkeys.ts, catalogue-takeover.ts).
  twin('FP-21', 'PK-01', 'a captured passkey assertion replayed, or raced 10 times at once, yields one code and one session',
    (ctx, t) => assertionReplay(ctx, t, FP)),
  twin('FP-22', 'PK-02', 'a passkey assertion over a challenge the client chose, or one past its 5 minutes, is refused',
    (ctx, t) => chosenOrStaleChallenge(ctx, t, FP)),
  twin('FP-23', 'PK-03', 'a cloned authenticator (a signature counter that does not increase) is refused and audited',
    (ctx, t) => clonedAuthenticator(ctx, t, FP)),
  twin('FP-24', 'PK-04', 'a passkey assertion made on a phishing origin, or for another RP ID, is refused; the RP ID never comes from the request',
    (ctx, t) => phishingOrigin(ctx, t, FP)),
  twin('FP-25', 'PK-05', 'a passkey assertion without user verification (presence only) is refused',
    (ctx, t) => withoutUserVerification(ctx, t, FP)),
  twin('FP-26', 'PK-06', 'a passkey assertion with a forged signature, or another user\'s user handle, is refused',
    (ctx, t) => forgedAssertion(ctx, t, FP)),
  twin('FP-27', 'PK-10', 'hostile passkey credentials (not JSON, wrong shape, oversized) answer 400, never 500; prototype keys are inert',
    (ctx, t) => hostileCredentials(ctx, t, FP)),
  twin('FP-28', 'PK-11', 'passkey sign-in options and assertions at the challenge endpoint are limited per IP',
    (ctx, t) => passkeyBudget(ctx, t, FP)),
  twin('FP-29', 'ATO-11', 'deleting a passkey ends the sessions its codes started, as a first factor or a second step: refresh tokens refused, access tokens 401 within a second',
    (ctx, t) => lostPasskeyEndsSessions(ctx, t, FP)),

  // Cookies and CSRF (catalogue-cookies.ts).
  twin('FP-30', 'CK-04', 'login CSRF: a cross-site form starting a cookie-transport sign-in is refused with no code, and a code exchanged cross-site sets no cookie',
    async (ctx, t) => {
      assertNoCode(t, await loginCsrf(ctx, t, FP), 'the cross-site form')
      const a = await ctx.signup('fp-login-csrf-exchange')
      const code = codeOf(await FP.password(ctx.app, a.email, PASSWORD, { clientId: 'web', headers: CSRF }))
      const crossSite = await FP.exchange(ctx.app, code, { clientId: 'web', headers: { origin: EVIL_ORIGIN } })
      t.equal(crossSite.statusCode, 403, 'the exchange from a foreign origin is refused')
      t.equal(setCookies(crossSite).filter((c) => /refresh_token=[^;]/.test(c)).length, 0, 'and sets no refresh cookie')
    }),
  twin('FP-31', 'CK-05', 'the refresh cookie the code\'s exchange sets is HttpOnly, Secure, SameSite=Strict, Path=/auth, __Secure- prefixed',
    (ctx, t) => refreshCookieAttributes(ctx, t, FP)),

  // Hostile input (catalogue-input.ts, catalogue-canonical-forms.ts).
  twin('FP-32', 'IN-01', 'an oversized body (JSON or form) is 413, never parsed',
    async (ctx, t) => {
      const password = 'x'.repeat(200_000)
      const asJson = await raw(ctx.app, JSON.stringify({ client_id: 'mobile', username: uniqueEmail('big'), password }), 'application/json')
      t.equal(asJson.statusCode, 413, 'JSON: 413')
      const asForm = await raw(ctx.app, new URLSearchParams({ client_id: 'mobile', username: uniqueEmail('big'), password }).toString(), 'application/x-www-form-urlencoded')
      t.equal(asForm.statusCode, 413, 'form: 413')
    }),
  twin('FP-33', 'IN-03', 'prototype pollution through __proto__ keys (JSON and form) is refused and pollutes nothing',
    async (ctx, t) => {
      const pkce = pkcePair()
      const asJson = await raw(ctx.app, `{"client_id":"mobile","code_challenge":"${pkce.challenge}","code_challenge_method":"S256","username":"${ctx.victim.email}","password":"y","__proto__":{"polluted":true,"client_id":"web"}}`, 'application/json')
      assertNo5xx(t, asJson, 'JSON body')
      const asForm = await raw(ctx.app, `__proto__[polluted]=true&client_id=mobile&code_challenge=${pkce.challenge}&code_challenge_method=S256&username=x%40attack.test&password=y&constructor[prototype][polluted]=true`, 'application/x-www-form-urlencoded')
      assertNo5xx(t, asForm, 'form body')
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype not polluted')
    }),
  twin('FP-34', 'IN-04', 'prototype pollution through constructor.prototype keys is refused',
    async (ctx, t) => {
      const response = await raw(ctx.app, '{"client_id":"mobile","username":"a@attack.test","password":"p","constructor":{"prototype":{"isAdmin":true}}}', 'application/json')
      assertNo5xx(t, response, 'challenge')
      t.equal(({} as Record<string, unknown>).isAdmin, undefined)
    }),
  twin('FP-35', 'IN-06', 'unicode-confusable emails: fullwidth folds to the same account; Cyrillic, zero-width and combining never sign into it',
    async (ctx, t) => {
      const email = uniqueEmail('alice')
      const a = await ctx.signup('alice', { email })
      const fullwidth = email.replace('a', '\uFF41').replace('t', '\uFF54')
      const viaFullwidth = await FP.tokens(ctx.app, await FP.password(ctx.app, fullwidth, PASSWORD))
      t.equal(viaFullwidth.statusCode, 200, 'fullwidth spelling signs into the account (NFKC)')
      t.equal(users.claimsOf(json<Tokens>(viaFullwidth).access_token).sub, a.id)
      for (const [label, spoof] of [['Cyrillic a', email.replace('a', '\u0430')], ['zero-width space', email.replace('@', '\u200B@')], ['combining mark', email.replace('a', 'a\u0301')]] as const) {
        const login = await FP.password(ctx.app, spoof, PASSWORD)
        t.equal(login.statusCode, 400, `${label}: does not sign into the real account`)
        assertNoCode(t, login, label)
      }
    }),
  twin('FP-36', 'IN-07', 'operator objects and wrong JSON types are 4xx, never 500; a NUL never truncates a password',
    async (ctx, t) => {
      for (const payload of [{ username: { $gt: '' }, password: { $gt: '' } }, { username: [ctx.victim.email], password: PASSWORD }, { username: ctx.victim.email, password: true }, { username: 1, password: PASSWORD }]) {
        const response = await raw(ctx.app, JSON.stringify({ client_id: 'mobile', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', ...payload }), 'application/json')
        t.equal(response.statusCode, 400, `${JSON.stringify(payload).slice(0, 50)}: 400`)
        assertNoCode(t, response, 'operators')
      }
      const email = uniqueEmail('nul')
      const signup = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: 'pass\u0000word123' } })
      t.equal(signup.statusCode, 201, 'a password with a NUL is accepted')
      t.equal((await FP.password(ctx.app, email, 'pass\u0000zzzzzzzz')).statusCode, 400, 'the part after the NUL counts (no C-string truncation)')
      t.equal((await FP.password(ctx.app, email, 'pass')).statusCode, 400, 'the part before the NUL alone does not sign in')
      t.equal((await FP.password(ctx.app, email, 'pass\u0000word123')).statusCode, 200, 'the exact password does (a form\'s %00)')
      t.equal((await FP.password(ctx.app, email, 'pass\u0000word123', { encoding: 'json' })).statusCode, 200, 'and in JSON')
    }),
  twin('FP-37', 'IN-08', 'SQL injection in the username and password is treated as data',
    async (ctx, t) => {
      for (const username of ["' OR '1'='1' --@x.test", `${ctx.victim.email}' --`, "x@x.test'; DROP TABLE users; --"]) {
        const response = await FP.password(ctx.app, username, "' OR '1'='1")
        t.equal(response.statusCode, 400, `sign-in ${username.slice(0, 20)}: 400`)
        assertNoCode(t, response, username.slice(0, 20))
      }
      t.ok((await ctx.app.db.user.count()) > 0, 'users table intact')
    }),
  twin('FP-38', 'IN-09', 'duplicate form parameters at the challenge endpoint (username, client_id, code_challenge, auth_session) are refused',
    async (ctx, t) => {
      const pkce = pkcePair()
      const base = `code_challenge_method=S256&password=${encodeURIComponent(PASSWORD)}`
      const email = encodeURIComponent(ctx.victim.email)
      for (const [label, body] of [
        ['two usernames', `client_id=mobile&code_challenge=${pkce.challenge}&${base}&username=${email}&username=other%40x.test`],
        ['two client_ids', `client_id=mobile&client_id=web&code_challenge=${pkce.challenge}&${base}&username=${email}`],
        ['two code_challenges', `client_id=mobile&code_challenge=${pkce.challenge}&code_challenge=${pkcePair().challenge}&${base}&username=${email}`],
        ['two auth_sessions', `client_id=mobile&auth_session=mfa_${'A'.repeat(43)}&auth_session=mfa_${'B'.repeat(43)}&otp=123456`],
      ] as const) {
        const response = await raw(ctx.app, body, 'application/x-www-form-urlencoded')
        assertError(t, response, 400, 'invalid_request', label)
      }
    }),
  twin('FP-39', 'IN-10', 'content-type tricks never reach the handler unparsed: text/plain and unknown types are 415 and sign nobody in',
    async (ctx, t) => {
      const body = JSON.stringify({ client_id: 'mobile', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', username: ctx.victim.email, password: PASSWORD })
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'text/plain; application/json', 'application/jsonx', 'application/xml', 'multipart/form-data; boundary=x']) {
        const response = await raw(ctx.app, body, type)
        t.ok(response.statusCode >= 400 && response.statusCode < 500, `${JSON.stringify(type)}: ${response.statusCode}`)
        assertNoCode(t, response, type)
      }
      t.equal((await raw(ctx.app, body, 'text/plain')).statusCode, 415, 'text/plain at the challenge endpoint: 415')
    }),
  twin('FP-40', 'IN-11', 'an unknown client_id or a refused transport is a 4xx in the error shape, never 500',
    async (ctx, t) => {
      assertError(t, await FP.password(ctx.app, ctx.victim.email, PASSWORD, { clientId: 'nope' }), 401, 'invalid_client', 'unknown client')
      assertError(t, await FP.password(ctx.app, ctx.victim.email, PASSWORD, { clientId: 'web', headers: { ...CSRF, 'token-transport': 'body' } }), 400, 'invalid_request', 'web in body transport')
      assertError(t, await FP.password(ctx.app, ctx.victim.email, PASSWORD, { headers: { 'token-transport': 'carrier-pigeon' } }), 400, 'invalid_request', 'an unknown transport')
    }),
  twin('FP-41', 'IN-15', 'U+0000 in the username is 400 naming the character, never a database error',
    async (ctx, t) => {
      for (const encoding of ['json', 'form'] as const) {
        const response = await FP.password(ctx.app, `${ctx.victim.email}\u0000`, PASSWORD, { encoding })
        t.equal(response.statusCode, 400, `${encoding}: 400 (${response.body.slice(0, 100)})`)
        t.match(response.body, /U\+0000/, `${encoding}: the answer names the character`)
      }
    }),
  twin('FP-42', 'IN-17', 'a fullwidth @ (U+FF20) that NFKC makes a second @ signs into no account',
    async (ctx, t) => {
      const victim = await ctx.signup('fp-fwat')
      const [local, domain] = victim.email.split('@') as [string, string]
      assertInvalidGrant(t, await FP.password(ctx.app, `${local}\uFF20${domain}@evil.example`, PASSWORD), 'sign-in with it')
    }),
  twin('FP-43', 'IN-19', 'invisible and control characters (zero-width, bidi, BOM, soft hyphen, Hangul filler) make no visual twin of an account: signing in with one is invalid_grant',
    async (ctx, t) => {
      const victim = await ctx.signup('fp-twin')
      const [local, domain] = victim.email.split('@') as [string, string]
      for (const c of ['\u200B', '\u200C', '\u200D', '\u200E', '\u200F', '\u2060', '\u2062', '\u2064', '\uFEFF', '\u00AD', '\u202E', '\u3164', '\u034F', '\u0085']) {
        assertInvalidGrant(t, await FP.password(ctx.app, `${local.slice(0, 2)}${c}${local.slice(2)}@${domain}`, PASSWORD), `U+${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)
      }
    }),
  twin('FP-44', 'RT-12', 'credentials in the challenge endpoint\'s URL (query parameters, GET) are not accepted',
    async (ctx, t) => {
      const query = new URLSearchParams({ username: ctx.victim.email, password: PASSWORD, auth_session: `mfa_${'A'.repeat(43)}` }).toString()
      const post = await raw(ctx.app, new URLSearchParams({ client_id: 'mobile', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }).toString(), 'application/x-www-form-urlencoded', { url: `${CHALLENGE_ENDPOINT}?${query}` })
      assertError(t, post, 400, 'invalid_request', 'POST with the credentials in the query')
      assertNoCode(t, post, 'the query')
      const get = await ctx.app.inject({ method: 'GET', url: `${CHALLENGE_ENDPOINT}?client_id=mobile&${query}` })
      t.ok([404, 405].includes(get.statusCode), `GET: ${get.statusCode}`)
    }),
  twin('FP-45', 'HD-01', 'every answer of the challenge endpoint (code, insufficient_authorization, invalid_grant, invalid_session, invalid_client) forbids MIME sniffing, loading anything and framing',
    async (ctx, t) => {
      const user = await enrolled(ctx, 'fp-headers')
      const answers = [
        await FP.password(ctx.app, ctx.victim.email, PASSWORD),
        await FP.password(ctx.app, user.email, PASSWORD),
        await FP.password(ctx.app, user.email, 'a wrong passphrase'),
        await FP.secondStep(ctx.app, `mfa_${'A'.repeat(43)}`, { otp: '123456' }),
        await FP.password(ctx.app, user.email, PASSWORD, { clientId: 'nope' }),
      ]
      t.same(answers.map((r) => r.statusCode), [200, 403, 400, 400, 401], 'the five kinds of answer')
      for (const response of answers) {
        const label = `${response.statusCode} ${String(json(response).error ?? 'code')}`
        t.equal(response.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
        t.equal(response.headers['x-frame-options'], 'DENY', `${label}: X-Frame-Options`)
        const csp = String(response.headers['content-security-policy'])
        t.match(csp, /default-src 'none'/, `${label}: nothing may load`)
        t.match(csp, /frame-ancestors 'none'/, `${label}: never framed`)
      }
    }),
]

/** A row with no password-grant original: bcrypt's 72-byte limit, which the password grant shares but the catalogue never attacked. */
const truncation: AttackCase = {
  id: 'FP-46',
  title: 'bcrypt reads only 72 bytes: a password is never cut there, so an account\'s 72-byte password followed by anything signs nobody in, and says so like a wrong password',
  source: 'DESIGN §3.3 (8 to 72 UTF-8 bytes, never truncated); OWASP Password Storage Cheat Sheet (bcrypt\'s 72-byte input limit); CWE-1289; ASVS 5.0 V6.2.1',
  async run (ctx, t) {
    const password = `${'a'.repeat(70)}é` // 72 UTF-8 bytes
    t.equal(Buffer.byteLength(password), 72)
    const email = uniqueEmail('fp-72')
    t.equal((await users.signupRequest(ctx.app, { email, password })).statusCode, 201, 'a 72-byte password is accepted')
    t.equal((await users.signupRequest(ctx.app, { email: uniqueEmail('fp-73'), password: `${password}!` })).statusCode, 400, 'a 73-byte one is refused at sign-up (never set)')
    t.equal((await FP.password(ctx.app, email, password)).statusCode, 200, 'the exact 72 bytes sign in')
    const wrong = await FP.password(ctx.app, email, 'a wrong passphrase')
    for (const longer of [`${password}!`, `${password}${'b'.repeat(100)}`, `${password}é`]) {
      const answer = await FP.password(ctx.app, email, longer)
      assertInvalidGrant(t, answer, `${Buffer.byteLength(longer)} bytes beginning with the password`)
      t.equal(answer.body, wrong.body, `${Buffer.byteLength(longer)} bytes: answered like a wrong password`)
    }
    assertInvalidGrant(t, await FP.password(ctx.app, email, password.slice(0, -1)), 'its first 70 bytes')
  },
}

// ------------------------------------------------------------ the draft's security considerations

const DRAFT = 'draft-ietf-oauth-first-party-apps-04'

/** An enrolled user's first request, its auth_session and PKCE pair: a flow waiting for its second step. */
async function pendingFlow (ctx: AttackContext, email: string, options: SignInOptions = {}) {
  const { answer, pkce } = await startFlow(ctx.app, { username: email, password: PASSWORD }, options)
  const authSession = FP.stepTokenOf(answer)
  if (authSession === null) throw new Error(`expected insufficient_authorization: ${answer.statusCode} ${answer.body}`)
  return { authSession, pkce, answer }
}

const considerations: AttackCase[] = [
  {
    id: 'FP-47',
    title: 'first-party clients only: a third-party client, public or confidential with its secret, and a first-party client without the code grant get unauthorized_client, at a first request and at a step',
    source: `${DRAFT} §9.1 (first-party applications), §5 (the server MUST verify the first-partyness of the client), §1.1`,
    async run (ctx, t) {
      const owner = await ctx.signup('fp-3p-owner')
      const create = (metadata: Parameters<AttackContext['app']['clients']['create']>[0]) => ctx.app.clients.create(metadata, { id: owner.id })
      const publicThird = (await create({ client_name: 'Third-Party App', redirect_uris: ['https://third.example/cb'], token_endpoint_auth_method: 'none' })).client
      const confidential = await create({ client_name: 'Third-Party Server', redirect_uris: ['https://third-server.example/cb'], token_endpoint_auth_method: 'client_secret_post' })
      const noCodeGrant = await create({ client_name: 'First-Party Daemon', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post', first_party: true })
      const user = await enrolled(ctx, 'fp-3p-user')
      const { authenticator } = await holder(ctx, 'fp-3p-passkey')
      const attempts: [string, SignInOptions][] = [
        ['a public third-party client', { clientId: publicThird.id }],
        ['a confidential third-party client with its secret', { clientId: confidential.client.id, extra: { client_secret: confidential.secret } }],
        ['a first-party client without the authorization_code grant', { clientId: noCodeGrant.client.id, extra: { client_secret: noCodeGrant.secret } }],
      ]
      const { authSession } = await pendingFlow(ctx, user.email)
      await centreStep(ctx)
      const code = totpCode(user.secret, ctx.clock.now())
      for (const [label, options] of attempts) {
        const password = await FP.password(ctx.app, ctx.victim.email, PASSWORD, options)
        assertError(t, password, 400, 'unauthorized_client', `${label}: the password`)
        assertNoCode(t, password, label)
        const passkey = await FP.passkey(ctx.app, authenticator.get(await signInOptions(ctx.app)), options)
        assertError(t, passkey, 400, 'unauthorized_client', `${label}: a passkey`)
        const step = await FP.secondStep(ctx.app, authSession, { otp: code }, options)
        assertError(t, step, 400, 'unauthorized_client', `${label}: a first-party flow's auth_session`)
        assertNoCode(t, step, `${label}'s step`)
      }
      const own = await FP.secondStep(ctx.app, authSession, { otp: code })
      t.equal(own.statusCode, 200, `the flow's own client still finishes it: the refusals spent nothing (${own.body.slice(0, 120)})`)
    },
  },
  {
    id: 'FP-48',
    title: 'client authentication as at the token endpoint: a confidential first-party client without its secret, with a wrong one or by another method gets invalid_client at the first request, at a step and at the exchange; a public client cannot send a secret',
    source: `${DRAFT} §9.4 (client authentication), §4.1 (required at the challenge endpoint when required at the token endpoint); RFC 6749 §2.3.1`,
    async run (ctx, t) {
      const owner = await ctx.signup('fp-conf-owner')
      const { client, secret } = await ctx.app.clients.create({ client_name: 'First-Party Server App', redirect_uris: ['https://fp-server.example/cb'], token_endpoint_auth_method: 'client_secret_basic', first_party: true }, { id: owner.id })
      if (!secret) throw new Error('a confidential client without a secret')
      const authenticated = { clientId: client.id, headers: { authorization: basic(client.id, secret) } }
      const user = await ctx.signup('fp-conf-user')
      const refusals: [string, SignInOptions][] = [
        ['no secret', { clientId: client.id }],
        ['a wrong secret', { clientId: client.id, headers: { authorization: basic(client.id, `${secret}x`) } }],
        ['the secret by client_secret_post (registered: client_secret_basic)', { clientId: client.id, extra: { client_secret: secret } }],
        ['another client\'s id in the Authorization header', { clientId: client.id, headers: { authorization: basic('mobile', secret) } }],
      ]
      for (const [label, options] of refusals) {
        const answer = await FP.password(ctx.app, user.email, PASSWORD, options)
        t.ok([400, 401].includes(answer.statusCode), `${label}: refused (${answer.statusCode} ${answer.body.slice(0, 120)})`)
        t.ok(['invalid_client', 'invalid_request'].includes(String(json(answer).error)), `${label}: invalid_client (or invalid_request for two client ids)`)
        assertNoCode(t, answer, label)
      }
      assertError(t, await FP.password(ctx.app, user.email, PASSWORD, { clientId: 'mobile', extra: { client_secret: 'anything' } }), 401, 'invalid_client', 'a public client sending a secret')

      const code = codeOf(await FP.password(ctx.app, user.email, PASSWORD, authenticated))
      assertError(t, await FP.exchange(ctx.app, code, { clientId: client.id }), 401, 'invalid_client', 'the exchange without the secret')
      const exchanged = await FP.exchange(ctx.app, code, authenticated)
      t.equal(exchanged.statusCode, 200, `the exchange with it (${exchanged.body.slice(0, 120)})`)

      const withFactor = await enrolled(ctx, 'fp-conf-factor')
      const { authSession } = await pendingFlow(ctx, withFactor.email, authenticated)
      await centreStep(ctx)
      const otp = totpCode(withFactor.secret, ctx.clock.now())
      assertError(t, await FP.secondStep(ctx.app, authSession, { otp }, { clientId: client.id }), 401, 'invalid_client', 'a step without the secret')
      t.equal((await FP.secondStep(ctx.app, authSession, { otp }, authenticated)).statusCode, 200, 'the step with it')
    },
  },
  {
    id: 'FP-49',
    title: 'the auth_session is bound to its client, its transport and its PKCE challenge: another client, the cookie transport, or a step naming another code_challenge is refused, and the flow goes on unharmed',
    source: `${DRAFT} §9.6 (auth_session bound to the device), §5.3.1, §5.1 (a client_id that identifies another client MUST be rejected); DESIGN §3.16`,
    async run (ctx, t) {
      const user = await enrolled(ctx, 'fp-binding')
      const { authSession, pkce } = await pendingFlow(ctx, user.email)
      await centreStep(ctx)
      const otp = totpCode(user.secret, ctx.clock.now())
      const otherClient = await FP.secondStep(ctx.app, authSession, { otp }, { clientId: 'web', headers: CSRF })
      FP.assertStepTokenRefused(t, otherClient, 'another first-party client (web) naming it')
      assertNoCode(t, otherClient, 'another client')
      const otherTransport = await FP.secondStep(ctx.app, authSession, { otp }, { headers: { ...CSRF, 'token-transport': 'cookie' } })
      FP.assertStepTokenRefused(t, otherTransport, 'its client in cookie transport')
      const attacker = pkcePair()
      const otherChallenge = await FP.secondStep(ctx.app, authSession, { otp }, { extra: { code_challenge: attacker.challenge, code_challenge_method: 'S256' } })
      assertError(t, otherChallenge, 400, 'invalid_request', 'a step naming another code_challenge')
      assertNoCode(t, otherChallenge, 'another code_challenge')
      const repeated = await FP.secondStep(ctx.app, authSession, { otp }, { extra: { code_challenge: pkce.challenge, code_challenge_method: 'S256' } })
      t.equal(repeated.statusCode, 200, `the step repeating its own challenge gets the code: the refusals spent neither the auth_session nor the code (${repeated.body.slice(0, 120)})`)
      const exchanged = await FP.exchange(ctx.app, codeOf(repeated), { verifier: pkce.verifier })
      t.equal(exchanged.statusCode, 200, 'exchanged with the first request\'s verifier')
      t.equal(users.claimsOf(json<Tokens>(exchanged).access_token).sub, user.id)
    },
  },
  {
    id: 'FP-50',
    title: 'the auth_session lives 5 minutes and one flow: a flow ends at its code (then invalid_session), concurrent steps with different valid codes give one code, an expired, forged or password-grant token is invalid_session',
    source: `${DRAFT} §9.6.2 (lifetime at the server's discretion), §5.2.2.1 (invalid_session), §5.3.1; DESIGN §3.16 (a flow ends when it issues its code)`,
    async run (ctx, t) {
      const user = await enrolled(ctx, 'fp-session-life')
      for (const [label, value] of [['never issued', `mfa_${randomBytes(32).toString('base64url')}`], ['malformed', 'not-an-auth-session'], ['oversized', 'x'.repeat(128)]] as const) {
        const answer = await FP.secondStep(ctx.app, value, { otp: '123456' })
        FP.assertStepTokenRefused(t, answer, label)
      }
      if (ctx.config.passwordGrant) {
        const mfaToken = json<{ mfa_token?: string }>(await users.passwordGrant(ctx.app, user.email)).mfa_token
        FP.assertStepTokenRefused(t, await FP.secondStep(ctx.app, mfaToken ?? '', { recovery_code: user.recoveryCodes[0]! }), 'the password grant\'s mfa_token (no flow of this endpoint)')
      } else {
        t.comment('PASSWORD_GRANT disabled: no mfa_token to present')
      }

      const { authSession } = await pendingFlow(ctx, user.email)
      assertInvalidGrant(t, await FP.secondStep(ctx.app, authSession, { recovery_code: 'ZZZZ-ZZZZ-ZZZZ' }), 'a wrong recovery code: refused, the auth_session kept')
      t.equal((await FP.secondStep(ctx.app, authSession, { recovery_code: user.recoveryCodes[1]! })).statusCode, 200, 'the right one: the code')
      const after = await FP.secondStep(ctx.app, authSession, { recovery_code: user.recoveryCodes[2]! })
      FP.assertStepTokenRefused(t, after, 'the auth_session after its code, with another valid recovery code')
      assertNoCode(t, after, 'after the code')
      t.equal(await ctx.app.db.recoveryCode.count({ where: { userId: user.id } }), 9, 'and that code is not spent')

      const raced = await pendingFlow(ctx, user.email)
      const answers = await Promise.all(user.recoveryCodes.slice(2, 9).map((recovery) => FP.secondStep(ctx.app, raced.authSession, { recovery_code: recovery })))
      t.equal(answers.filter((answer) => answer.statusCode === 200).length, 1, 'seven concurrent steps with seven valid recovery codes: one code')
      t.equal(await ctx.app.db.recoveryCode.count({ where: { userId: user.id } }), 8, 'one recovery code spent')

      const late = await pendingFlow(ctx, user.email)
      await ctx.advance(301)
      FP.assertStepTokenRefused(t, await FP.secondStep(ctx.app, late.authSession, { recovery_code: user.recoveryCodes[9]! }), 'after 5 minutes')
    },
  },
  {
    id: 'FP-51',
    title: 'an auth_session ends only in its flow\'s PKCE-bound code: the token endpoint\'s mfa-otp grant (PASSWORD_GRANT=enabled) refuses it and opens no session without the verifier',
    source: `${DRAFT} §9.6 (replay of a captured auth_session), §5.3.1; RFC 7636 §1 (the code only for the holder of the verifier); DESIGN §3.16 (auth_session bound to the flow, the code to the first request's code_challenge)`,
    async run (ctx, t) {
      const enabled = await ctx.buildApp({ PASSWORD_GRANT: 'enabled' })
      try {
        const user = await enrolled(enabled, 'fp-cross-grant')
        const authSession = await FP.secondStepToken(enabled.app, user.email)
        await centreStep(enabled)
        const otp = totpCode(user.secret, enabled.clock.now())
        const before = await enabled.app.db.session.count({ where: { userId: user.id } })
        const viaGrant = await enabled.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: MFA_OTP, client_id: 'mobile', mfa_token: authSession, otp } })
        assertInvalidGrant(t, viaGrant, 'the mfa-otp grant with a challenge flow\'s auth_session')
        t.notOk('access_token' in json(viaGrant), 'no access token')
        t.equal(await enabled.app.db.session.count({ where: { userId: user.id } }), before, 'no session')
        if (viaGrant.statusCode !== 200) {
          t.equal((await FP.secondStep(enabled.app, authSession, { otp })).statusCode, 200, 'the flow still ends at its own endpoint, in a code')
        }
      } finally {
        await enabled.close()
        // The two instances share the clock, which the steps above moved: the catalogue's service syncs its revocation list.
        await ctx.advance(0)
      }
    },
  },
  {
    id: 'FP-52',
    title: 'guessing at one auth_session: wrong TOTP codes, recovery codes and passkey assertions count together, the fifth ends it, and then even the right code is invalid_session',
    source: `${DRAFT} §9.3 (credential stuffing: "SHOULD rate-limit requests from the same auth_session"); RFC 4226 §7.3; ASVS 5.0 V6.3.1`,
    async run (ctx, t) {
      const { account, authenticator } = await holder(ctx, 'fp-stuffing')
      const passkeySession = json<Tokens>(await FP.tokens(ctx.app, await FP.passkey(ctx.app, authenticator.get(await signInOptions(ctx.app)))))
      await centreStep(ctx)
      const { secret } = await enrolTotp(ctx.app, passkeySession.access_token, ctx.clock.now())
      await ctx.advance(30)
      await centreStep(ctx)
      const { authSession, answer } = await pendingFlow(ctx, account.email)
      t.same(json(answer).factors, ['otp', 'recovery_code', 'passkey'], 'three kinds of factor')
      const wrongOtp = totpCode(secret, ctx.clock.now()) === '000000' ? '000001' : '000000'
      const guesses: [string, () => Promise<Response>][] = [
        ['a wrong TOTP code', () => FP.secondStep(ctx.app, authSession, { otp: wrongOtp })],
        ['a wrong recovery code', () => FP.secondStep(ctx.app, authSession, { recovery_code: 'ZZZZ-ZZZZ-ZZZZ' })],
        ['an assertion over a challenge never issued', () => FP.secondStep(ctx.app, authSession, { credential: authenticator.get({ challenge: 'A'.repeat(43), rpId: 'auth.test' }) })],
        ['another wrong TOTP code', () => FP.secondStep(ctx.app, authSession, { otp: wrongOtp })],
        ['a fifth wrong recovery code', () => FP.secondStep(ctx.app, authSession, { recovery_code: 'YYYY-YYYY-YYYY' })],
      ]
      for (const [label, guess] of guesses) assertInvalidGrant(t, await guess(), label)
      const right = await FP.secondStep(ctx.app, authSession, { otp: totpCode(secret, ctx.clock.now()) })
      FP.assertStepTokenRefused(t, right, 'the right code after five failures')
      assertNoCode(t, right, 'the right code after five failures')
    },
  },
  {
    id: 'FP-53',
    title: 'phishing resistance of the passkey step: an assertion made on another origin, for another RP ID, or over another ceremony\'s challenge is refused; the genuine one ends the flow with amr hwk',
    source: `${DRAFT} §9.2 (phishing); W3C WebAuthn L3 §13.4.9, §7.2 (origin, RP ID and challenge checks)`,
    async run (ctx, t) {
      const { account, authenticator } = await holder(ctx, 'fp-phish')
      const { authSession } = await pendingFlow(ctx, account.email)
      const stepOptions = async () => {
        const options = await ctx.app.inject({ method: 'POST', url: '/auth/mfa/passkey-options', payload: { mfa_token: authSession } })
        if (options.statusCode !== 200) throw new Error(`passkey options: ${options.statusCode} ${options.body}`)
        return json<{ challenge: string; rpId: string }>(options)
      }
      for (const [label, make] of [
        ['an assertion made on https://evil.example', async () => authenticator.get(await stepOptions(), { origin: 'https://evil.example' })],
        ['an assertion made on a lookalike subdomain origin', async () => authenticator.get(await stepOptions(), { origin: 'http://auth.test.evil.example' })],
        ['an assertion for the RP ID evil.example', async () => authenticator.get(await stepOptions(), { rpId: 'evil.example' })],
        ['an assertion over a first-factor sign-in challenge, relayed', async () => authenticator.get(await signInOptions(ctx.app))],
      ] as const) {
        const answer = await FP.secondStep(ctx.app, authSession, { credential: await make() })
        assertInvalidGrant(t, answer, label)
        assertNoCode(t, answer, label)
      }
      const genuine = await FP.secondStep(ctx.app, authSession, { credential: authenticator.get(await stepOptions()) })
      t.equal(genuine.statusCode, 200, `the genuine assertion gets the code (${genuine.body.slice(0, 120)})`)
      const amr = users.claimsOf(json<Tokens>(await FP.tokens(ctx.app, genuine)).access_token).amr as string[]
      t.ok(amr.includes('pwd') && amr.includes('hwk'), `amr names the password and the key (${amr.join(' ')})`)
    },
  },
  {
    id: 'FP-54',
    title: 'the auth_session is opaque and unguessable: 256 random bits, new for every flow, answered no-store, stored only as a keyed hash',
    source: `${DRAFT} §5.3.1 (opaque, protected from inspection, at least 256 bits of entropy), §5.2.2 (Cache-Control: no-store), §9.6; DESIGN §3.16 (stored hashed)`,
    async run (ctx, t) {
      const user = await enrolled(ctx, 'fp-opaque')
      const first = await pendingFlow(ctx, user.email)
      const second = await pendingFlow(ctx, user.email)
      t.equal(first.answer.headers['cache-control'], 'no-store', 'insufficient_authorization is not cached')
      t.match(first.authSession, /^mfa_[A-Za-z0-9_-]{43}$/, 'a prefix and 43 base64url characters: 256 bits')
      t.not(first.authSession, second.authSession, 'each flow its own')
      const random = Buffer.from(first.authSession.slice(4), 'base64url')
      t.equal(random.length, 32)
      t.notOk(random.toString('latin1').includes(user.id) || random.toString('utf8').includes(user.email), 'it carries nothing readable of the account')
      const rows = await ctx.app.db.mfaToken.findMany({ where: { userId: user.id } })
      const stored = JSON.stringify(rows, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64url') : value))
      for (const value of [first.authSession, second.authSession]) {
        t.notOk(stored.includes(value.slice(4)), 'the raw value is not stored')
        t.notOk(stored.includes(createHash('sha256').update(value).digest('base64url')), 'nor its unkeyed SHA-256')
      }
    },
  },
  {
    id: 'FP-55',
    title: 'the code is bound to the first request\'s PKCE challenge and its client: another verifier or none fails and spends it, another client fails; a second use revokes the session the first one started',
    source: `${DRAFT} §6, §9.5.1 (binding the code end to end); RFC 7636 §4.6; RFC 6749 §4.1.2 (a code used twice); RFC 9700 §4.5`,
    async run (ctx, t) {
      const user = await ctx.signup('fp-code-pkce')
      const fresh = async () => codeOf(await FP.password(ctx.app, user.email, PASSWORD))
      const wrongVerifier = await fresh()
      assertInvalidGrant(t, await FP.exchange(ctx.app, wrongVerifier, { verifier: pkcePair().verifier }), 'another verifier')
      assertInvalidGrant(t, await FP.exchange(ctx.app, wrongVerifier), 'then the right one: the code was spent')
      const noVerifier = await fresh()
      const without = await ctx.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'authorization_code', client_id: 'mobile', code: noVerifier } })
      t.equal(without.statusCode, 400, `no code_verifier: 400 (${without.body.slice(0, 120)})`)
      assertInvalidGrant(t, await FP.exchange(ctx.app, noVerifier), 'then the right one: the code was spent')
      const otherClient = await fresh()
      assertInvalidGrant(t, await FP.exchange(ctx.app, otherClient, { clientId: 'web', headers: CSRF }), 'another client with the right verifier')
      const used = await fresh()
      const first = await FP.exchange(ctx.app, used)
      t.equal(first.statusCode, 200, 'the exchange')
      const tokens = json<Tokens>(first)
      assertInvalidGrant(t, await FP.exchange(ctx.app, used), 'a second use')
      t.equal((await refusedWithinASecond(ctx, tokens.access_token)).statusCode, 401, 'the first use\'s access token is refused')
      assertInvalidGrant(t, await ctx.refresh(tokens.refresh_token), 'and its refresh token')
    },
  },
  {
    id: 'FP-56',
    title: 'no redirect_uri: a code of the challenge endpoint exchanged with any redirect_uri is refused (and spent); without one it is exchanged',
    source: `${DRAFT} §6 (the token request carries no redirect_uri); OAuth 2.1 §4.1.3; RFC 9700 §4.1`,
    async run (ctx, t) {
      const user = await ctx.signup('fp-no-redirect')
      for (const redirectUri of ['https://evil.example/cb', 'http://127.0.0.1/cb', `${ctx.config.issuer}/oauth/callback`]) {
        const code = codeOf(await FP.password(ctx.app, user.email, PASSWORD))
        assertInvalidGrant(t, await FP.exchange(ctx.app, code, { extra: { redirect_uri: redirectUri } }), `redirect_uri ${redirectUri}`)
        assertInvalidGrant(t, await FP.exchange(ctx.app, code), `${redirectUri}: the code was spent`)
      }
      t.equal((await FP.exchange(ctx.app, codeOf(await FP.password(ctx.app, user.email, PASSWORD)))).statusCode, 200, 'without redirect_uri: exchanged')
    },
  },
  {
    id: 'FP-57',
    title: 'PASSWORD_GRANT=disabled: the password, mfa-otp and passkey grants are unsupported_grant_type however sent, the metadata lists none of them but the challenge endpoint, and sign-in works there',
    source: 'RFC 9700 §2.4 (the password grant MUST NOT be used); OAuth 2.1 §10 (removed); ASVS 5.0 V10.4.4; draft-ietf-oauth-first-party-apps-04 §8 (authorization_challenge_endpoint); DESIGN §3.4, §3.16',
    async run (ctx, t) {
      const off = await ctx.buildApp({ PASSWORD_GRANT: 'disabled' })
      try {
        const { app } = off
        const plain = await users.signup(app, { label: 'fp-no-grant' })
        for (const encoding of ['json', 'form'] as const) {
          const answer = await app.inject({
            method: 'POST',
            url: '/auth/token',
            headers: { 'content-type': encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded' },
            payload: encoding === 'json'
              ? JSON.stringify({ grant_type: 'password', client_id: 'mobile', username: plain.email, password: PASSWORD })
              : new URLSearchParams({ grant_type: 'password', client_id: 'mobile', username: plain.email, password: PASSWORD }).toString(),
          })
          assertError(t, answer, 400, 'unsupported_grant_type', `the password grant (${encoding}), right credentials`)
        }
        const user = await enrolled(off, 'fp-no-grant-factor')
        const authSession = await FP.secondStepToken(app, user.email)
        await centreStep(off)
        const otp = totpCode(user.secret, off.clock.now())
        assertError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: MFA_OTP, client_id: 'mobile', mfa_token: authSession, otp } }), 400, 'unsupported_grant_type', 'the mfa-otp grant with a live auth_session')
        const authenticator = new SoftAuthenticator(TEST_ORIGIN)
        await registerPasskey(app, plain.access_token, authenticator)
        assertError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: PASSKEY_GRANT, credential: authenticator.get(await signInOptions(app)) } }), 400, 'unsupported_grant_type', 'the passkey grant with a genuine assertion')
        for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
          const metadata = json<{ grant_types_supported: string[]; authorization_challenge_endpoint?: string }>(await app.inject({ method: 'GET', url: path }))
          t.same(metadata.grant_types_supported.filter((type) => ['password', MFA_OTP, PASSKEY_GRANT].includes(type)), [], `${path}: no grant of the password family (${metadata.grant_types_supported.join(' ')})`)
          t.equal(metadata.authorization_challenge_endpoint, `${off.config.issuer}${CHALLENGE_ENDPOINT}`, `${path}: the challenge endpoint`)
        }
        t.equal((await FP.secondStep(app, authSession, { otp })).statusCode, 200, 'the auth_session the grant refused still ends in a code here')
        t.type((await signInTokens(FP, app, (await users.signup(app, { label: 'fp-no-grant-plain' })).email)).access_token, 'string', 'a password sign-in through the challenge endpoint')
      } finally {
        await off.close()
        await ctx.advance(0)
      }
    },
  },
]

export const firstPartyCases: AttackCase[] = [...twins, truncation, ...considerations]
