import t from 'tap'
import { CHALLENGE_TTL_SECONDS, WebAuthnChallenges } from '../../../src/features/passkeys/webauthn-challenges.js'
import { hmacSha256 } from '../../../src/shared/derived-keys.js'
import { fileTestApp } from '../../helpers/app.js'
import { signup } from '../../helpers/users.js'

/**
 * WebAuthn challenges (W3C WebAuthn Level 3 §13.4.3): random, stored only as
 * a keyed hash, spent exactly once under concurrency, only for their purpose
 * and user, never after CHALLENGE_TTL_SECONDS; a user's newer ceremony
 * replaces the older.
 */

const { app, clock } = await fileTestApp()
const challenges = new WebAuthnChallenges(app.db, app.serverKeys.webauthnChallengeHash, clock.now)

t.test('a challenge is 32 random bytes, stored only as its keyed hash', async (t) => {
  const challenge = await challenges.issue('authentication', null)
  t.equal(Buffer.from(challenge, 'base64url').length, 32)
  const row = await app.db.webauthnChallenge.findUniqueOrThrow({ where: { challengeHash: new Uint8Array(hmacSha256(app.serverKeys.webauthnChallengeHash, challenge)) } })
  t.equal(row.userId, null)
  t.equal(row.expiresAt.getTime() - row.createdAt.getTime(), CHALLENGE_TTL_SECONDS * 1000)
})

t.test('20 concurrent spends of one challenge: exactly one succeeds', async (t) => {
  const challenge = await challenges.issue('authentication', null)
  const results = await Promise.all(Array.from({ length: 20 }, () => challenges.spend(challenge, 'authentication', null)))
  t.equal(results.filter(Boolean).length, 1)
})

t.test('only for its purpose and user; a wrong presentation spends nothing', async (t) => {
  const user = await signup(app)
  const other = await signup(app)
  const challenge = await challenges.issue('step_up', user.id)
  t.equal(await challenges.spend(challenge, 'authentication', null), false, 'not a sign-in challenge')
  t.equal(await challenges.spend(challenge, 'registration', user.id), false, 'not a registration challenge')
  t.equal(await challenges.spend(challenge, 'step_up', other.id), false, 'not another user\'s')
  t.equal(await challenges.spend(challenge, 'step_up', user.id), true, 'its own')
  t.equal(await challenges.spend('never-issued', 'step_up', user.id), false)
})

t.test('expired after CHALLENGE_TTL_SECONDS; a newer ceremony replaces the user\'s older one', async (t) => {
  const user = await signup(app)
  const late = await challenges.issue('registration', user.id)
  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  t.equal(await challenges.spend(late, 'registration', user.id), false, 'expired')
  const older = await challenges.issue('registration', user.id)
  const stepUp = await challenges.issue('step_up', user.id)
  const newer = await challenges.issue('registration', user.id)
  t.equal(await challenges.spend(older, 'registration', user.id), false, 'replaced')
  t.equal(await challenges.spend(newer, 'registration', user.id), true)
  t.equal(await challenges.spend(stepUp, 'step_up', user.id), true, 'another purpose is not replaced')
  const publicOne = await challenges.issue('authentication', null)
  await challenges.issue('authentication', null)
  t.equal(await challenges.spend(publicOne, 'authentication', null), true, 'sign-in challenges, bound to no one, do not replace each other')
})
