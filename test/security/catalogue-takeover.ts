import type { Test } from 'tap'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../src/shared/authentication-methods.js'
import { json } from '../helpers/app.js'
import { advance, centreStep, enrolTotp, MFA_OTP, mfaOtpGrant, mfaToken, totpCode } from '../helpers/totp.js'
import * as users from '../helpers/users.js'
import { registerPasskey, signInOptions, SoftAuthenticator, TEST_ORIGIN } from '../helpers/webauthn.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail, type AttackContext, type Mail, type Response, type Tokens } from './context.js'
import { assertInvalidGrant, PASSWORD_GRANT_PATH, type SignInPath } from './attack-helpers.js'

/**
 * Account takeover (issue 24), each case run as the attacker would run it:
 * an intruder who knows the password races the owner with a pending address
 * change; a password, alone, adds a second way in beside a factor; someone
 * who signed up first with the victim's address plants credentials that
 * outlive the victim's reset (account pre-hijacking, Sudhodanan and Paverd,
 * USENIX Security 2022); a stale token enrols an authenticator; links that
 * outlive what they were for; a lost passkey's sessions; and the notices
 * the owner gets of each new way into the account.
 *
 * Mail is read from `ctx.mail`, as its recipient reads it: the outbox in the
 * catalogue (attack-catalogue.test.ts), a real SMTP server in
 * takeover.test.ts, which runs these same cases against a service that
 * delivers. The links' tokens come from the messages, never from the database.
 */

const STEP_UP = `${GRANT_TYPE_PREFIX}step-up`
const OWNER_PASSWORD = 'the rightful owner passphrase'

/** What each message's subject says (src/templates/email). */
const SUBJECT = {
  verify: 'confirm your email address',
  changeLink: 'confirm your new email address',
  changeNotice: 'a change of your email address was requested',
  reset: 'reset your password',
  passwordChanged: 'your password was changed',
  added: 'a new way into your account was added',
} as const

type App = AttackContext['app']

function linkTokenOf (mail: Mail): string {
  if (mail.token === null) throw new Error(`the message "${mail.subject}" to ${mail.to} carries no link: ${mail.text}`)
  return mail.token
}

function assertRefusedLink (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 160)})`)
  t.equal(json(response).code, 'invalid_link_token', `${label}: invalid_link_token`)
}

/** RFC 9470: 401 insufficient_user_authentication; with `acr`, the challenge names the mfa level. */
function assertInsufficient (t: Test, response: Response, label: string, options: { acr?: boolean; maxAge?: boolean } = {}) {
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 160)})`)
  t.equal(json(response).code, 'insufficient_user_authentication', `${label}: insufficient_user_authentication`)
  const challenge = String(response.headers['www-authenticate'] ?? '')
  if (options.acr) t.match(challenge, `acr_values="${ACR_MFA}"`, `${label}: the challenge asks for the mfa level`)
  if (options.maxAge) t.match(challenge, /max_age=\d+/, `${label}: the challenge names max_age`)
}

const verifyLink = (app: App, token: string) => app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })
const confirmReset = (app: App, token: string, newPassword = OWNER_PASSWORD) =>
  app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token, newPassword } })
const removeListed = (app: App, token: string) => app.inject({ method: 'POST', url: '/auth/credential-removal', payload: { token } })
const withApiKey = (ctx: AttackContext, key: string) => ctx.me(undefined, { 'x-api-key': key })
const addressOf = async (ctx: AttackContext, userId: string) => (await ctx.app.db.user.findUniqueOrThrow({ where: { id: userId }, select: { email: true } })).email

/** POST /auth/password-reset as anyone can, then the link from the address's mailbox. */
async function mailedResetLink (ctx: AttackContext, email: string): Promise<string> {
  const asked = await ctx.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email } })
  if (asked.statusCode !== 202) throw new Error(`password reset: ${asked.statusCode} ${asked.body}`)
  return linkTokenOf(await ctx.mail.latest(email, SUBJECT.reset))
}

/**
 * The intruder, who knows the owner's password, signs in and asks to move
 * the account to the intruder's own address: the owner's account, the
 * intruder's session, and the confirmation link the intruder's mailbox got.
 */
async function intruderAsksAddressChange (ctx: AttackContext, label: string) {
  const owner = await ctx.signup(label)
  const intruder = await ctx.login(owner.email)
  const intruderAddress = uniqueEmail(`${label}-intruder`)
  const asked = await users.injectAs(ctx.app, intruder.access_token, 'POST', '/users/me/email', { newEmail: intruderAddress, currentPassword: PASSWORD })
  if (asked.statusCode !== 202) throw new Error(`address change: ${asked.statusCode} ${asked.body}`)
  const link = linkTokenOf(await ctx.mail.latest(intruderAddress, SUBJECT.changeLink))
  return { owner, intruder, intruderAddress, link }
}

