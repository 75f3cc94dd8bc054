import type { Test } from 'tap'
import { buildTestApp, json } from '../helpers/app.js'
import { injectAs } from '../helpers/users.js'
import { passkeyGrant, registerPasskey, registrationOptions, signInOptions, SoftAuthenticator, TEST_ORIGIN } from '../helpers/webauthn.js'
import type { AttackCase } from './catalogue.js'
import type { AttackContext } from './context.js'
import { assertInvalidGrant, PASSWORD_GRANT_PATH, type SignInOptions, type SignInPath } from './attack-helpers.js'

/**
 * Passkey attacks (DESIGN §3.12): what W3C WebAuthn Level 3's verification
 * procedures (§7.1 registration, §7.2 assertion), its signature-counter
 * rules (§6.1.1) and its security considerations for relying parties
 * (§13.4) ask a server to refuse, and the authentication-factor rules of
 * OWASP ASVS 5.0 V6, each run against the real service with a software
 * authenticator (test/helpers/webauthn.ts).
 */

/** A new user of the catalogue's service holding one passkey of a new authenticator. */
export async function holder (ctx: AttackContext, label: string, origin = TEST_ORIGIN) {
  const account = await ctx.signup(label)
  const authenticator = new SoftAuthenticator(origin)
  const passkey = await registerPasskey(ctx.app, account.access_token, authenticator)
  return { account, authenticator, passkey }
}

/*
 * The sign-in rows take a sign-in path (attack-helpers.ts): here the
 * passkey grant; the first-party section runs the same functions against the
 * authorization challenge endpoint, where a passkey is a first request's
 * credential and its code is exchanged for the session.
 */

type App = AttackContext['app']

/** A passkey sign-in through `path` to its tokens, answered as it ends (a refusal as it is). */
async function passkeySignIn (path: SignInPath, app: App, credential: unknown, options: SignInOptions = {}) {
  return path.tokens(app, await path.passkey(app, credential, options), options)
}

/** PK-01: a captured assertion, replayed or raced, opens one session. */
export async function assertionReplay (ctx: AttackContext, t: Test, path: SignInPath) {
  const { account, authenticator } = await holder(ctx, 'pk-replay')
  const captured = authenticator.get(await signInOptions(ctx.app))
  const answers = await Promise.all(Array.from({ length: 10 }, () => passkeySignIn(path, ctx.app, captured)))
  t.same(answers.map((r) => r.statusCode).sort(), [200, ...Array(9).fill(400)], 'one winner')
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, captured), 'a later replay')
  t.equal(await ctx.app.db.session.count({ where: { userId: account.id, amr: { has: 'hwk' } } }), 1, 'one passkey session')
}

/** PK-02: an assertion over a challenge the client chose, or an expired one, is refused. */
export async function chosenOrStaleChallenge (ctx: AttackContext, t: Test, path: SignInPath) {
  const { authenticator } = await holder(ctx, 'pk-challenge')
  const options = await signInOptions(ctx.app)
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(options, { challenge: 'A'.repeat(43) })), 'a challenge never issued')
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(options, { challenge: Buffer.from('predictable').toString('base64url') })), 'a short, predictable challenge')
  const stale = await signInOptions(ctx.app)
  await ctx.advance(301)
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(stale)), 'expired')
}

/** PK-03: a cloned authenticator (its counter going back) is refused and audited. */
export async function clonedAuthenticator (ctx: AttackContext, t: Test, path: SignInPath) {
  const { account, authenticator } = await holder(ctx, 'pk-clone')
  t.equal((await passkeySignIn(path, ctx.app, authenticator.get(await signInOptions(ctx.app), { counter: 10 }))).statusCode, 200, 'the genuine authenticator')
  // The clone holds the same key but was copied at counter 4.
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(await signInOptions(ctx.app), { counter: 4 })), 'the clone')
  t.ok(await ctx.app.db.auditEvent.findFirst({ where: { type: 'passkey_counter_regressed', userId: account.id } }), 'audited as a possible clone')
}

/** PK-04: an assertion made on a phishing origin or for another RP ID is refused. */
export async function phishingOrigin (ctx: AttackContext, t: Test, path: SignInPath) {
  const { authenticator } = await holder(ctx, 'pk-origin')
  for (const origin of ['https://auth.test', 'http://auth.test:8080', 'http://auth.test.evil.example', 'https://evil.example', 'null']) {
    assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(await signInOptions(ctx.app), { origin })), `origin ${origin}`)
  }
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(await signInOptions(ctx.app), { rpId: 'evil.example' })), 'another RP ID')
  const forgedHost = json<{ rpId: string }>(await ctx.app.inject({ method: 'POST', url: '/auth/passkey/options', headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } }))
  t.equal(forgedHost.rpId, 'auth.test', 'options name the configured RP ID whatever the Host')
}

/** PK-05: an assertion without user verification is refused. */
export async function withoutUserVerification (ctx: AttackContext, t: Test, path: SignInPath) {
  const { authenticator } = await holder(ctx, 'pk-uv')
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, authenticator.get(await signInOptions(ctx.app), { userVerified: false })), 'UV not set')
}

