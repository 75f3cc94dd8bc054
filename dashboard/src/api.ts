import type { Static } from 'typebox'
import { AuthClient, type SecondFactorList } from '../../src/client/index.js'
import { askForStepUp, connectStepUp } from './step-up.js'
import type { AdminUser as AdminUserSchema, AuditEvent as AuditEventSchema } from '../../src/features/admin/schemas.js'
import type { ApiKeySummary } from '../../src/features/api-keys/schemas.js'
import type { ClientRegistration, RegisteredClient } from '../../src/features/clients/schemas.js'
import type { OutboxMessage as OutboxMessageSchema } from '../../src/features/email/schemas.js'
import type { Page } from '../../src/shared/pagination-schemas.js'
import type { PublicUser, Session as SessionSchema } from '../../src/features/accounts/schemas.js'
import type { DeliveryView, WebhookView } from '../../src/features/webhooks/schemas.js'

/** The dashboard's one client: the `admin` client, cookie transport, same origin. */
export const client = new AuthClient({ clientId: 'admin', transport: 'cookie', requestedWith: 'token-auth-dashboard', onStepUpRequired: askForStepUp })
connectStepUp({
  stepUp: (proof) => ('passkey' in proof ? client.stepUpWithPasskey() : client.stepUp(proof)),
  factors: async () => {
    // Through fetch, not request: a refusal here must not ask for a step-up while the prompt is open.
    const read = async <T>(path: string): Promise<T> => {
      const response = await client.fetch(path, { headers: { accept: 'application/json' } })
      if (!response.ok) throw new Error(`${path}: ${response.status}`)
      return (await response.json()) as T
    }
    const [factors, passkeys] = await Promise.all([read<SecondFactorList>('/users/me/mfa'), read<{ items: unknown[] }>('/users/me/passkeys')])
    return { otp: factors.totp?.confirmed === true, recoveryCodes: factors.recoveryCodes.remaining > 0, passkeys: passkeys.items.length > 0 }
  },
})

/**
 * A sign that this browser has a session, so that a page loaded without one
 * sends no refresh (it would only earn a 400 in the console on every load).
 * The page cannot look for the session itself: the refresh cookie is httpOnly
 * and Path=/auth, invisible to scripts. So the dashboard keeps its own marker,
 * set whenever the client holds a token (a sign-in of any kind, a refresh, a
 * token from another tab) and removed whenever it stops holding one (sign-out
 * here or in another tab, a session that ended).
 *
 * localStorage, not sessionStorage: the cookie outlives the tab (a new tab, a
 * browser restarted with its cookies), and the marker must too, or a new tab
 * would show the sign-in page to an admin who is signed in. The marker holds
 * no secret, only "1": a script on the page learns nothing from it that it
 * could not learn by calling the API. It is a hint: when it is stale (the
 * session expired or was revoked elsewhere) one refresh fails, as before, and
 * clears it; when storage was cleared under a live cookie, the admin signs in
 * again. Where storage is unavailable the dashboard refreshes as it used to.
 */
const SESSION_MARKER = 'token-auth-dashboard:session'

function markerStorage (): Storage | null {
  try {
    return window.localStorage
  } catch {
    return null // blocked storage (a privacy setting)
  }
}

client.onChange(() => {
  try {
    if (client.isSignedIn) markerStorage()?.setItem(SESSION_MARKER, '1')
    else markerStorage()?.removeItem(SESSION_MARKER)
  } catch {
    // A full or read-only storage: the next load refreshes, as it would without a marker.
  }
})

/** Whether a refresh could find a session: false only when the marker says none was left open here. */
export function mayHaveSession (): boolean {
  const storage = markerStorage()
  if (!storage) return true
  try {
    return storage.getItem(SESSION_MARKER) !== null
  } catch {
    return true
  }
}

let pendingEndNotice: string | null = null

/**
 * Runs `work`, a change that may end this very session (deleting the
 * passkey it signed in with): if the session ends meanwhile, the sign-in
 * page says why with `notice` rather than "your session has expired".
 */
export async function mayEndSession<T> (notice: string, work: () => Promise<T>): Promise<T> {
  pendingEndNotice = notice
  try {
    return await work()
  } finally {
    pendingEndNotice = null
  }
}

/** The notice of a session ended by a change `mayEndSession` ran, once. */
export function takeEndNotice (): string | null {
  const notice = pendingEndNotice
  pendingEndNotice = null
  return notice
}

// The end-to-end tests drive refreshes through this handle. It gives a page
// script nothing it could not do with the same-origin API already.
;(window as unknown as { tokenAuthDashboard: unknown }).tokenAuthDashboard = { client }

/** What JSON makes of a value the service describes: Dates travel as RFC 3339 strings. */
type Json<T> = T extends Date ? string : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T

// The wire types are the service's own schemas, as JSON: a field changed there is changed here.
export type User = Json<PublicUser>
/** A user as the admin's list shows them: with the last sign-in and the second factors. */
export type AdminUser = Json<AdminUserSchema>
/** A page of the admin's user list, with the number of users matching in all pages. */
export type UserList = Page<AdminUser> & { total: number }
export type Session = Json<Static<typeof SessionSchema>>
export type AuditEvent = Json<AuditEventSchema>
export type ApiKey = Json<ApiKeySummary>
export type OutboxMessage = Json<OutboxMessageSchema>
/** A client as the admin API shows it, in RFC 7591's names; `client_secret` only in the answer that made the secret. */
export type OauthClient = Json<RegisteredClient>
/** What POST /admin/clients takes, and PATCH in part. */
export type ClientMetadata = Json<ClientRegistration>
/** An app a user let in (DESIGN §3.15): GET /users/me/grants, GET /admin/users/:id/grants. */
export interface Grant {
  clientId: string
  clientName: string
  /** The scopes granted, space-separated. */
  scope: string
  createdAt: string
}
export interface GrantList {
  items: Grant[]
}
/** A webhook endpoint (DESIGN §3.18); `secret` (whsec_…) only in the answer that made it: registration, rotation. */
export type Webhook = Json<WebhookView>
/** One event's delivery to an endpoint, with its last attempts (newest first). */
export type WebhookDelivery = Json<DeliveryView>
export type { Page }

/** The event types the service writes: one list, shared with the service. */
export { AUDIT_EVENT_TYPES } from '../../src/shared/audit.js'

export function query (params: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, value)
  const text = search.toString()
  return text ? `?${text}` : ''
}
