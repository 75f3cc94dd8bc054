import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isoCBOR } from '@simplewebauthn/server/helpers'
import { markAddressVerified } from './users.js'

/**
 * A software WebAuthn authenticator for tests that drive the service through
 * app.inject (the browser tests use Chromium's virtual authenticator
 * instead): ES256 credentials, "none" attestation, discoverable, with user
 * verification, built byte for byte as W3C WebAuthn Level 3 §6.1 (authenticator
 * data) and §6.5.4 (attestation object) lay them out. Each option a test
 * needs to break one rule (flags, origin, RP ID, counter, challenge) is a knob.
 */

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_BE = 0x08
const FLAG_BS = 0x10
const FLAG_AT = 0x40

export interface SoftCredential {
  id: Buffer
  privateKey: KeyObject
  /** COSE_Key (RFC 9053 §7.1.1, EC2 P-256). */
  publicKeyCose: Uint8Array
  userHandle: string
  counter: number
}

export interface CeremonyOptions {
  /** The origin clientDataJSON names (default: the authenticator's). */
  origin?: string
  /** The RP ID whose hash the authenticator data carries (default: the options'). */
  rpId?: string
  /** The challenge clientDataJSON carries (default: the options'). */
  challenge?: string
  /** clientDataJSON's type (default webauthn.create / webauthn.get). */
  type?: string
  userVerified?: boolean
  /** The signature counter to report (default: the credential's, plus one). */
  counter?: number
  /** Leave the user handle out of an assertion. */
  omitUserHandle?: boolean
  userHandle?: string
}

const b64url = (bytes: Uint8Array | Buffer) => Buffer.from(bytes).toString('base64url')
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest()

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = []

  constructor (
    readonly origin: string,
    private readonly flags: { backupEligible?: boolean; backedUp?: boolean; /** Report 0 always, as most synced passkeys do. */ zeroCounter?: boolean } = {}
  ) {}

  private authenticatorData (rpId: string, flags: number, counter: number, attested?: SoftCredential): Buffer {
    const counterBytes = Buffer.alloc(4)
    counterBytes.writeUInt32BE(counter)
    const parts: Uint8Array[] = [sha256(rpId), Buffer.from([flags]), counterBytes]
    if (attested) {
      const length = Buffer.alloc(2)
      length.writeUInt16BE(attested.id.length)
      parts.push(Buffer.alloc(16), length, attested.id, Buffer.from(attested.publicKeyCose))
    }
    return Buffer.concat(parts)
  }

  private baseFlags (options: CeremonyOptions): number {
    let flags = FLAG_UP
    if (options.userVerified ?? true) flags |= FLAG_UV
    if (this.flags.backupEligible) flags |= FLAG_BE
    if (this.flags.backedUp) flags |= FLAG_BS
    return flags
  }

  private clientData (type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }))
  }

  /** navigator.credentials.create() over `creation` (PublicKeyCredentialCreationOptionsJSON), as RegistrationResponseJSON. */
  create (creation: { challenge: string; rp: { id?: string }; user: { id: string } }, options: CeremonyOptions & { reuse?: SoftCredential } = {}) {
    const credential = options.reuse ?? this.newCredential(creation.user.id)
    const rpId = options.rpId ?? creation.rp.id!
    const authData = this.authenticatorData(rpId, this.baseFlags(options) | FLAG_AT, credential.counter, credential)
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', new Uint8Array(authData)],
    ]) as Parameters<typeof isoCBOR.encode>[0])
    if (!options.reuse) this.credentials.push(credential)
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key' as const,
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
      response: {
        clientDataJSON: b64url(this.clientData(options.type ?? 'webauthn.create', options.challenge ?? creation.challenge, options.origin ?? this.origin)),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
      },
    }
  }

  private newCredential (userHandle: string): SoftCredential {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const cose = isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
    ]))
    return { id: randomBytes(16), privateKey, publicKeyCose: cose, userHandle, counter: 0 }
  }

  /**
   * navigator.credentials.get() over `request` (PublicKeyCredentialRequestOptionsJSON)
   * with `credential` (default: the newest), as AuthenticationResponseJSON.
   * The credential's counter advances to what is reported.
   */
  get (request: { challenge: string; rpId?: string }, options: CeremonyOptions & { credential?: SoftCredential } = {}) {
    const credential = options.credential ?? this.credentials.at(-1)!
    const counter = options.counter ?? (this.flags.zeroCounter ? 0 : credential.counter + 1)
    credential.counter = counter
    const authData = this.authenticatorData(options.rpId ?? request.rpId!, this.baseFlags(options), counter)
    const clientDataJSON = this.clientData(options.type ?? 'webauthn.get', options.challenge ?? request.challenge, options.origin ?? this.origin)
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey)
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key' as const,
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(options.omitUserHandle ? {} : { userHandle: options.userHandle ?? credential.userHandle }),
      },
    }
  }
}

type App = import('fastify').FastifyInstance

/** The origin of the test apps' ISSUER (http://auth.test): the default WEBAUTHN_ORIGINS include it. */
export const TEST_ORIGIN = 'http://auth.test'

/** The registration options a signed-in user gets; throws unless 200. */
export async function registrationOptions (app: App, accessToken: string) {
  await markAddressVerified(app, accessToken)
  const response = await app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: { authorization: `Bearer ${accessToken}` } })
  if (response.statusCode !== 200) throw new Error(`passkey options: ${response.statusCode} ${response.body}`)
  return response.json() as { challenge: string; rp: { id: string; name: string }; user: { id: string; name: string; displayName: string } } & Record<string, unknown>
}

/** Registers a new credential of `authenticator` for the token's user; throws unless 201. */
export async function registerPasskey (app: App, accessToken: string, authenticator: SoftAuthenticator, name?: string) {
  const options = await registrationOptions(app, accessToken)
  const response = await app.inject({
    method: 'POST',
    url: '/users/me/passkeys',
    headers: { authorization: `Bearer ${accessToken}` },
    payload: { ...(name === undefined ? {} : { name }), response: authenticator.create(options) },
  })
  if (response.statusCode !== 201) throw new Error(`passkey registration: ${response.statusCode} ${response.body}`)
  return response.json() as { id: string; name: string; deviceType: string; backedUp: boolean; transports: string[] }
}

/** The sign-in options (POST /auth/passkey/options); throws unless 200. */
export async function signInOptions (app: App) {
  const response = await app.inject({ method: 'POST', url: '/auth/passkey/options' })
  if (response.statusCode !== 200) throw new Error(`passkey sign-in options: ${response.statusCode} ${response.body}`)
  return response.json() as { challenge: string; rpId: string; userVerification?: string; allowCredentials?: unknown[] } & Record<string, unknown>
}

/** The passkey grant with `credential` (JSON body), answered as it is. */
export function passkeyGrant (app: App, credential: unknown, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/token', headers, payload: { grant_type: 'urn:token-auth:grant-type:passkey', credential, ...extra } as Record<string, unknown> })
}
