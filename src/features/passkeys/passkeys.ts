import { randomBytes } from 'node:crypto'
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { decodeClientDataJSON, isoBase64URL } from '@simplewebauthn/server/helpers'
import type { WebAuthnConfig } from '../../config.js'
import { DomainError } from '../../errors.js'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { WebauthnChallengePurpose } from '../../generated/prisma/enums.js'
import type { PasskeySummary } from './schemas.js'
import { PUBLIC_USER_SELECT, type VerifiedLogin } from '../accounts/accounts.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { AMR, combineMethods } from '../../shared/authentication-methods.js'
import { CHALLENGE_TTL_SECONDS, type WebAuthnChallenges } from './webauthn-challenges.js'
import type { SecondFactorStore } from '../second-factors/second-factors.js'
import type { CredentialNotices } from '../email/credential-notices.js'
import type { SessionStore } from '../sessions/sessions.js'

/**
 * Passkeys (W3C WebAuthn Level 3; DESIGN §3.12) on @simplewebauthn/server:
 * registration by a signed-in user, sign-in as a first factor with a
 * discoverable credential, and the check a step-up makes. The relying party
 * (RP ID, name, origins) comes from configuration only, never from a request.
 * User verification is required in every ceremony, so a passkey alone is two
 * factors (a possession and the user's PIN or biometric).
 */

/** COSE algorithms offered: EdDSA, ES256, RS256 (§5.8.5; what authenticators implement). */
const ALGORITHMS = [-8, -7, -257]
/** How many passkeys a user may hold: a bound on rows and on allowCredentials. */
export const MAX_PASSKEYS_PER_USER = 20
/** §5.8.4 AuthenticatorTransport values; anything else a client sends is dropped. */
const KNOWN_TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])
/** The challenges this service makes: 32 random bytes, base64url. */
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/
const DEFAULT_NAME = 'Passkey'

const PASSKEY_SELECT = {
  id: true,
  name: true,
  deviceType: true,
  backedUp: true,
  transports: true,
  aaguid: true,
  createdAt: true,
  lastUsedAt: true,
} as const satisfies Record<keyof PasskeySummary, true>

/** What a verified assertion proved: the passkey, its user, and the RFC 8176 methods. */
export interface VerifiedAssertion {
  passkeyId: string
  userId: string
  /** [hwk or swk, user]: a key (synced keys are software-secured) and the user's verification. */
  amr: string[]
}

/**
 * Passkeys as one kind of the user's factors (SecondFactors): a user with a
 * passkey steps up with it rather than the password, and an admin's reset of
 * a user's factors removes them (a lost or stolen device).
 */
export const PASSKEY_FACTOR_STORE: SecondFactorStore = {
  name: 'passkeys',
  loginFactor: 'passkey',
  has: async (db, userId) => (await db.passkey.count({ where: { userId }, take: 1 })) > 0,
  remove: async (tx, userId) => (await tx.passkey.deleteMany({ where: { userId } })).count,
}

export class Passkeys {
  constructor (
    private readonly db: PrismaClient,
    private readonly challenges: WebAuthnChallenges,
    private readonly relyingParty: WebAuthnConfig,
    private readonly deps: {
      /** Ends the sessions a deleted passkey signed in to. */
      sessions: Pick<SessionStore, 'revoke'>
      notices: CredentialNotices
    },
    private readonly options: {
      now: () => number
      /** The sign-in refuses accounts whose address is unverified (REQUIRE_EMAIL_VERIFICATION), as the password grant does. */
      requireEmailVerification?: boolean
      /** Told of every passkey checked as a second factor (a login's second step, a step-up) and whether it was accepted: the metrics. */
      secondFactorChecked?: (factor: 'passkey', accepted: boolean) => void
    }
  ) {}

  // ---- Registration -------------------------------------------------------

