import { createHmac } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { serializeRevocationSync } from '../security/context.js'
import { json, type TestClock } from './app.js'
import { injectAs, passwordGrant, type GrantOptions, type Response } from './users.js'

/**
 * TOTP for tests, written from RFC 6238 and RFC 4226 directly (not through
 * the library the service uses): HMAC-SHA-1 over the 8-byte big-endian time
 * step, dynamic truncation, 6 digits.
 */

export const MFA_OTP = 'urn:token-auth:grant-type:mfa-otp'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

export function base32Decode (text: string): Buffer {
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const index = BASE32.indexOf(char)
    if (index === -1) throw new Error(`not base32: ${char}`)
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

/** The RFC 4226 code of `key` at counter `step`. */
export function hotp (key: Buffer, step: number): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const binary = mac.readUInt32BE(offset) & 0x7fffffff
  return String(binary % 1_000_000).padStart(6, '0')
}

export const stepAt = (ms: number) => Math.floor(ms / 30_000)

/** The code of a base32 secret at time `ms`, `offsetSteps` steps away. */
export function totpCode (secret: string, ms: number, offsetSteps = 0): string {
  return hotp(base32Decode(secret), stepAt(ms) + offsetSteps)
}

const serialized = new WeakSet<FastifyInstance>()

/**
 * Moves the clock of `target` and syncs its revocation state at once, so
 * its access tokens stay usable (a jump would make the state look stale,
 * 503, until the next poll). Syncs are serialized first: a poll in flight
 * from before the jump must not finish after this one and date the state
 * back.
 */
export async function advance (target: { app: FastifyInstance; clock: TestClock }, seconds: number): Promise<void> {
  if (!serialized.has(target.app)) {
    serializeRevocationSync(target.app)
    serialized.add(target.app)
  }
  target.clock.advance(seconds)
  await target.app.revocations.sync()
}

/** Moves the clock forward to the middle of a time step: a code computed now is checked in its own step, however slow the request. */
export async function centreStep (target: { app: FastifyInstance; clock: TestClock }): Promise<void> {
  const into = target.clock.now() % 30_000
  await advance(target, ((((15_000 - into) % 30_000) + 30_000) % 30_000) / 1000)
}

export interface Enrolled {
  secret: string
  otpauthUri: string
  recoveryCodes: string[]
}

/** Starts and confirms a TOTP enrolment with a code of `now`; throws unless both succeed. */
export async function enrolTotp (app: FastifyInstance, accessToken: string, now: number): Promise<Enrolled> {
  const started = await injectAs(app, accessToken, 'POST', '/users/me/mfa/totp')
  if (started.statusCode !== 200) throw new Error(`enrol: ${started.statusCode} ${started.body}`)
  const { secret, otpauth_uri: otpauthUri } = json<{ secret: string; otpauth_uri: string }>(started)
  const confirmed = await injectAs(app, accessToken, 'POST', '/users/me/mfa/totp/confirm', { code: totpCode(secret, now) })
  if (confirmed.statusCode !== 200) throw new Error(`confirm: ${confirmed.statusCode} ${confirmed.body}`)
  return { secret, otpauthUri, recoveryCodes: json<{ recoveryCodes: string[] }>(confirmed).recoveryCodes }
}

/** The password grant's mfa_required answer's token; throws on any other answer. */
export async function mfaToken (app: FastifyInstance, email: string, options: GrantOptions = {}): Promise<string> {
  const response = await passwordGrant(app, email, options)
  const body = json<{ error?: string; mfa_token?: string }>(response)
  if (response.statusCode !== 400 || body.error !== 'mfa_required' || !body.mfa_token) throw new Error(`expected mfa_required: ${response.statusCode} ${response.body}`)
  return body.mfa_token
}

/** The mfa-otp grant, answered as it is. */
export function mfaOtpGrant (
  app: FastifyInstance,
  token: string,
  code: { otp: string } | { recovery_code: string },
  options: { clientId?: string; headers?: Record<string, string> } = {}
): Promise<Response> {
  return app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: options.headers ?? {},
    payload: { grant_type: MFA_OTP, mfa_token: token, ...code, ...(options.clientId ? { client_id: options.clientId } : {}) },
  })
}
