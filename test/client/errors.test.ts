import t from 'tap'
import {
  ApiRequestError,
  EmailNotVerifiedError,
  errorFromResponse,
  InvalidCredentialsError,
  RateLimitedError,
  ServiceUnavailableError,
} from '../../src/client/errors.js'

/** The SDK's typed errors, from the service's answers as they come over the wire. */

const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

t.test('a shed login (503 temporarily_unavailable) is a ServiceUnavailableError with its Retry-After', async (t) => {
  const error = await errorFromResponse(
    answer(503, { error: 'temporarily_unavailable', error_description: 'too many password checks are waiting; retry shortly' }, { 'retry-after': '3' }),
    'login'
  )
  t.type(error, ServiceUnavailableError)
  t.equal((error as ServiceUnavailableError).retryAfterSeconds, 3)
  t.equal(error.code, 'temporarily_unavailable')
  t.equal(error.status, 503)
})

t.test('other answers keep their types', async (t) => {
  t.type(await errorFromResponse(answer(429, { error: 'too_many_requests', error_description: 'x' }, { 'retry-after': '7' }), 'login'), RateLimitedError)
  t.type(await errorFromResponse(answer(400, { error: 'invalid_grant', error_description: 'x' }), 'login'), InvalidCredentialsError)
  t.type(await errorFromResponse(answer(403, { statusCode: 403, error: 'Forbidden', code: 'forbidden', message: 'x' }), 'api'), ApiRequestError)
})

t.test('a password grant refused for an unverified address is an EmailNotVerifiedError', async (t) => {
  const error = await errorFromResponse(answer(400, { error: 'email_not_verified', error_description: 'confirm your email address first' }), 'login')
  t.type(error, EmailNotVerifiedError)
  t.equal(error.code, 'email_not_verified')
  t.equal(error.message, 'confirm your email address first')
  t.notOk(error instanceof InvalidCredentialsError, 'not a wrong password')
})

t.test('the authorization challenge endpoint\'s answers: a spent auth_session is a refused sign-in; insufficient_authorization keeps its body', async (t) => {
  const spent = await errorFromResponse(answer(400, { error: 'invalid_session', error_description: 'the auth_session cannot be used: the auth_session was already used; sign in again' }), 'login')
  t.type(spent, InvalidCredentialsError, 'as the password grant\'s spent mfa_token was')
  t.match(spent.message, /sign in again/)
  t.type(await errorFromResponse(answer(400, { error: 'invalid_session', error_description: 'x' }), 'api'), ApiRequestError, 'outside a sign-in: the code as it is')
  const more = await errorFromResponse(answer(403, { error: 'insufficient_authorization', error_description: 'x', auth_session: 'mfa_x', factors: ['otp'] }), 'login')
  t.type(more, ApiRequestError)
  t.equal(more.code, 'insufficient_authorization')
  t.match((more as ApiRequestError).body, { auth_session: 'mfa_x', factors: ['otp'] }, 'the body, from which the SDK builds MfaRequiredError')
})