  /**
   * The options of a registration ceremony for a signed-in user (§5.4): a
   * discoverable credential with user verification, no attestation, none
   * of the user's existing credentials again. The user handle is the user's
   * random one (made at the first registration), never the address or the id.
   */
  async registrationOptions (userId: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const user = await this.db.user.findUnique({ where: { id: userId }, select: { email: true, emailVerifiedAt: true } })
    if (!user) throw new DomainError('account_changed', 'the account no longer exists')
    refuseUnverified(user)
    const existing = await this.db.passkey.findMany({ where: { userId }, select: { credentialId: true, transports: true } })
    if (existing.length >= MAX_PASSKEYS_PER_USER) {
      throw new DomainError('passkey_limit', `a user may hold at most ${MAX_PASSKEYS_PER_USER} passkeys; delete one first`)
    }
    const userHandle = await this.userHandle(userId)
    const challenge = await this.challenges.issue('registration', userId)
    return generateRegistrationOptions({
      rpName: this.relyingParty.rpName,
      rpID: this.relyingParty.rpId,
      userName: user.email,
      userDisplayName: user.email,
      userID: userHandle,
      challenge: isoBase64URL.toBuffer(challenge),
      timeout: CHALLENGE_TTL_SECONDS * 1000,
      attestationType: 'none',
      excludeCredentials: existing.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports as AuthenticatorTransport[] })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      supportedAlgorithmIDs: ALGORITHMS,
    })
  }

  /** The user's WebAuthn user handle, made once: of two concurrent first registrations, one handle wins. */
  private async userHandle (userId: string): Promise<Uint8Array<ArrayBuffer>> {
    await this.db.user.updateMany({ where: { id: userId, webauthnUserHandle: null }, data: { webauthnUserHandle: new Uint8Array(randomBytes(32)) } })
    const user = await this.db.user.findUniqueOrThrow({ where: { id: userId }, select: { webauthnUserHandle: true } })
    return new Uint8Array(user.webauthnUserHandle!)
  }

  /**
   * Completes a registration (§7.1): spends the user's registration
   * challenge, verifies the response against the configured origins and RP
   * ID with user verification, and stores the credential. Every refusal is
   * audited.
   */
  async register (input: { userId: string; name?: string | undefined; response: RegistrationResponseJSON; ip?: string | undefined }): Promise<PasskeySummary> {
    const { userId, response, ip } = input
    const refuse = async (code: 'passkey_challenge_invalid' | 'passkey_rejected' | 'passkey_exists' | 'passkey_limit', message: string): Promise<never> => {
      await recordAuditEvent(this.db, { type: 'passkey_registration_failed', userId, actorId: userId, ip, details: { reason: code, message } })
      throw new DomainError(code, message)
    }
    const owner = await this.db.user.findUnique({ where: { id: userId }, select: { emailVerifiedAt: true } })
    if (!owner) throw new DomainError('account_changed', 'the account no longer exists')
    refuseUnverified(owner)
    const challenge = challengeOf(response.response.clientDataJSON)
    if (challenge === null || !(await this.challenges.spend(challenge, 'registration', userId))) {
      return refuse('passkey_challenge_invalid', 'the registration challenge is unknown, used, expired or not yours: ask for new options')
    }
    let verification
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.relyingParty.origins,
        expectedRPID: this.relyingParty.rpId,
        requireUserPresence: true,
        requireUserVerification: true,
        supportedAlgorithmIDs: ALGORITHMS,
      })
    } catch (error) {
      return refuse('passkey_rejected', `the passkey was not accepted: ${(error as Error).message}`)
    }
    if (!verification.verified) return refuse('passkey_rejected', 'the passkey was not accepted')
    const { credential, credentialDeviceType, credentialBackedUp, aaguid } = verification.registrationInfo
    const name = input.name?.trim() || DEFAULT_NAME
    try {
      const created = await this.db.$transaction(async (tx) => {
        if ((await tx.passkey.count({ where: { userId } })) >= MAX_PASSKEYS_PER_USER) return null
        const passkey = await tx.passkey.create({
          data: {
            userId,
            credentialId: credential.id,
            publicKey: new Uint8Array(credential.publicKey),
            counter: BigInt(credential.counter),
            transports: (response.response.transports ?? []).filter((transport) => KNOWN_TRANSPORTS.has(transport)),
            deviceType: credentialDeviceType,
            backedUp: credentialBackedUp,
            aaguid,
            name,
            createdAt: new Date(this.options.now()),
          },
          select: PASSKEY_SELECT,
        })
        await recordAuditEvent(tx, { type: 'passkey_registered', userId, actorId: userId, ip, details: { passkeyId: passkey.id, deviceType: credentialDeviceType, aaguid } })
        await this.deps.notices.added(tx, { userId, kind: 'passkey', name })
        return passkey
      })
      if (created) this.deps.notices.committed()
      return created ?? (await refuse('passkey_limit', `a user may hold at most ${MAX_PASSKEYS_PER_USER} passkeys; delete one first`))
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        return refuse('passkey_exists', 'this passkey is already registered')
      }
      throw error
    }
  }

  // ---- Management ---------------------------------------------------------

  /** The user's passkeys, oldest first. */
  async list (userId: string): Promise<PasskeySummary[]> {
    return this.db.passkey.findMany({ where: { userId }, select: PASSKEY_SELECT, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
  }

  /** Renames one of the user's passkeys; another user's id is not found. */
  async rename (input: { userId: string; passkeyId: string; name: string; ip?: string | undefined }): Promise<PasskeySummary> {
    const name = input.name.trim()
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.passkey.updateMany({ where: { id: input.passkeyId, userId: input.userId }, data: { name } })
      if (count === 0) throw new DomainError('passkey_not_found', 'no passkey of yours has this id')
      await recordAuditEvent(tx, { type: 'passkey_renamed', userId: input.userId, actorId: input.userId, ip: input.ip, details: { passkeyId: input.passkeyId } })
      return tx.passkey.findUniqueOrThrow({ where: { id: input.passkeyId }, select: PASSKEY_SELECT })
    })
  }

  /**
   * Deletes one of the user's passkeys and ends the sessions it signed in
   * to (a lost or stolen device must not stay signed in); another user's id
   * is not found. The ids of the sessions ended.
   */
  async delete (input: { userId: string; passkeyId: string; ip?: string | undefined }): Promise<string[]> {
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.passkey.deleteMany({ where: { id: input.passkeyId, userId: input.userId } })
      if (count === 0) throw new DomainError('passkey_not_found', 'no passkey of yours has this id')
      const revoked = await this.deps.sessions.revoke({ userId: input.userId, passkeyIds: [input.passkeyId] }, 'passkey_removed', tx)
      await recordAuditEvent(tx, {
        type: 'passkey_deleted',
        userId: input.userId,
        actorId: input.userId,
        ip: input.ip,
        details: { passkeyId: input.passkeyId, revokedSessions: revoked.length },
      })
      return revoked
    })
  }

  // ---- Authentication -----------------------------------------------------

  /**
   * The options of a sign-in (§5.5): no allowCredentials, so the
   * authenticator offers its discoverable credentials for this RP ID, and
   * user verification required. The challenge is bound to no user.
   */
  async authenticationOptions (): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const challenge = await this.challenges.issue('authentication', null)
    return this.requestOptions(challenge, [])
  }

  /**
   * The options of a step-up by a signed-in user: the user's own passkeys in
   * allowCredentials, the challenge bound to the user. 404 passkey_not_found
   * when the user has none.
   */
  async stepUpOptions (userId: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const passkeys = await this.db.passkey.findMany({ where: { userId }, select: { credentialId: true, transports: true } })
    if (passkeys.length === 0) throw new DomainError('passkey_not_found', 'you have no passkey')
    const challenge = await this.challenges.issue('step_up', userId)
    return this.requestOptions(challenge, passkeys.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports })))
  }

  /**
   * The options of a password login's second step with a passkey: the
   * user's passkeys in allowCredentials, the challenge bound to the user
   * with its own purpose (a sign-in's or a step-up's challenge does not
   * serve here). Null when the user has none.
   */
  async secondFactorOptions (userId: string): Promise<PublicKeyCredentialRequestOptionsJSON | null> {
    const passkeys = await this.db.passkey.findMany({ where: { userId }, select: { credentialId: true, transports: true } })
    if (passkeys.length === 0) return null
    const challenge = await this.challenges.issue('second_factor', userId)
    return this.requestOptions(challenge, passkeys.map((passkey) => ({ id: passkey.credentialId, transports: passkey.transports })))
  }

  /** For a password login's second step: an assertion by one of `userId`'s passkeys over a challenge of secondFactorOptions(userId). */
  async verifySecondFactor (userId: string, response: AuthenticationResponseJSON, ip?: string): Promise<VerifiedAssertion> {
    return this.countedSecondFactor(this.verifyAssertion(response, 'second_factor', userId, ip))
  }

  /** A second-factor check's outcome, told to secondFactorChecked: accepted, or refused (invalid_grant); other errors are no answer. */
  private async countedSecondFactor (check: Promise<VerifiedAssertion>): Promise<VerifiedAssertion> {
    try {
      const assertion = await check
      this.options.secondFactorChecked?.('passkey', true)
      return assertion
    } catch (error) {
      if (error instanceof DomainError && error.code === 'invalid_grant') this.options.secondFactorChecked?.('passkey', false)
      throw error
    }
  }

  private requestOptions (challenge: string, allowCredentials: { id: string; transports: string[] }[]): Promise<PublicKeyCredentialRequestOptionsJSON> {
    // Stored transports were filtered to KNOWN_TRANSPORTS at registration.
    return generateAuthenticationOptions({
      rpID: this.relyingParty.rpId,
      challenge: isoBase64URL.toBuffer(challenge),
      timeout: CHALLENGE_TTL_SECONDS * 1000,
      userVerification: 'required',
      allowCredentials: allowCredentials.map((credential) => ({
        id: credential.id,
        transports: credential.transports as AuthenticatorTransport[],
      })),
    })
  }

  /**
   * A sign-in with a passkey as the first factor (the passkey grant):
   * checks the assertion (`verifyAssertion`), then the account as the
   * password grant does: disabled answers invalid_grant, an unverified
   * address under REQUIRE_EMAIL_VERIFICATION email_not_verified. Returns the
   * login Accounts.startSession opens a session for, and its amr (with mfa).
   */
  async signIn (response: AuthenticationResponseJSON, ip?: string): Promise<{ login: VerifiedLogin; amr: string[]; passkeyId: string }> {
    const assertion = await this.verifyAssertion(response, 'authentication', null, ip)
    const user = await this.db.user.findUnique({ where: { id: assertion.userId }, select: { ...PUBLIC_USER_SELECT, passwordHash: true } })
    if (!user || user.disabled) {
      await recordAuditEvent(this.db, { type: 'login_failed', userId: assertion.userId, ip, details: { reason: 'user_disabled', method: 'passkey' } })
      throw new DomainError('invalid_grant', 'the passkey was not accepted')
    }
    if (this.options.requireEmailVerification && user.emailVerifiedAt === null) {
      await recordAuditEvent(this.db, { type: 'login_failed', userId: user.id, ip, details: { reason: 'email_not_verified', method: 'passkey' } })
      throw new DomainError('email_not_verified', 'confirm your email address first: open the link we sent, or reset your password')
    }
    const { passwordHash, ...publicUser } = user
    return { login: { user: publicUser, verified: { role: user.role, passwordHash } }, amr: combineMethods([], assertion.amr), passkeyId: assertion.passkeyId }
  }

  /**
   * For the step-up grant: checks that `response` is an assertion by one of
   * `userId`'s passkeys over a challenge from `stepUpOptions(userId)` (spent
   * here, once), with the same checks as a sign-in (origins, RP ID, user
   * verification, signature counter). Returns the methods it proved, to
   * combine with the session's (combineMethods(session.amr, result.amr));
   * throws DomainError invalid_grant otherwise (audited).
   *
   * @example const { amr } = await fastify.passkeys.verifyForUser(session.userId, credential, request.ip)
   */
  async verifyForUser (userId: string, response: AuthenticationResponseJSON, ip?: string): Promise<VerifiedAssertion> {
    return this.countedSecondFactor(this.verifyAssertion(response, 'step_up', userId, ip))
  }

  /**
   * The checks of §7.2, in an order that costs an attacker the most: the
   * challenge is spent first (a response that fails later cannot be
   * retried), then the credential is found and its owner checked, then the
   * library verifies origin, RP ID, flags (UP and UV) and the signature.
   * The counter is checked last, on a validly signed assertion only, so a
   * forgery cannot raise a false clone alarm: it must rise unless both it
   * and the stored one are 0 (§6.1.1), and it is updated only if still below,
   * so of two assertions with one counter value only one is accepted.
   */
  private async verifyAssertion (
    response: AuthenticationResponseJSON,
    purpose: Extract<WebauthnChallengePurpose, 'authentication' | 'step_up' | 'second_factor'>,
    userId: string | null,
    ip: string | undefined
  ): Promise<VerifiedAssertion> {
    const method = { method: 'passkey', ...(purpose === 'step_up' ? { stepUp: true } : purpose === 'second_factor' ? { secondStep: true } : {}) }
    const refuse = async (reason: string, subject: string | null, details: Prisma.InputJsonObject = {}): Promise<never> => {
      await recordAuditEvent(this.db, { type: 'login_failed', userId: subject, ip, details: { reason, ...method, ...details } })
      throw new DomainError('invalid_grant', 'the passkey was not accepted')
    }
    const challenge = challengeOf(response.response.clientDataJSON)
    if (challenge === null || !(await this.challenges.spend(challenge, purpose, userId))) {
      await recordAuditEvent(this.db, { type: 'login_failed', userId, ip, details: { reason: 'passkey_challenge_invalid', ...method } })
      throw new DomainError('invalid_grant', 'the passkey challenge is unknown, used or expired: ask for new options')
    }
    if (response.rawId !== response.id) return refuse('passkey_malformed', userId)
    const passkey = await this.db.passkey.findUnique({
      where: { credentialId: response.id },
      select: { id: true, userId: true, publicKey: true, counter: true, transports: true, user: { select: { webauthnUserHandle: true } } },
    })
    if (!passkey || (userId !== null && passkey.userId !== userId)) return refuse('unknown_passkey', userId)
    // §7.2 step 6: the user handle, when the authenticator returns one, must be the passkey's owner's.
    const handle = response.response.userHandle
    const ownerHandle = passkey.user.webauthnUserHandle && isoBase64URL.fromBuffer(new Uint8Array(passkey.user.webauthnUserHandle))
    if ((handle === undefined && userId === null) || (handle !== undefined && handle !== ownerHandle)) {
      return refuse('passkey_user_handle_mismatch', passkey.userId, { passkeyId: passkey.id })
    }
    let info
    try {
      const verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.relyingParty.origins,
        expectedRPID: this.relyingParty.rpId,
        requireUserVerification: true,
        // 0: the counter is checked below, after the signature, not by the library before it.
        credential: { id: response.id, publicKey: new Uint8Array(passkey.publicKey), counter: 0, transports: passkey.transports },
      })
      if (!verification.verified) return await refuse('passkey_verification_failed', passkey.userId, { passkeyId: passkey.id, message: 'the signature does not verify' })
      info = verification.authenticationInfo
    } catch (error) {
      if (error instanceof DomainError) throw error
      return refuse('passkey_verification_failed', passkey.userId, { passkeyId: passkey.id, message: (error as Error).message })
    }
    const presented = BigInt(info.newCounter)
    const regressed = async (): Promise<never> => {
      await recordAuditEvent(this.db, {
        type: 'passkey_counter_regressed',
        userId: passkey.userId,
        ip,
        details: { passkeyId: passkey.id, storedCounter: passkey.counter.toString(), presentedCounter: presented.toString(), ...method },
      })
      throw new DomainError('invalid_grant', 'the passkey was not accepted: its signature counter did not increase (a cloned authenticator?)')
    }
    if ((presented > 0n || passkey.counter > 0n) && presented <= passkey.counter) return regressed()
    const { count } = await this.db.passkey.updateMany({
      where: { id: passkey.id, counter: presented === 0n ? 0n : { lt: presented } },
      data: { counter: presented, backedUp: info.credentialBackedUp, lastUsedAt: new Date(this.options.now()) },
    })
    if (count === 0) return regressed()
    return {
      passkeyId: passkey.id,
      userId: passkey.userId,
      amr: [info.credentialBackedUp ? AMR.softwareKey : AMR.hardwareKey, AMR.user],
    }
  }
}

/**
 * A passkey signs in without the password, so it is not added to an account
 * whose address nobody has proven: whoever typed the address at sign-up
 * could otherwise keep a way into the account its owner later claims by a
 * password reset (account pre-hijacking).
 */
function refuseUnverified (user: { emailVerifiedAt: Date | null }): void {
  if (user.emailVerifiedAt === null) {
    throw new DomainError('email_verification_required', 'confirm your email address before adding a passkey: open the link we sent, or ask for a new one')
  }
}

/** The challenge a response's clientDataJSON carries, if it is one this service could have made. */
function challengeOf (clientDataJSON: string): string | null {
  try {
    const { challenge } = decodeClientDataJSON(clientDataJSON)
    return typeof challenge === 'string' && CHALLENGE.test(challenge) ? challenge : null
  } catch {
    return null
  }
}