/** Polls GET /users/me with the token for up to a second (DESIGN §3.5.7) until it is refused; the last answer. */
export async function refusedWithinASecond (ctx: AttackContext, accessToken: string): Promise<Response> {
  const deadline = Date.now() + 1000
  for (;;) {
    const response = await ctx.bearer(accessToken)
    if (response.statusCode !== 200 || Date.now() >= deadline) return response
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A passkey sign-in (the first factor) through `path` (the passkey grant unless given), answered as it ends: its tokens, or the refusal. */
async function passkeySignIn (app: App, authenticator: SoftAuthenticator, path: SignInPath = PASSWORD_GRANT_PATH): Promise<Response> {
  return path.tokens(app, await path.passkey(app, authenticator.get(await signInOptions(app))))
}

/**
 * A password login whose second step is a passkey, through `path`: the
 * password grant's mfa_required (or the challenge endpoint's
 * insufficient_authorization), POST /auth/mfa/passkey-options with its
 * token, and the second step with the assertion, taken to tokens, whose
 * answer this is; or the answer of the step that did not answer as it should.
 */
async function passwordThenPasskey (app: App, email: string, authenticator: SoftAuthenticator, path: SignInPath = PASSWORD_GRANT_PATH): Promise<Response> {
  const first = await path.password(app, email, PASSWORD)
  const token = path.stepTokenOf(first)
  if (token === null) return first
  const options = await app.inject({ method: 'POST', url: '/auth/mfa/passkey-options', payload: { mfa_token: token } })
  if (options.statusCode !== 200) return options
  return path.tokens(app, await path.secondStep(app, token, { credential: authenticator.get(json<{ challenge: string; rpId: string }>(options)) }))
}

/** ATO-11: deleting a passkey ends the sessions it signed in to through `path`, as a first factor or a second step. */
export async function lostPasskeyEndsSessions (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await ctx.signup('ato-lost-passkey')
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  const passkey = await registerPasskey(ctx.app, user.access_token, authenticator, 'lost phone')
  const firstFactor = await passkeySignIn(ctx.app, authenticator, path)
  t.equal(firstFactor.statusCode, 200, 'a session signed in with the passkey')
  const secondStep = await passwordThenPasskey(ctx.app, user.email, authenticator, path)
  t.equal(secondStep.statusCode, 200, `a session of the password and the passkey as second step (${secondStep.body.slice(0, 160)})`)
  const sessions = [['first-factor', firstFactor], ['second-step', secondStep]] as const
  const opened = sessions.filter(([, response]) => response.statusCode === 200)
  if (secondStep.statusCode === 200) t.equal(users.claimsOf(json<Tokens>(secondStep).access_token).acr, ACR_MFA, 'an mfa session')
  const deleted = await users.injectAs(ctx.app, user.access_token, 'DELETE', `/users/me/passkeys/${passkey.id}`)
  t.equal(deleted.statusCode, 204, 'the owner deletes the passkey from another session')
  for (const [label, response] of opened) {
    const tokens = json<Tokens>(response)
    t.equal((await refusedWithinASecond(ctx, tokens.access_token)).statusCode, 401, `the ${label} session's access token`)
    assertInvalidGrant(t, await users.refresh(ctx.app, tokens.refresh_token), `the ${label} session's refresh token`)
  }
  t.equal((await ctx.bearer(user.access_token)).statusCode, 200, 'a session the passkey did not open stays')
}

export const takeoverCases: AttackCase[] = [
  // ------------------------------------------------------------ a pending address change against the owner
  {
    id: 'ATO-01',
    title: 'an intruder\'s pending address change dies when the owner, warned by the notice, asks for a password reset and completes it',
    source: 'Sudhodanan & Paverd, "Pre-hijacked accounts", USENIX Security 2022 (unexpired email change); OWASP Forgot Password Cheat Sheet; ASVS 5.0 V6.4, V6.3.7; issue 24',
    async run (ctx, t) {
      const { owner, intruder, intruderAddress, link } = await intruderAsksAddressChange(ctx, 'ato-race-reset')
      const notice = await ctx.mail.latest(owner.email, SUBJECT.changeNotice)
      t.match(notice.text, intruderAddress, 'the owner is told the address it would move to')
      t.match(notice.text, /Reset it now/, 'and to reset the password')
      t.match(notice.text, /asking for the reset already cancels this change/, 'and that asking for the reset cancels the change')

      const resetLink = await mailedResetLink(ctx, owner.email)
      assertRefusedLink(t, await verifyLink(ctx.app, link), 'the intruder confirms once the owner asked for a reset')
      t.equal((await confirmReset(ctx.app, resetLink)).statusCode, 204, 'the owner sets a new password')
      assertRefusedLink(t, await verifyLink(ctx.app, link), 'the intruder confirms after the reset')

      t.equal(await addressOf(ctx, owner.id), owner.email, 'the address stays the owner\'s')
      t.equal((await users.passwordGrant(ctx.app, owner.email, { password: OWNER_PASSWORD })).statusCode, 200, 'the owner signs in at their own address')
      assertInvalidGrant(t, await users.passwordGrant(ctx.app, intruderAddress, { password: OWNER_PASSWORD }), 'nobody signs in at the intruder\'s address')
      assertInvalidGrant(t, await users.refresh(ctx.app, intruder.refresh_token), 'the intruder\'s session ended with the reset')
      assertInvalidGrant(t, await users.passwordGrant(ctx.app, owner.email), 'the password the intruder knew no longer works')
    },
  },
  {
    id: 'ATO-02',
    title: 'an intruder\'s pending address change dies with the owner\'s password change, an admin\'s disabling of the account, and an admin\'s reset',
    source: 'Sudhodanan & Paverd, "Pre-hijacked accounts", USENIX Security 2022 (unexpired email change); ASVS 5.0 V7.4.2, V7.4.3, V6.4.6; issue 24',
    async run (ctx, t) {
      // The owner changes the password from their own session.
      const changed = await intruderAsksAddressChange(ctx, 'ato-race-change')
      const change = await users.injectAs(ctx.app, changed.owner.access_token, 'POST', '/users/me/password', { currentPassword: PASSWORD, newPassword: OWNER_PASSWORD })
      t.equal(change.statusCode, 204, 'the owner changes the password')
      assertRefusedLink(t, await verifyLink(ctx.app, changed.link), 'after the owner\'s password change')
      t.equal(await addressOf(ctx, changed.owner.id), changed.owner.email, 'the address stays the owner\'s')

      const admin = await users.signupAdmin(ctx.app, { label: 'ato-race-admin' })
      // An admin disables the account; enabling it again does not bring the link back.
      const disabled = await intruderAsksAddressChange(ctx, 'ato-race-disable')
      const patch = (body: Record<string, unknown>) => users.injectAs(ctx.app, admin.access_token, 'PATCH', `/admin/users/${disabled.owner.id}`, body)
      t.equal((await patch({ disabled: true })).statusCode, 200, 'the admin disables the account')
      assertRefusedLink(t, await verifyLink(ctx.app, disabled.link), 'while the account is disabled')
      t.equal((await patch({ disabled: false })).statusCode, 200, 'and enables it again')
      assertRefusedLink(t, await verifyLink(ctx.app, disabled.link), 'after the account is enabled again: the link was voided, not paused')
      t.equal(await addressOf(ctx, disabled.owner.id), disabled.owner.email, 'the address stays the owner\'s')

      // An admin sends the owner a reset link: that alone voids the pending change.
      const reset = await intruderAsksAddressChange(ctx, 'ato-race-admin-reset')
      t.equal((await users.injectAs(ctx.app, admin.access_token, 'POST', `/admin/users/${reset.owner.id}/password-reset`)).statusCode, 202, 'the admin sends a reset link')
      assertRefusedLink(t, await verifyLink(ctx.app, reset.link), 'after the admin\'s reset, before the owner even used it')
      t.equal(await addressOf(ctx, reset.owner.id), reset.owner.email, 'the address stays the owner\'s')
      t.type(linkTokenOf(await ctx.mail.latest(reset.owner.email, SUBJECT.reset)), 'string', 'the owner got the admin\'s reset link')
    },
  },
  {
    id: 'ATO-03',
    title: 'an address-change confirmation re-checks the password it was asked with: a password changed by a path that voids no link still refuses it',
    source: 'ASVS 5.0 V7.5.1 (re-authentication before changing the address), V6.4; Sudhodanan & Paverd, "Pre-hijacked accounts", USENIX Security 2022 (unexpired email change); issue 24',
    async run (ctx, t) {
      const { owner, link } = await intruderAsksAddressChange(ctx, 'ato-recheck')
      // A new password straight in the database: no code path of the service voided the link.
      const passwordHash = await ctx.app.passwordHasher.hash(OWNER_PASSWORD)
      await ctx.app.db.user.update({ where: { id: owner.id }, data: { passwordHash } })
      t.equal(await ctx.app.db.accountToken.count({ where: { userId: owner.id, purpose: 'email_change', usedAt: null } }), 1, 'the link is still stored')
      const refused = await verifyLink(ctx.app, link)
      assertRefusedLink(t, refused, 'the confirmation')
      t.match(json(refused).message, /password changed/, 'because the password changed')
      t.equal(await addressOf(ctx, owner.id), owner.email, 'the address stays the owner\'s')

      // Control: with the password unchanged, the same flow moves the address.
      const control = await intruderAsksAddressChange(ctx, 'ato-recheck-control')
      const moved = await verifyLink(ctx.app, control.link)
      t.equal(moved.statusCode, 200, `control: the confirmation works (${moved.body.slice(0, 120)})`)
      t.equal(await addressOf(ctx, control.owner.id), control.intruderAddress, 'control: the address moved')
    },
  },

  // ------------------------------------------------------------ a password alone never adds a second way in
  {
    id: 'ATO-04',
    title: 'REQUIRE_MFA_FOR_ADMINS: an admin whose one factor is a passkey must prove it; a password-only session adds no factor and reaches no admin route',
    source: 'ASVS 5.0 V6.3.3 (multi-factor), V6.3.4 (the same strength on every pathway), V6.4; RFC 9470 §3 (acr_values); W3C WebAuthn L3 §7.2; issue 24',
    async run (ctx, t) {
      const strict = await ctx.buildApp({ REQUIRE_MFA_FOR_ADMINS: 'true' })
      try {
        const { app } = strict
        const account = await users.signup(app, { label: 'ato-passkey-admin' })
        await app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
        await app.revocations.sync()
        // Signed in before the admin has any factor: a password-only session.
        const passwordOnly = await users.login(app, account.email)
        const authenticator = new SoftAuthenticator(TEST_ORIGIN)
        await registerPasskey(app, passwordOnly.access_token, authenticator, 'admin key')
        t.pass('an admin with no factor at all enrols one (a passkey) from a password session')

        assertInsufficient(t, await users.injectAs(app, passwordOnly.access_token, 'POST', '/users/me/passkeys/options'), 'the password session asks to register a second passkey', { acr: true })
        assertInsufficient(t, await users.injectAs(app, passwordOnly.access_token, 'POST', '/users/me/mfa/totp'), 'the password session asks to enrol TOTP', { acr: true })
        assertInsufficient(t, await users.injectAs(app, passwordOnly.access_token, 'GET', '/admin/users'), 'the password session reads the admin API', { acr: true })
        t.equal(await app.db.passkey.count({ where: { userId: account.id } }), 1, 'one passkey, the first')

        const sessionsBefore = await app.db.session.count({ where: { userId: account.id } })
        const first = await users.passwordGrant(app, account.email)
        const body = json<{ error?: string; mfa_token?: string; factors?: string[] }>(first)
        t.equal(first.statusCode, 400, `the password grant answers 400 (${first.body.slice(0, 160)})`)
        t.equal(body.error, 'mfa_required', 'mfa_required')
        t.same(body.factors, ['passkey'], 'naming the passkey')
        t.equal(first.cookies.length, 0, 'no cookie')
        t.equal(await app.db.session.count({ where: { userId: account.id } }), sessionsBefore, 'and no session')
        // The second step with the passkey (only if the first step answered as it should).
        if (body.mfa_token !== undefined) {
          const options = await app.inject({ method: 'POST', url: '/auth/mfa/passkey-options', payload: { mfa_token: body.mfa_token } })
          t.equal(options.statusCode, 200, `POST /auth/mfa/passkey-options (${options.body.slice(0, 120)})`)
          t.equal(json<{ allowCredentials?: unknown[] }>(options).allowCredentials?.length, 1, 'offering the admin\'s passkey')
          const answer = await app.inject({
            method: 'POST',
            url: '/auth/token',
            payload: { grant_type: MFA_OTP, mfa_token: body.mfa_token, credential: authenticator.get(json<{ challenge: string; rpId: string }>(options)) },
          })
          t.equal(answer.statusCode, 200, `the mfa-otp grant with the mfa_token and the assertion (${answer.body.slice(0, 120)})`)
          const mfa = json<Tokens>(answer)
          const claims = users.claimsOf(mfa.access_token)
          t.equal(claims.acr, ACR_MFA, 'the session is mfa')
          t.ok((claims.amr as string[]).includes('pwd') && (claims.amr as string[]).includes('hwk'), `amr: the password and the key (${String(claims.amr)})`)
          t.equal((await users.injectAs(app, mfa.access_token, 'GET', '/admin/users?limit=1')).statusCode, 200, 'it reaches the admin API')
        }

        // Control: the password session steps up with the passkey, and then may.
        const stepUpOptions = await users.injectAs(app, passwordOnly.access_token, 'POST', '/users/me/passkeys/step-up-options')
        t.equal(stepUpOptions.statusCode, 200, 'step-up options for the password session')
        const stepped = await app.inject({
          method: 'POST',
          url: '/auth/token',
          payload: { grant_type: STEP_UP, refresh_token: passwordOnly.refresh_token, credential: authenticator.get(json<{ challenge: string; rpId: string }>(stepUpOptions)) },
        })
        t.equal(stepped.statusCode, 200, `the step-up with the passkey (${stepped.body.slice(0, 120)})`)
        const raised = json<Tokens>(stepped).access_token
        t.equal(users.claimsOf(raised).acr, ACR_MFA, 'the stepped-up token is mfa')
        t.equal(users.sidOf(raised), passwordOnly.sessionId, 'in the same session')
        t.equal((await users.injectAs(app, raised, 'GET', '/admin/users?limit=1')).statusCode, 200, 'it reaches the admin API')
        t.equal((await users.injectAs(app, raised, 'POST', '/users/me/mfa/totp')).statusCode, 200, 'and may start a TOTP enrolment')
      } finally {
        await strict.close()
      }
    },
  },
  {
    id: 'ATO-05',
    title: 'with a password alone nobody adds a passkey, an authenticator or an API key to an account that holds a factor; a step-up with the factor does',
    source: 'ASVS 5.0 V6.4 (factor lifecycle), V7.5.1 (re-authentication before changing MFA configuration), V6.3.4; RFC 9470 §3; issue 24',
    async run (ctx, t) {
      const holder = await ctx.signup('ato-passkey-holder')
      const authenticator = new SoftAuthenticator(TEST_ORIGIN)
      await registerPasskey(ctx.app, holder.access_token, authenticator, 'own key')
      // The sign-up's session proved the password only (a stolen one, or the owner's from before the passkey).
      const attempts = [
        ['POST', '/users/me/passkeys/options', undefined],
        ['POST', '/users/me/mfa/totp', undefined],
        ['POST', '/api-keys', { name: 'backdoor', scopes: ['profile'] }],
      ] as const
      for (const [method, url, payload] of attempts) {
        assertInsufficient(t, await users.injectAs(ctx.app, holder.access_token, method, url, payload && { ...payload }), `passkey holder, password session: ${method} ${url}`, { acr: true })
      }
      t.equal(await ctx.app.db.passkey.count({ where: { userId: holder.id } }), 1, 'no second passkey')
      t.equal(await ctx.app.db.apiKey.count({ where: { userId: holder.id } }), 0, 'no API key')
      const again = json<{ error: string; factors: string[] }>(await users.passwordGrant(ctx.app, holder.email))
      t.same([again.error, again.factors], ['mfa_required', ['passkey']], 'a new password login gets mfa_required, not a password-only session')

      const totpHolder = await ctx.signup('ato-totp-holder')
      await users.markAddressVerified(ctx.app, totpHolder.access_token)
      await centreStep(ctx)
      await enrolTotp(ctx.app, totpHolder.access_token, ctx.clock.now())
      assertInsufficient(t, await users.injectAs(ctx.app, totpHolder.access_token, 'POST', '/users/me/passkeys/options'), 'TOTP holder, password session: a passkey', { acr: true })
      assertInsufficient(t, await users.injectAs(ctx.app, totpHolder.access_token, 'POST', '/api-keys', { name: 'backdoor', scopes: ['profile'] }), 'TOTP holder, password session: an API key', { acr: true })

      // Control: the same session steps up with its passkey and then adds a second one.
      const options = json<{ challenge: string; rpId: string }>(await users.injectAs(ctx.app, holder.access_token, 'POST', '/users/me/passkeys/step-up-options'))
      const stepped = await ctx.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: STEP_UP, refresh_token: holder.refresh_token, credential: authenticator.get(options) } })
      t.equal(stepped.statusCode, 200, `control: the step-up with the passkey (${stepped.body.slice(0, 120)})`)
      await registerPasskey(ctx.app, json<Tokens>(stepped).access_token, new SoftAuthenticator(TEST_ORIGIN), 'second key')
      t.equal(await ctx.app.db.passkey.count({ where: { userId: holder.id } }), 2, 'control: after the step-up, the second passkey is added')
    },
  },

  // ------------------------------------------------------------ pre-hijacking
  {
    id: 'ATO-06',
    title: 'pre-hijacking: an account signed up with someone else\'s unverified address cannot add a passkey or an API key',
    source: 'Sudhodanan & Paverd, "Pre-hijacked accounts", USENIX Security 2022 (trojan identifier); ASVS 5.0 V6.4; issue 24',
    async run (ctx, t) {
      const planter = await ctx.signup('ato-unverified', { email: uniqueEmail('ato-victim-address') })
      const refused = (response: Response, label: string) => {
        t.equal(response.statusCode, 403, `${label}: 403 (${response.body.slice(0, 160)})`)
        t.equal(json(response).code, 'email_verification_required', `${label}: email_verification_required`)
      }
      refused(await users.injectAs(ctx.app, planter.access_token, 'POST', '/users/me/passkeys/options'), 'passkey options')
      const forged = new SoftAuthenticator(TEST_ORIGIN).create({ challenge: 'A'.repeat(43), rp: { id: 'auth.test' }, user: { id: 'AAAA' } })
      refused(await users.injectAs(ctx.app, planter.access_token, 'POST', '/users/me/passkeys', { response: forged }), 'a passkey registration')
      refused(await users.injectAs(ctx.app, planter.access_token, 'POST', '/api-keys', { name: 'planted', scopes: ['profile'] }), 'an API key')
      t.equal(await ctx.app.db.passkey.count({ where: { userId: planter.id } }), 0, 'no passkey stored')
      t.equal(await ctx.app.db.apiKey.count({ where: { userId: planter.id } }), 0, 'no API key stored')
    },
  },
  {
    id: 'ATO-07',
    title: 'pre-hijacking: the address\'s owner takes the account over by a reset, and every passkey, authenticator, recovery code, API key, session and link planted before is gone',
    source: 'Sudhodanan & Paverd, "Pre-hijacked accounts", USENIX Security 2022 (trojan identifier, unexpired session, unexpired email change); OWASP Forgot Password Cheat Sheet; ASVS 5.0 V6.4, V7.4.3; issue 24',
    async run (ctx, t) {
      const victimAddress = uniqueEmail('ato-prehijack')
      const planter = await ctx.signup('ato-planter', { email: victimAddress })
      // A planter who got them in anyway (data from before the verified-address rule): verified for the moment, then unverified again.
      await users.markAddressVerified(ctx.app, planter.access_token)
      const key = await users.createApiKey(ctx.app, planter.access_token, { name: 'planted', scopes: ['profile'] })
      const authenticator = new SoftAuthenticator(TEST_ORIGIN)
      await registerPasskey(ctx.app, planter.access_token, authenticator, 'planted')
      const passkeySession = json<Tokens>(await passkeySignIn(ctx.app, authenticator))
      await centreStep(ctx)
      await enrolTotp(ctx.app, passkeySession.access_token, ctx.clock.now())
      await ctx.app.db.user.update({ where: { id: planter.id }, data: { emailVerifiedAt: null } })
      const planterAddress = uniqueEmail('ato-planter-mailbox')
      t.equal((await users.injectAs(ctx.app, planter.access_token, 'POST', '/users/me/email', { newEmail: planterAddress, currentPassword: PASSWORD })).statusCode, 202, 'the planter leaves an address change pending')
      const changeLink = linkTokenOf(await ctx.mail.latest(planterAddress, SUBJECT.changeLink))

      const taken = await users.signupRequest(ctx.app, { email: victimAddress, password: OWNER_PASSWORD })
      t.equal(taken.statusCode, 409, 'the owner of the address cannot sign up: it is taken')
      t.equal((await confirmReset(ctx.app, await mailedResetLink(ctx, victimAddress))).statusCode, 204, 'so the owner resets the password through the mailed link')

      const where = { userId: planter.id }
      t.same(
        {
          passkeys: await ctx.app.db.passkey.count({ where }),
          totp: await ctx.app.db.totpFactor.count({ where }),
          recoveryCodes: await ctx.app.db.recoveryCode.count({ where }),
          liveApiKeys: await ctx.app.db.apiKey.count({ where: { ...where, revokedAt: null } }),
          liveSessions: await ctx.app.db.session.count({ where: { ...where, revokedAt: null } }),
          unspentLinks: await ctx.app.db.accountToken.count({ where: { ...where, usedAt: null } }),
        },
        { passkeys: 0, totp: 0, recoveryCodes: 0, liveApiKeys: 0, liveSessions: 0, unspentLinks: 0 },
        'nothing planted is left'
      )
      assertInvalidGrant(t, await passkeySignIn(ctx.app, authenticator), 'the planted passkey signs in')
      t.equal((await withApiKey(ctx, key.key)).statusCode, 401, 'the planted API key is refused at GET /users/me (X-API-Key)')
      for (const [label, tokens] of [['sign-up', planter], ['passkey', passkeySession]] as const) {
        t.equal((await refusedWithinASecond(ctx, tokens.access_token)).statusCode, 401, `the planter's ${label} session: its access token is refused`)
        assertInvalidGrant(t, await users.refresh(ctx.app, tokens.refresh_token), `the planter's ${label} session: its refresh token`)
      }
      assertRefusedLink(t, await verifyLink(ctx.app, changeLink), 'the planter\'s pending address change')
      t.equal(await addressOf(ctx, planter.id), victimAddress, 'the address stays the owner\'s')
      assertInvalidGrant(t, await users.passwordGrant(ctx.app, victimAddress), 'the planter\'s password')
      const owner = await users.passwordGrant(ctx.app, victimAddress, { password: OWNER_PASSWORD })
      t.equal(owner.statusCode, 200, `the owner's password login opens a session, not mfa_required (${owner.body.slice(0, 120)})`)
      t.type(json(owner).access_token, 'string', 'with tokens')
    },
  },
  {
    id: 'ATO-08',
    title: 'a reset of a verified account keeps its TOTP, and its notice lists the passkeys and API keys added since the address was confirmed with a one-click link that removes them, once',
    source: 'ASVS 5.0 V6.4.3 (a reset does not bypass MFA), V6.3.7 (notify of authentication changes), V6.5.6 (revoke a factor), V7.4.3; OWASP Forgot Password Cheat Sheet; issue 24',
    async run (ctx, t) {
      const owner = await ctx.signup('ato-verified')
      const verified = await verifyLink(ctx.app, linkTokenOf(await ctx.mail.latest(owner.email, SUBJECT.verify)))
      t.equal(verified.statusCode, 200, 'the owner confirms the address through the link')
      await centreStep(ctx)
      const factor = await enrolTotp(ctx.app, owner.access_token, ctx.clock.now())
      await advance(ctx, 30)
      await centreStep(ctx)
      // Someone with a session proven with the factor (a phished code, a stolen session) adds a passkey and a key.
      const mfaSession = json<Tokens>(await mfaOtpGrant(ctx.app, await mfaToken(ctx.app, owner.email), { otp: totpCode(factor.secret, ctx.clock.now()) }))
      const authenticator = new SoftAuthenticator(TEST_ORIGIN)
      await registerPasskey(ctx.app, mfaSession.access_token, authenticator, 'Unknown phone')
      const key = await users.createApiKey(ctx.app, mfaSession.access_token, { name: 'sync-tool', scopes: ['profile'] })

      t.equal((await confirmReset(ctx.app, await mailedResetLink(ctx, owner.email))).statusCode, 204, 'the owner resets the password')
      const kept = json<{ error?: string; factors?: string[] }>(await users.passwordGrant(ctx.app, owner.email, { password: OWNER_PASSWORD }))
      t.equal(kept.error, 'mfa_required', 'the owner\'s TOTP survives the reset: the password grant still answers mfa_required')
      t.ok(kept.factors?.includes('otp'), `with otp among the factors (${String(kept.factors)})`)

      const notice = await ctx.mail.latest(owner.email, SUBJECT.passwordChanged)
      t.match(notice.text, 'Unknown phone', 'the notice names the passkey')
      t.match(notice.text, 'sync-tool', 'and the API key')
      t.match(notice.text, key.prefix, 'with its prefix')
      const removal = linkTokenOf(notice)

      // Until the link is used, they still work: a verified account keeps what was added to it.
      const intruderSession = json<Tokens>(await passkeySignIn(ctx.app, authenticator))
      t.type(intruderSession.access_token, 'string', 'the passkey still signs in after the reset')
      t.equal((await withApiKey(ctx, key.key)).statusCode, 200, 'the key still works after the reset')

      const removed = await removeListed(ctx.app, removal)
      t.equal(removed.statusCode, 200, `POST /auth/credential-removal (${removed.body.slice(0, 120)})`)
      t.same(json(removed), { passkeys: 1, apiKeys: 1 }, 'removes the passkey and the key')
      assertInvalidGrant(t, await passkeySignIn(ctx.app, authenticator), 'the passkey no longer signs in')
      t.equal((await refusedWithinASecond(ctx, intruderSession.access_token)).statusCode, 401, 'the session it opened: its access token is refused')
      assertInvalidGrant(t, await users.refresh(ctx.app, intruderSession.refresh_token), 'and its refresh token')
      t.equal((await withApiKey(ctx, key.key)).statusCode, 401, 'the key is refused')
      assertRefusedLink(t, await removeListed(ctx.app, removal), 'the link a second time')
      const after = json<{ error: string; factors: string[] }>(await users.passwordGrant(ctx.app, owner.email, { password: OWNER_PASSWORD }))
      t.same([after.error, after.factors], ['mfa_required', ['otp', 'recovery_code']], 'the owner\'s TOTP and recovery codes remain, the passkey does not')
    },
  },

  // ------------------------------------------------------------ enrolment, links, lost passkeys, notices
  {
    id: 'ATO-09',
    title: 'a token whose authentication is older than RECENT_AUTH_MAX_AGE_SECONDS cannot start or confirm a TOTP enrolment; the owner is emailed when TOTP is turned on',
    source: 'ASVS 5.0 V7.5.1 (re-authentication before changing MFA configuration), V6.3.7; RFC 9470 §3 (max_age); issue 24',
    async run (ctx, t) {
      const user = await ctx.signup('ato-totp-stale')
      const started = await users.injectAs(ctx.app, user.access_token, 'POST', '/users/me/mfa/totp')
      t.equal(started.statusCode, 200, 'an enrolment started while the sign-in was recent')
      const { secret } = json<{ secret: string }>(started)
      await ctx.advance(ctx.config.mfa.recentAuthMaxAgeSeconds + 60)
      // A refresh keeps the sign-in's auth_time: the stolen token a thief would hold.
      const stale = json<Tokens>(await users.refresh(ctx.app, user.refresh_token)).access_token
      await centreStep(ctx)
      assertInsufficient(t, await users.injectAs(ctx.app, stale, 'POST', '/users/me/mfa/totp/confirm', { code: totpCode(secret, ctx.clock.now()) }), 'confirming with a stale token', { maxAge: true })
      assertInsufficient(t, await users.injectAs(ctx.app, stale, 'POST', '/users/me/mfa/totp'), 'starting with a stale token', { maxAge: true })
      t.equal(await ctx.app.db.totpFactor.count({ where: { userId: user.id, confirmedAt: { not: null } } }), 0, 'nothing turned on')

      const fresh = await ctx.login(user.email)
      await centreStep(ctx)
      await enrolTotp(ctx.app, fresh.access_token, ctx.clock.now())
      const notice = await ctx.mail.latest(user.email, SUBJECT.added)
      t.match(notice.text, 'authenticator app', 'the owner is told an authenticator app was added')
      t.match(notice.text, ctx.config.email.securityPageUrl, 'with the security page')
    },
  },
  {
    id: 'ATO-10',
    title: 'an address-change link of a disabled account is refused; a reset link mailed to the previous address stops working once the address changed',
    source: 'OWASP Forgot Password Cheat Sheet (single-use, invalidated tokens); ASVS 5.0 V7.4.2, V6.4; issue 24',
    async run (ctx, t) {
      const { owner, link } = await intruderAsksAddressChange(ctx, 'ato-disabled-link')
      // Disabled by a path that voids no link (straight in the database): the confirmation checks the account itself.
      await ctx.app.db.user.update({ where: { id: owner.id }, data: { disabled: true } })
      assertRefusedLink(t, await verifyLink(ctx.app, link), 'the link of a disabled account')
      t.equal(await addressOf(ctx, owner.id), owner.email, 'the address did not move')

      const mover = await ctx.signup('ato-old-address')
      const oldReset = await mailedResetLink(ctx, mover.email)
      const newAddress = uniqueEmail('ato-new-address')
      t.equal((await users.injectAs(ctx.app, mover.access_token, 'POST', '/users/me/email', { newEmail: newAddress, currentPassword: PASSWORD })).statusCode, 202)
      const moved = await verifyLink(ctx.app, linkTokenOf(await ctx.mail.latest(newAddress, SUBJECT.changeLink)))
      t.equal(moved.statusCode, 200, 'the owner moves the account to a new address')
      assertRefusedLink(t, await confirmReset(ctx.app, oldReset), 'the reset link mailed to the previous address')
      t.equal((await users.passwordGrant(ctx.app, newAddress)).statusCode, 200, 'the password is unchanged')
    },
  },
  {
    id: 'ATO-11',
    title: 'deleting a passkey ends the sessions it signed in to, as a first factor or a second step: refresh tokens refused, access tokens 401 within a second',
    source: 'ASVS 5.0 V6.5.6 (a lost factor can be revoked), V7.4.3; DESIGN §3.5.7; issue 24',
    run: (ctx, t) => lostPasskeyEndsSessions(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'ATO-12',
    title: 'every new authenticator, passkey and API key emails its owner a message naming it, with the security page',
    source: 'ASVS 5.0 V6.3.7 (notify users after updates to authentication details); issue 24',
    async run (ctx, t) {
      const user = await ctx.signup('ato-notices')
      const key = await users.createApiKey(ctx.app, user.access_token, { name: 'ci-deploy', scopes: ['profile'] })
      const authenticator = new SoftAuthenticator(TEST_ORIGIN)
      await registerPasskey(ctx.app, user.access_token, authenticator, 'Work laptop')
      const passkeySession = json<Tokens>(await passkeySignIn(ctx.app, authenticator))
      await centreStep(ctx)
      await enrolTotp(ctx.app, passkeySession.access_token, ctx.clock.now())
      const notices = (await ctx.mail.all(user.email)).filter((mail) => mail.subject.includes(SUBJECT.added))
      t.equal(notices.length, 3, 'three notices')
      t.ok(notices.some((mail) => mail.text.includes('API key') && mail.text.includes('ci-deploy') && mail.text.includes(key.prefix)), 'one names the API key and its prefix')
      t.ok(notices.some((mail) => mail.text.includes('passkey') && mail.text.includes('Work laptop')), 'one names the passkey')
      t.ok(notices.some((mail) => mail.text.includes('authenticator app')), 'one names the authenticator app')
      for (const mail of notices) t.match(mail.text, ctx.config.email.securityPageUrl, 'each points at the security page')
      t.ok(notices.every((mail) => mail.token === null), 'and carries no link secret')
    },
  },
]