/** PK-06: a forged signature, or another user's user handle, is refused. */
export async function forgedAssertion (ctx: AttackContext, t: Test, path: SignInPath) {
  const victim = await holder(ctx, 'pk-sig-victim')
  const attacker = await holder(ctx, 'pk-sig-attacker')
  const options = await signInOptions(ctx.app)
  const genuine = victim.authenticator.get(options)
  const forged = { ...genuine, response: { ...genuine.response, signature: attacker.authenticator.get(options).response.signature } }
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, forged), 'the victim\'s credential id, the attacker\'s signature')
  const wrongHandle = attacker.authenticator.get(await signInOptions(ctx.app), { userHandle: victim.authenticator.credentials[0]!.userHandle })
  assertInvalidGrant(t, await passkeySignIn(path, ctx.app, wrongHandle), 'the attacker\'s passkey naming the victim\'s user handle')
}

/** PK-10: hostile credentials answer 400, never 500; prototype keys are inert. */
export async function hostileCredentials (ctx: AttackContext, t: Test, path: SignInPath) {
  const { authenticator } = await holder(ctx, 'pk-hostile')
  type Assertion = ReturnType<typeof authenticator.get>
  // Each over a fresh challenge, so that each is refused for its own fault.
  const hostile: ((good: Assertion) => unknown)[] = [
    () => '{"id":', () => '[]', () => 'null', () => JSON.stringify('x'.repeat(9000)),
    (good) => ({ ...good, id: '../../etc/passwd' }),
    (good) => ({ ...good, response: { ...good.response, clientDataJSON: Buffer.from('{"challenge":{"$ne":null}}').toString('base64url') } }),
    (good) => ({ ...good, response: { ...good.response, authenticatorData: 'AA' } }),
  ]
  for (const [i, make] of hostile.entries()) {
    const response = await passkeySignIn(path, ctx.app, make(authenticator.get(await signInOptions(ctx.app))))
    t.ok(response.statusCode === 400, `case ${i}: 400 (${response.statusCode} ${response.body.slice(0, 120)})`)
  }
  // Prototype keys in a valid credential are ignored members: the sign-in works and pollutes nothing.
  const polluted = JSON.stringify(authenticator.get(await signInOptions(ctx.app))).replace('{', '{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}},')
  const answer = await passkeySignIn(path, ctx.app, polluted)
  t.equal(answer.statusCode, 200, 'prototype keys are inert')
  t.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype untouched')
}

/** PK-11: sign-in options and assertions are limited per IP. */
export async function passkeyBudget (ctx: AttackContext, t: Test, path: SignInPath) {
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '2' }, { database: ctx.database })
  try {
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await limited.app.inject({ method: 'POST', url: '/auth/passkey/options', remoteAddress: '203.0.113.9' })).statusCode)
    t.same(statuses, [200, 200, 429, 429])
    const guesser = new SoftAuthenticator(TEST_ORIGIN)
    guesser.create({ challenge: 'x', rp: { id: 'auth.test' }, user: { id: 'AAAA' } })
    const assertions = []
    for (let i = 0; i < 3; i++) {
      const credential = guesser.get({ challenge: 'C'.repeat(43), rpId: 'auth.test' })
      assertions.push((await path.passkey(limited.app, credential, { remoteAddress: '203.0.113.9' })).statusCode)
    }
    t.same(assertions, [400, 400, 429], 'guessed assertions too')
  } finally {
    await limited.close()
  }
}

