import type { Test } from 'tap'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../src/shared/authentication-methods.js'
import { buildTestApp, json } from '../helpers/app.js'
import * as users from '../helpers/users.js'
import { PASSWORD_GRANT_PATH, signInTokens, type SignInPath } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail, type AttackContext } from './context.js'

/** SU-04: with REQUIRE_MFA_FOR_ADMINS, an admin signed in through `path` with a password alone reaches no admin route. */
export async function adminPasswordOnly (ctx: AttackContext, t: Test, path: SignInPath) {
  const strict = await buildTestApp({ REQUIRE_MFA_FOR_ADMINS: 'true' }, { database: ctx.database, clock: ctx.clock })
  try {
    const account = await users.signup(strict.app, { label: 'su-strict' })
    await strict.app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
    const tokens = await signInTokens(path, strict.app, account.email)
    await strict.app.revocations.sync()
    for (const [method, url] of [['GET', '/admin/users'], ['GET', '/admin/audit-events'], ['PATCH', `/admin/users/${account.id}`]] as const) {
      const response = await users.injectAs(strict.app, tokens.access_token, method, url, method === 'PATCH' ? { disabled: false } : undefined)
      t.equal(response.statusCode, 401, `${method} ${url}: 401`)
      t.match(String(response.headers['www-authenticate']), `acr_values="${ACR_MFA}"`, `${method} ${url}: asks for the mfa level`)
    }
    t.equal((await users.me(strict.app, tokens.access_token)).statusCode, 200, 'who-am-I still answers (to show the enrolment page)')
  } finally {
    await strict.close()
  }
}

/**
 * Step-up and authentication levels (DESIGN §3.12): what a stolen access
 * token or refresh token cannot do to an account whose owner signed in long ago.
 */

const STEP_UP = `${GRANT_TYPE_PREFIX}step-up`

export const stepUpCases: AttackCase[] = [
  {
    id: 'SU-01',
    title: 'an access token of an old sign-in cannot change the password or the address, mint an API key or write as an admin',
    source: 'RFC 9470 §3 (insufficient_user_authentication, max_age); ASVS 5.0 V7.5.1, V7.5.3 (re-authentication before sensitive changes)',
    async run (ctx, t) {
      const victim = await ctx.signup('su-victim')
      const admin = await users.signupAdmin(ctx.app, { label: 'su-admin' })
      await ctx.advance(ctx.config.mfa.recentAuthMaxAgeSeconds + 60)
      const attempts = [
        ['POST', '/users/me/password', victim.access_token, { currentPassword: PASSWORD, newPassword: 'the thief\'s passphrase' }],
        ['POST', '/users/me/email', victim.access_token, { newEmail: uniqueEmail('thief'), currentPassword: PASSWORD }],
        ['POST', '/api-keys', victim.access_token, { name: 'exfiltrate', scopes: ['profile'] }],
        ['PATCH', `/admin/users/${victim.id}`, admin.access_token, { role: 'admin' }],
      ] as const
      for (const [method, url, token, payload] of attempts) {
        const response = await users.injectAs(ctx.app, token, method, url, { ...payload })
        t.equal(response.statusCode, 401, `${method} ${url}: 401`)
        t.match(String(response.headers['www-authenticate']), /error="insufficient_user_authentication".*max_age=\d+/, `${method} ${url}: the RFC 9470 challenge`)
      }
      t.equal(await ctx.app.db.apiKey.count({ where: { userId: victim.id } }), 0, 'no key was minted')
      t.equal((await ctx.app.db.user.findUniqueOrThrow({ where: { id: victim.id } })).role, 'user', 'no role changed')
    },
  },
  {
    id: 'SU-02',
    title: 'a refresh never raises the authentication: amr and auth_time stay the login\'s however often the session rotates',
    source: 'RFC 9470 §4 (a new authentication, not a refreshed token, meets a requirement); OpenID Connect Core §2 (auth_time); DESIGN §3.12',
    async run (ctx, t) {
      const account = await ctx.signup('su-refresh')
      const first = users.claimsOf(account.access_token)
      let refreshToken = account.refresh_token
      for (let i = 0; i < 3; i++) {
        await ctx.advance(ctx.config.mfa.recentAuthMaxAgeSeconds)
        const tokens = json<{ access_token: string; refresh_token: string }>(await users.refresh(ctx.app, refreshToken))
        refreshToken = tokens.refresh_token
        const claims = users.claimsOf(tokens.access_token)
        t.equal(claims.auth_time, first.auth_time, `rotation ${i + 1}: auth_time unchanged`)
        t.same(claims.amr, first.amr, `rotation ${i + 1}: amr unchanged`)
        t.notOk('acr' in claims, `rotation ${i + 1}: no level appears`)
      }
    },
  },
  {
    id: 'SU-03',
    title: 'a stolen, retired refresh token used for a step-up is detected as reuse and ends the session',
    source: 'RFC 9700 §4.14.2 (refresh token rotation and reuse detection); DESIGN §3.5 rule 4',
    async run (ctx, t) {
      const account = await ctx.signup('su-reuse')
      const stolen = account.refresh_token
      t.equal((await users.refresh(ctx.app, stolen)).statusCode, 200, 'the owner rotates')
      await ctx.advance(ctx.config.refreshGraceSeconds + 5)
      const response = await ctx.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: STEP_UP, refresh_token: stolen, password: PASSWORD } })
      t.equal(json(response).error, 'invalid_grant')
      const session = await ctx.app.db.session.findUniqueOrThrow({ where: { id: account.sessionId } })
      t.equal(session.revokedReason, 'refresh_token_reused', 'the session is revoked')
      t.equal(await ctx.app.db.auditEvent.count({ where: { userId: account.id, type: 'stepped_up' } }), 0, 'nothing was raised')
    },
  },
  {
    id: 'SU-04',
    title: 'REQUIRE_MFA_FOR_ADMINS: an admin signed in with a password alone reaches no admin route, only enrolment',
    source: 'ASVS 5.0 V6.3.3 (multi-factor authentication); RFC 9470 §3 (acr_values); DESIGN §3.12',
    run: (ctx, t) => adminPasswordOnly(ctx, t, PASSWORD_GRANT_PATH),
  },
]
