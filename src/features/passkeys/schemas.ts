import Type, { type Static } from 'typebox'

/**
 * Passkeys (W3C WebAuthn Level 3, DESIGN §3.12): the JSON forms of the
 * browser's credentials (§5.1's toJSON(), what @simplewebauthn/browser sends)
 * as this service accepts them, bounded field by field, and a passkey as its
 * owner sees it. Unknown members of a credential are allowed, as browsers add
 * them (extension outputs, new attributes), and ignored.
 */

// As users.ts's, declared here: users.ts imports tokens.ts, which imports this file.
const DateTime = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))

const base64url = (maxLength: number, description?: string) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]*$', minLength: 1, maxLength, ...(description ? { description } : {}) })

/** §5.1: at most 1023 bytes, base64url. */
const CredentialId = base64url(1366, 'the credential id, base64url')

const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })

/** §5.2.1 AuthenticatorAttestationResponseJSON. */
const AttestationResponse = Type.Object(
  {
    clientDataJSON: base64url(4096),
    attestationObject: base64url(16384),
    authenticatorData: Type.Optional(base64url(16384)),
    transports: Type.Optional(Transports),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(base64url(4096)),
  },
  { additionalProperties: true }
)

/** §5.2.2 AuthenticatorAssertionResponseJSON. */
const AssertionResponse = Type.Object(
  {
    clientDataJSON: base64url(4096),
    authenticatorData: base64url(4096),
    signature: base64url(2048),
    userHandle: Type.Optional(base64url(128)),
  },
  { additionalProperties: true }
)

const credentialMembers = {
  id: CredentialId,
  rawId: CredentialId,
  type: Type.Literal('public-key'),
  authenticatorAttachment: Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')])),
  clientExtensionResults: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 16 }),
}

/** RegistrationResponseJSON: what navigator.credentials.create() returns, as JSON. */
export const RegistrationResponseJSON = Type.Object(
  { ...credentialMembers, response: AttestationResponse },
  { additionalProperties: true, title: 'Registration response', description: 'navigator.credentials.create()\'s credential, as PublicKeyCredential.toJSON() (or @simplewebauthn/browser) gives it' }
)

/** AuthenticationResponseJSON: what navigator.credentials.get() returns, as JSON. */
export const AuthenticationResponseJSON = Type.Object(
  { ...credentialMembers, response: AssertionResponse },
  { additionalProperties: true, title: 'Authentication response', description: 'navigator.credentials.get()\'s credential, as PublicKeyCredential.toJSON() (or @simplewebauthn/browser) gives it' }
)
export type AuthenticationResponseJSON = Static<typeof AuthenticationResponseJSON>

/** The most characters a passkey grant's `credential` may have as a JSON string (a form body's). */
export const MAX_CREDENTIAL_JSON_LENGTH = 8192

const PasskeyName = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S', description: 'a name for people: 1 to 64 characters, not only spaces' })

export const PasskeyRegistrationRequest = Type.Object(
  {
    name: Type.Optional(PasskeyName),
    response: RegistrationResponseJSON,
  },
  { additionalProperties: false }
)

export const PasskeyRenameRequest = Type.Object({ name: PasskeyName }, { additionalProperties: false })

export const Passkey = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    deviceType: Type.String({ description: 'singleDevice, or multiDevice: the credential may be synced (backup eligible)' }),
    backedUp: Type.Boolean({ description: 'the credential is backed up (synced) as of its last use' }),
    transports: Type.Array(Type.String()),
    aaguid: Type.String({ description: 'the authenticator model\'s AAGUID (all zeros when it does not say)' }),
    createdAt: DateTime,
    lastUsedAt: Type.Union([DateTime, Type.Null()]),
  },
  { $id: 'Passkey', title: 'Passkey' }
)
export type PasskeySummary = Static<typeof Passkey>

const RelyingParty = Type.Object({ id: Type.Optional(Type.String()), name: Type.String() })
const CredentialDescriptor = Type.Object({ id: Type.String(), type: Type.String({ description: 'public-key' }), transports: Type.Optional(Type.Array(Type.String())) })

/** PublicKeyCredentialCreationOptionsJSON (W3C WebAuthn Level 3 §5.4), for navigator.credentials.create(). */
export const CreationOptionsJSON = Type.Object(
  {
    rp: RelyingParty,
    user: Type.Object({ id: Type.String(), name: Type.String(), displayName: Type.String() }),
    challenge: Type.String(),
    pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.Literal('public-key') })),
    timeout: Type.Optional(Type.Integer()),
    excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
    authenticatorSelection: Type.Optional(Type.Object({
      authenticatorAttachment: Type.Optional(Type.String()),
      residentKey: Type.Optional(Type.String()),
      requireResidentKey: Type.Optional(Type.Boolean()),
      userVerification: Type.Optional(Type.String()),
    })),
    attestation: Type.Optional(Type.String()),
    hints: Type.Optional(Type.Array(Type.String())),
    extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { title: 'Passkey creation options' }
)

/** PublicKeyCredentialRequestOptionsJSON (§5.5), for navigator.credentials.get(). */
export const RequestOptionsJSON = Type.Object(
  {
    challenge: Type.String(),
    timeout: Type.Optional(Type.Integer()),
    rpId: Type.Optional(Type.String()),
    allowCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
    userVerification: Type.Optional(Type.String()),
    hints: Type.Optional(Type.Array(Type.String())),
    extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { title: 'Passkey request options' }
)