export const passkeyCases: AttackCase[] = [
  {
    id: 'PK-01',
    title: 'a captured passkey assertion replayed, or raced 10 times at once, opens one session',
    source: 'W3C WebAuthn L3 §13.4.3, §7.2; ASVS 5.0 V6.7.2',
    run: (ctx, t) => assertionReplay(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-02',
    title: 'a passkey assertion over a challenge the client chose, or one past its 5 minutes, is refused',
    source: 'W3C WebAuthn L3 §13.4.3; ASVS 5.0 V6.7.2',
    run: (ctx, t) => chosenOrStaleChallenge(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-03',
    title: 'a cloned authenticator (a signature counter that does not increase) is refused and audited',
    source: 'W3C WebAuthn L3 §6.1.1, §7.2; ASVS 5.0 V6.7',
    run: (ctx, t) => clonedAuthenticator(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-04',
    title: 'a passkey assertion made on a phishing origin, or for another RP ID, is refused; the RP ID never comes from the request',
    source: 'W3C WebAuthn L3 §13.4.9, §7.2; ASVS 5.0 V6.7',
    run: (ctx, t) => phishingOrigin(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-05',
    title: 'a passkey assertion without user verification (presence only) is refused',
    source: 'W3C WebAuthn L3 §7.2, §6.1 (UV flag); ASVS 5.0 V6.7',
    run: (ctx, t) => withoutUserVerification(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-06',
    title: 'a passkey assertion with a forged signature, or another user\'s user handle, is refused',
    source: 'W3C WebAuthn L3 §7.2; ASVS 5.0 V6.7',
    run: (ctx, t) => forgedAssertion(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-07',
    title: 'a registration answered on a phishing origin, without user verification, or over another user\'s challenge, stores nothing',
    source: 'W3C WebAuthn L3 §7.1, §13.4.3, §13.4.9; ASVS 5.0 V6.4',
    async run (ctx, t) {
      const victim = await ctx.signup('pk-reg-victim')
      const attacker = await ctx.signup('pk-reg-attacker')
      const post = (token: string, response: unknown) => injectAs(ctx.app, token, 'POST', '/users/me/passkeys', { response: response as Record<string, unknown> })
      t.equal((await post(victim.access_token, new SoftAuthenticator('https://evil.example').create(await registrationOptions(ctx.app, victim.access_token)))).statusCode, 400, 'another origin')
      t.equal((await post(victim.access_token, new SoftAuthenticator(TEST_ORIGIN).create(await registrationOptions(ctx.app, victim.access_token), { userVerified: false }))).statusCode, 400, 'no UV')
      // The attacker has the victim's browser answer the attacker's own ceremony, or the reverse.
      const attackersOptions = await registrationOptions(ctx.app, attacker.access_token)
      t.equal((await post(victim.access_token, new SoftAuthenticator(TEST_ORIGIN).create(attackersOptions))).statusCode, 400, 'the attacker\'s challenge on the victim\'s account')
      t.equal(await ctx.app.db.passkey.count({ where: { userId: { in: [victim.id, attacker.id] } } }), 0, 'nothing stored')
    },
  },
  {
    id: 'PK-08',
    title: 'a stolen access token older than RECENT_AUTH_MAX_AGE_SECONDS, or an API key, cannot add or delete a passkey',
    source: 'ASVS 5.0 V6.4; RFC 9470 §3',
    async run (ctx, t) {
      const { account, authenticator, passkey } = await holder(ctx, 'pk-recent')
      // The key is made by a session that proved the passkey (the account has a factor now).
      const proven = json<{ access_token: string }>(await passkeyGrant(ctx.app, authenticator.get(await signInOptions(ctx.app)))).access_token
      const key = await ctx.createApiKey(proven)
      t.equal((await ctx.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: { 'x-api-key': key.key } })).statusCode, 401, 'an API key')
      // A refreshed token of the same session keeps its old auth_time.
      await ctx.advance(901)
      const stolen = json<{ access_token: string }>(await ctx.refresh(account.refresh_token)).access_token
      for (const [method, url] of [['POST', '/users/me/passkeys/options'], ['DELETE', `/users/me/passkeys/${passkey.id}`]] as const) {
        const response = await injectAs(ctx.app, stolen, method, url)
        t.equal(response.statusCode, 401, `${method} ${url}`)
        t.equal(json(response).code, 'insufficient_user_authentication', `${method} ${url}`)
      }
      t.equal(await ctx.app.db.passkey.count({ where: { id: passkey.id } }), 1, 'the passkey is still there')
    },
  },
  {
    id: 'PK-09',
    title: 'another user\'s passkey cannot be renamed, deleted, listed, or used for their step-up',
    source: 'ASVS 5.0 V8.2.2; W3C WebAuthn L3 §7.2',
    async run (ctx, t) {
      const victim = await holder(ctx, 'pk-idor-victim')
      const attacker = await holder(ctx, 'pk-idor-attacker')
      t.equal((await injectAs(ctx.app, attacker.account.access_token, 'PATCH', `/users/me/passkeys/${victim.passkey.id}`, { name: 'pwned' })).statusCode, 404, 'rename')
      t.equal((await injectAs(ctx.app, attacker.account.access_token, 'DELETE', `/users/me/passkeys/${victim.passkey.id}`)).statusCode, 404, 'delete')
      const listed = json<{ items: { id: string }[] }>(await injectAs(ctx.app, attacker.account.access_token, 'GET', '/users/me/passkeys'))
      t.notOk(listed.items.some((item) => item.id === victim.passkey.id), 'not listed')
      const options = json<{ challenge: string; rpId: string }>(await injectAs(ctx.app, attacker.account.access_token, 'POST', '/users/me/passkeys/step-up-options'))
      await t.rejects(ctx.app.passkeys.verifyForUser(victim.account.id, attacker.authenticator.get(options) as never), { code: 'invalid_grant' }, 'the attacker\'s step-up challenge for the victim')
      t.equal((await ctx.app.db.passkey.findUniqueOrThrow({ where: { id: victim.passkey.id } })).name, 'Passkey', 'unchanged')
    },
  },
  {
    id: 'PK-10',
    title: 'hostile passkey grant credentials (not JSON, wrong shape, oversized) answer 400, never 500; prototype keys are inert',
    source: 'RFC 6749 §5.2; W3C WebAuthn L3 §5.1 (toJSON); DESIGN §4',
    run: (ctx, t) => hostileCredentials(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'PK-11',
    title: 'passkey sign-in options and assertions are limited per IP',
    source: 'ASVS 5.0 V6.3.1',
    run: (ctx, t) => passkeyBudget(ctx, t, PASSWORD_GRANT_PATH),
  },
]
