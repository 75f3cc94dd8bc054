import t from 'tap'
import { codeAt, acceptedStep, normalizeOtp, timeStep } from '../../../src/features/second-factors/totp-factors.js'
import { generateRecoveryCode, normalizeRecoveryCode, RECOVERY_CODE_ALPHABET, RECOVERY_CODE_LENGTH } from '../../../src/features/second-factors/backup-codes.js'
import { fileTestApp } from '../../helpers/app.js'
import { advance, centreStep, enrolTotp, hotp, totpCode } from '../../helpers/totp.js'
import { signup } from '../../helpers/users.js'

/**
 * The second-factor domain (features/second-factors/second-factors.ts, totp-factors.ts,
 * recovery-codes.ts): RFC 6238 arithmetic, the recovery-code alphabet, and
 * the checks the step-up grant calls, under concurrency.
 */

const RFC_KEY = Buffer.from('12345678901234567890')

t.test('RFC 6238 Appendix B (SHA-1), truncated to 6 digits as RFC 4226 does', async (t) => {
  // T = 59 s, 1111111109 s, 1234567890 s, 2000000000 s: the 8-digit values' last 6 digits.
  const vectors: [number, string][] = [[59, '287082'], [1111111109, '081804'], [1234567890, '005924'], [2000000000, '279037']]
  for (const [seconds, code] of vectors) {
    t.equal(codeAt(RFC_KEY, timeStep(seconds * 1000)), code, `T=${seconds}`)
    t.equal(hotp(RFC_KEY, timeStep(seconds * 1000)), code, `the test helper agrees at T=${seconds}`)
  }
})

t.test('acceptedStep: one step either side, only steps newer than the last one used', async (t) => {
  const now = 1_234_567_890_000
  const step = timeStep(now)
  for (const offset of [-1, 0, 1]) t.equal(acceptedStep(RFC_KEY, codeAt(RFC_KEY, step + offset), now, 0), step + offset, `offset ${offset}`)
  for (const offset of [-2, 2]) t.equal(acceptedStep(RFC_KEY, codeAt(RFC_KEY, step + offset), now, 0), null, `offset ${offset}`)
  t.equal(acceptedStep(RFC_KEY, codeAt(RFC_KEY, step), now, step), null, 'the step already used')
  t.equal(acceptedStep(RFC_KEY, codeAt(RFC_KEY, step - 1), now, step - 1), null, 'an older step')
  t.equal(acceptedStep(RFC_KEY, codeAt(RFC_KEY, step + 1), now, step), step + 1, 'a newer one')
  t.equal(acceptedStep(RFC_KEY, '12345', now, 0), null, 'a short code')
})

t.test('codes as typed', async (t) => {
  t.equal(normalizeOtp(' 123 456 '), '123456')
  t.equal(normalizeOtp('12345'), null)
  t.equal(normalizeOtp('１２３４５６'), null, 'fullwidth digits are not digits here')
  t.equal(normalizeRecoveryCode('abcd-efgh-jkmn'), 'ABCDEFGHJKMN')
  t.equal(normalizeRecoveryCode('ABCD EFGH JKMN'), 'ABCDEFGHJKMN')
  t.equal(normalizeRecoveryCode('ABCD-EFGH-JKM0'), null, '0 is not in the alphabet')
  t.equal(normalizeRecoveryCode('ABCD-EFGH-JKMNP'), null, 'one too many')
})

t.test('recovery codes: no look-alike characters, at least 50 bits each, grouped', async (t) => {
  for (const c of '01OILU') t.notOk(RECOVERY_CODE_ALPHABET.includes(c), `no ${c}`)
  t.equal(new Set(RECOVERY_CODE_ALPHABET).size, RECOVERY_CODE_ALPHABET.length)
  t.ok(RECOVERY_CODE_LENGTH * Math.log2(RECOVERY_CODE_ALPHABET.length) >= 50, 'entropy')
  const seen = new Map<string, number>()
  for (let i = 0; i < 2000; i++) {
    const code = generateRecoveryCode()
    t.match(code, /^[^-]{4}-[^-]{4}-[^-]{4}$/)
    for (const c of code.replaceAll('-', '')) seen.set(c, (seen.get(c) ?? 0) + 1)
  }
  t.equal(seen.size, RECOVERY_CODE_ALPHABET.length, 'every symbol is drawn')
  // 24000 draws over 30 symbols: 800 each expected; a biased generator lands far outside.
  for (const [c, n] of seen) t.ok(n > 650 && n < 950, `${c}: ${n}`)
})

const { app, clock } = await fileTestApp()

t.test('verifyOneTimeCode: for the step-up grant; spends codes like a login, budgeted and audited', async (t) => {
  const user = await signup(app)
  t.equal(await app.secondFactors.hasSecondFactor(user.id), false)
  await centreStep({ app, clock })
  const { secret, recoveryCodes } = await enrolTotp(app, user.access_token, clock.now())
  t.equal(await app.secondFactors.hasSecondFactor(user.id), true)
  await advance({ app, clock }, 30)

  let budget = 0
  const context = { ip: '127.0.0.1', purpose: 'step_up', spendAttempt: async () => { budget++ } }
  const code = totpCode(secret, clock.now())
  const answers = await Promise.all(Array.from({ length: 20 }, () => app.secondFactors.verifyOneTimeCode(user.id, { otp: code }, context)))
  t.equal(answers.filter(Boolean).length, 1, 'of 20 concurrent presentations of one code, one is accepted')
  const recovery = await Promise.all(Array.from({ length: 20 }, () => app.secondFactors.verifyOneTimeCode(user.id, { recoveryCode: recoveryCodes[0]! }, context)))
  t.equal(recovery.filter(Boolean).length, 1, 'of 20 concurrent presentations of one recovery code, one is accepted')
  t.equal(budget, 40, 'every attempt drew on the budget')
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'second_factor_failed' } }), 38, 'every failure is audited')
  const refused = async () => { throw new Error('budget spent') }
  await t.rejects(app.secondFactors.verifyOneTimeCode(user.id, { recoveryCode: recoveryCodes[1]! }, { ...context, spendAttempt: refused }), /budget spent/)
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 9, 'a refused budget spends no code')
})
