/**
 * Passkeys in the SDK (DESIGN §3.12): the browser half of the WebAuthn
 * ceremonies the service runs. The service hands out options as JSON
 * (PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON, W3C WebAuthn
 * Level 3 §5.4, §5.5) and takes credentials as JSON (§5.1 toJSON()). In
 * between, the platform's own converters are used where the browser has
 * them (PublicKeyCredential.parseCreationOptionsFromJSON,
 * parseRequestOptionsFromJSON, credential.toJSON()), and a small fallback
 * of the same conversions (base64url <-> bytes) elsewhere, so that the SDK
 * keeps no runtime dependency.
 *
 * The browser's own errors come through as they are: a DOMException named
 * NotAllowedError when the user cancels or no passkey matches,
 * InvalidStateError when the authenticator already holds a passkey of the
 * account (registration), SecurityError when the page's origin does not fit
 * the RP ID.
 */

/** A passkey as its owner sees it (GET /users/me/passkeys). */
export interface Passkey {
  id: string
  name: string
  /** singleDevice, or multiDevice (may be synced). */
  deviceType: string
  backedUp: boolean
  transports: string[]
  aaguid: string
  createdAt: string
  lastUsedAt: string | null
}

/** What the SDK needs of its AuthClient (kept structural so this file does not import client.ts). */
export interface PasskeyTransport {
  /** POST without a session (cookie transport: with its CSRF header). */
  publicPost(path: string): Promise<unknown>
  /** An authenticated JSON request. */
  request<T>(path: string, options?: { method?: string; json?: unknown }): Promise<T>
}

type Json = Record<string, unknown>

interface CredentialLike {
  id: string
  rawId: ArrayBuffer
  type: string
  authenticatorAttachment?: string | null
  response: {
    clientDataJSON: ArrayBuffer
    attestationObject?: ArrayBuffer
    authenticatorData?: ArrayBuffer
    signature?: ArrayBuffer
    userHandle?: ArrayBuffer | null
    getTransports?: () => string[]
  }
  getClientExtensionResults?: () => Json
  toJSON?: () => Json
}

interface WebAuthnGlobals {
  navigator?: { credentials?: { create(options: unknown): Promise<unknown>; get(options: unknown): Promise<unknown> } }
  PublicKeyCredential?: {
    parseCreationOptionsFromJSON?: (options: Json) => unknown
    parseRequestOptionsFromJSON?: (options: Json) => unknown
  }
}

function webauthn (): { credentials: { create(options: unknown): Promise<unknown>; get(options: unknown): Promise<unknown> } } {
  const g = globalThis as unknown as WebAuthnGlobals
  if (!g.navigator?.credentials || !g.PublicKeyCredential) {
    throw new Error('passkeys need a browser with WebAuthn (navigator.credentials) in a secure context')
  }
  return { credentials: g.navigator.credentials }
}

/** Signs in with a discoverable passkey: options, navigator.credentials.get(), then the token request's params. */
export async function passkeyAssertion (transport: PasskeyTransport, signal?: AbortSignal): Promise<Json> {
  const options = (await transport.publicPost('/auth/passkey/options')) as Json
  return getCredential(options, signal)
}

/** A step-up's assertion: options naming the signed-in user's passkeys, then navigator.credentials.get(). */
export async function stepUpAssertion (transport: PasskeyTransport, signal?: AbortSignal): Promise<Json> {
  const options = await transport.request<Json>('/users/me/passkeys/step-up-options', { method: 'POST' })
  return getCredential(options, signal)
}

/** navigator.credentials.get() over RequestOptionsJSON, as AuthenticationResponseJSON. */
export async function getCredential (options: Json, signal?: AbortSignal): Promise<Json> {
  const { credentials } = webauthn()
  const parse = (globalThis as unknown as WebAuthnGlobals).PublicKeyCredential?.parseRequestOptionsFromJSON
  const publicKey = parse ? parse(options) : requestOptionsFromJSON(options)
  const credential = (await credentials.get({ publicKey, ...(signal ? { signal } : {}) })) as CredentialLike | null
  if (!credential) throw new Error('no passkey was chosen')
  return credentialToJSON(credential)
}

/** Registers a new passkey for the signed-in user: options, navigator.credentials.create(), then POST /users/me/passkeys. */
export async function registerPasskey (transport: PasskeyTransport, name?: string, signal?: AbortSignal): Promise<Passkey> {
  const options = await transport.request<Json>('/users/me/passkeys/options', { method: 'POST' })
  const { credentials } = webauthn()
  const parse = (globalThis as unknown as WebAuthnGlobals).PublicKeyCredential?.parseCreationOptionsFromJSON
  const publicKey = parse ? parse(options) : creationOptionsFromJSON(options)
  const credential = (await credentials.create({ publicKey, ...(signal ? { signal } : {}) })) as CredentialLike | null
  if (!credential) throw new Error('no passkey was created')
  const response = credentialToJSON(credential)
  return transport.request<Passkey>('/users/me/passkeys', { method: 'POST', json: { ...(name ? { name } : {}), response } })
}

export async function listPasskeys (transport: PasskeyTransport): Promise<Passkey[]> {
  return (await transport.request<{ items: Passkey[] }>('/users/me/passkeys')).items
}

export function renamePasskey (transport: PasskeyTransport, id: string, name: string): Promise<Passkey> {
  return transport.request<Passkey>(`/users/me/passkeys/${encodeURIComponent(id)}`, { method: 'PATCH', json: { name } })
}

export async function deletePasskey (transport: PasskeyTransport, id: string): Promise<void> {
  await transport.request(`/users/me/passkeys/${encodeURIComponent(id)}`, { method: 'DELETE' })
}

// ---- The fallback conversions (WebAuthn Level 3 §5.1, §5.4, §5.5 JSON forms) ----

function toBytes (base64url: string): ArrayBuffer {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/')
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer
}

/** Bytes as base64url without padding (also the PKCE verifier and challenge, first-party.ts). */
export function toBase64url (buffer: ArrayBuffer | Uint8Array): string {
  let binary = ''
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

const descriptors = (list: unknown) => (Array.isArray(list) ? list.map((d: Json) => ({ ...d, id: toBytes(d.id as string) })) : undefined)

function creationOptionsFromJSON (options: Json): Json {
  const user = options.user as Json
  return {
    ...options,
    challenge: toBytes(options.challenge as string),
    user: { ...user, id: toBytes(user.id as string) },
    ...(options.excludeCredentials ? { excludeCredentials: descriptors(options.excludeCredentials) } : {}),
  }
}

function requestOptionsFromJSON (options: Json): Json {
  return {
    ...options,
    challenge: toBytes(options.challenge as string),
    ...(options.allowCredentials ? { allowCredentials: descriptors(options.allowCredentials) } : {}),
  }
}

function credentialToJSON (credential: CredentialLike): Json {
  if (typeof credential.toJSON === 'function') return credential.toJSON()
  const { response } = credential
  const encoded: Json = { clientDataJSON: toBase64url(response.clientDataJSON) }
  if (response.attestationObject) {
    encoded.attestationObject = toBase64url(response.attestationObject)
    encoded.transports = response.getTransports?.() ?? []
  }
  if (response.authenticatorData) encoded.authenticatorData = toBase64url(response.authenticatorData)
  if (response.signature) encoded.signature = toBase64url(response.signature)
  if (response.userHandle) encoded.userHandle = toBase64url(response.userHandle)
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response: encoded,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
    ...(credential.authenticatorAttachment ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
  }
}
