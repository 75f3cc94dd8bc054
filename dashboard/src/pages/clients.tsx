import { useEffect, useRef, useState } from 'preact/hooks'
import { client, type ClientMetadata, type OauthClient } from '../api.js'
import { Table } from '../table.js'
import { ActionButton, Empty, ErrorBox, LoadView, useLoad, when } from '../ui.js'

/**
 * #/clients: the apps that sign users in through the service (DESIGN §3.14):
 * register one, change it, rotate a confidential client's secret, delete
 * it. A secret is in the service's answer only once, so it is shown here
 * once, until the admin dismisses it. Writes may ask for a recent sign-in
 * first: the client's onStepUpRequired opens the step-up prompt and retries.
 */

type AuthMethod = OauthClient['token_endpoint_auth_method']
type ApplicationType = OauthClient['application_type']

/** The grants a registered client may have (the service refuses the others). */
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const

const AUTH_METHODS: { value: AuthMethod; label: string }[] = [
  { value: 'client_secret_basic', label: 'Confidential (client_secret_basic)' },
  { value: 'client_secret_post', label: 'Confidential (client_secret_post)' },
  { value: 'none', label: 'Public (none)' },
]

/** The form's fields, as typed (URIs one per line, scopes space-separated). */
interface Draft {
  name: string
  redirectUris: string
  postLogoutRedirectUris: string
  authMethod: AuthMethod
  applicationType: ApplicationType
  firstParty: boolean
  grantTypes: string[]
  scope: string
}

const NEW_CLIENT: Draft = {
  name: '',
  redirectUris: '',
  postLogoutRedirectUris: '',
  authMethod: 'client_secret_basic',
  applicationType: 'web',
  firstParty: false,
  grantTypes: ['authorization_code', 'refresh_token'],
  scope: '',
}

function draftOf (registered: OauthClient): Draft {
  return {
    name: registered.client_name,
    redirectUris: registered.redirect_uris.join('\n'),
    postLogoutRedirectUris: registered.post_logout_redirect_uris.join('\n'),
    authMethod: registered.token_endpoint_auth_method,
    applicationType: registered.application_type,
    firstParty: registered.first_party,
    grantTypes: registered.grant_types,
    scope: registered.scope,
  }
}

const lines = (text: string) => text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean)
const words = (text: string) => text.split(/\s+/).filter(Boolean)
const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((item, i) => item === b[i])
const sameSet = (a: string[], b: string[]) => sameList([...new Set(a)].sort(), [...new Set(b)].sort())

function registrationOf (draft: Draft): ClientMetadata {
  return {
    client_name: draft.name.trim(),
    redirect_uris: lines(draft.redirectUris),
    post_logout_redirect_uris: lines(draft.postLogoutRedirectUris),
    token_endpoint_auth_method: draft.authMethod,
    application_type: draft.applicationType,
    first_party: draft.firstParty,
    grant_types: draft.grantTypes,
    scope: words(draft.scope).join(' '),
  }
}

/**
 * The fields the admin changed, and only those: a configured client's type,
 * first_party and grants are configuration's (the service refuses a change),
 * and a PATCH must name at least one field.
 */
function changesOf (draft: Draft, original: OauthClient): Partial<ClientMetadata> {
  const next = registrationOf(draft)
  const patch: Partial<ClientMetadata> = {}
  if (next.client_name !== original.client_name) patch.client_name = next.client_name
  if (!sameList(next.redirect_uris, original.redirect_uris)) patch.redirect_uris = next.redirect_uris
  if (!sameList(next.post_logout_redirect_uris ?? [], original.post_logout_redirect_uris)) patch.post_logout_redirect_uris = next.post_logout_redirect_uris
  if (next.application_type !== original.application_type) patch.application_type = next.application_type
  if (!sameSet(words(next.scope ?? ''), words(original.scope))) patch.scope = next.scope
  if (!original.configured) {
    if (next.token_endpoint_auth_method !== original.token_endpoint_auth_method) patch.token_endpoint_auth_method = next.token_endpoint_auth_method
    if (next.first_party !== original.first_party) patch.first_party = next.first_party
    if (!sameSet(next.grant_types ?? [], original.grant_types)) patch.grant_types = next.grant_types
  }
  return patch
}

const typeOf = (registered: OauthClient) =>
  registered.token_endpoint_auth_method === 'none' ? 'public' : `confidential (${registered.token_endpoint_auth_method})`

/** A secret the service just made, and why: it is never shown again. */
interface ShownSecret {
  name: string
  clientId: string
  secret: string
  rotated: boolean
}

export function ClientsPage () {
  const [load, reload] = useLoad(() => client.request<{ items: OauthClient[] }>('/admin/clients'), 'clients')
  // The form: a new client, or the client being changed.
  const [editing, setEditing] = useState<{ original: OauthClient | null } | null>(null)
  const [shown, setShown] = useState<ShownSecret | null>(null)
  // What the last write did, when no secret says it already.
  const [notice, setNotice] = useState<string | null>(null)
  const showSecret = (registered: OauthClient, rotated: boolean) => {
    if (registered.client_secret) setShown({ name: registered.client_name, clientId: registered.client_id, secret: registered.client_secret, rotated })
  }
  return (
    <section>
      <h2>Clients</h2>
      <p class='count'>The apps that sign users in with this service (OAuth 2.1 and OpenID Connect).</p>
      {shown && <ClientSecret shown={shown} onDone={() => setShown(null)} />}
      {notice && !shown && (
        <p class='notice' role='status' data-testid='clients-notice'>
          {notice}
        </p>
      )}
      {editing
        ? (
          <ClientForm
            key={editing.original?.client_id ?? 'new'}
            original={editing.original}
            onCancel={() => setEditing(null)}
            onSaved={(saved) => {
              setNotice(`${editing.original ? 'Saved' : 'Registered'} ${saved.client_name} (${saved.client_id}).`)
              setEditing(null)
              showSecret(saved, false)
              reload()
            }}
          />
          )
        : (
          <div class='actions'>
            <button
              type='button'
              onClick={() => {
                setNotice(null)
                setEditing({ original: null })
              }}
            >
              Register a client
            </button>
          </div>
          )}
      <LoadView load={load} what='clients' retry={reload}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No clients yet.</Empty>
              )
            : (
              <Table
                testid='clients'
                label='Clients'
                rows={items}
                rowKey={(registered) => registered.client_id}
                rowAttributes={(registered) => ({ 'data-client-id': registered.client_id })}
                columns={[
                  {
                    header: 'Name',
                    cell: (registered) => (
                      <>
                        {registered.client_name}
                        {registered.configured && <span class='tag'>configured</span>}
                      </>
                    ),
                  },
                  { header: 'Client ID', cell: (registered) => <code>{registered.client_id}</code> },
                  { header: 'Type', cell: typeOf },
                  { header: 'Application', cell: (registered) => registered.application_type },
                  { header: 'First party', cell: (registered) => (registered.first_party ? 'yes' : 'no') },
                  { header: 'Grant types', class: 'ua', cell: (registered) => registered.grant_types.join(', ') || '—' },
                  {
                    header: 'Redirect URIs',
                    class: 'ua',
                    cell: (registered) =>
                      registered.redirect_uris.length === 0
                        ? '—'
                        : <ul class='plain'>{registered.redirect_uris.map((uri) => <li key={uri}>{uri}</li>)}</ul>,
                  },
                  { header: 'Created', cell: (registered) => when(registered.created_at) },
                  {
                    header: 'Actions',
                    cell: (registered) => (
                      <span class='row-actions'>
                        <button
                          type='button'
                          aria-label={`Edit ${registered.client_name}`}
                          onClick={() => {
                            setNotice(null)
                            setEditing({ original: registered })
                          }}
                        >
                          Edit
                        </button>
                        {registered.token_endpoint_auth_method !== 'none' && (
                          <ActionButton
                            label={`Rotate the secret of ${registered.client_name}`}
                            confirm={`Rotate the secret of ${registered.client_name}? The current secret stops working at once.`}
                            action={async () => {
                              showSecret(await client.request<OauthClient>(`/admin/clients/${encodeURIComponent(registered.client_id)}/secret`, { method: 'POST' }), true)
                              reload()
                            }}
                          >
                            Rotate secret
                          </ActionButton>
                        )}
                        {/* Configured clients are configuration's: the service refuses to delete them (409). */}
                        {!registered.configured && (
                          <ActionButton
                            class='danger'
                            label={`Delete ${registered.client_name}`}
                            confirm={`Delete ${registered.client_name}? Its users are signed out of it and their consents end.`}
                            action={async () => {
                              await client.request(`/admin/clients/${encodeURIComponent(registered.client_id)}`, { method: 'DELETE' })
                              if (editing?.original?.client_id === registered.client_id) setEditing(null)
                              if (shown?.clientId === registered.client_id) setShown(null)
                              setNotice(`Deleted ${registered.client_name}.`)
                              reload()
                            }}
                          >
                            Delete
                          </ActionButton>
                        )}
                      </span>
                    ),
                  },
                ]}
              />
              )}
      </LoadView>
    </section>
  )
}

/** The secret the service just made, this once, with a copy button; focused, so it is seen (and read) at once. */
function ClientSecret ({ shown, onDone }: { shown: ShownSecret; onDone: () => void }) {
  const box = useRef<HTMLDivElement | null>(null)
  const [copied, setCopied] = useState(false)
  useEffect(() => {
    setCopied(false)
    box.current?.focus()
  }, [shown])
  return (
    <div class='created-key' role='status' tabIndex={-1} ref={box} data-testid='client-secret'>
      <p>
        <strong>Store this client secret now: it will not be shown again.</strong> It is the secret of <strong>{shown.name}</strong> (
        <code>{shown.clientId}</code>){shown.rotated ? '; the previous secret has stopped working.' : '.'}
      </p>
      <code class='secret'>{shown.secret}</code>
      <div class='inline-form'>
        <button
          type='button'
          onClick={async () => {
            await navigator.clipboard.writeText(shown.secret)
            setCopied(true)
          }}
        >
          {copied ? 'Copied' : 'Copy secret'}
        </button>
        <button type='button' onClick={onDone}>
          I have stored it
        </button>
      </div>
    </div>
  )
}

/** Registers a client (original null) or changes one, sending only what changed. */
function ClientForm ({ original, onSaved, onCancel }: { original: OauthClient | null; onSaved: (saved: OauthClient) => void; onCancel: () => void }) {
  const [draft, setDraft] = useState<Draft>(original ? draftOf(original) : NEW_CLIENT)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [unchanged, setUnchanged] = useState(false)
  const nameInput = useRef<HTMLInputElement | null>(null)
  // The form appears above the list: bring focus (and the view) to it.
  useEffect(() => nameInput.current?.focus(), [])
  const configured = original?.configured ?? false
  const update = (fields: Partial<Draft>) => {
    setUnchanged(false)
    setDraft((current) => ({ ...current, ...fields }))
  }
  const toggleGrant = (grant: string) =>
    update({ grantTypes: draft.grantTypes.includes(grant) ? draft.grantTypes.filter((g) => g !== grant) : [...draft.grantTypes, grant] })
  const title = original ? `Edit ${original.client_name}` : 'Register a client'

  async function submit (event: Event) {
    event.preventDefault()
    setError(null)
    let request: Promise<OauthClient>
    if (original) {
      const patch = changesOf(draft, original)
      if (Object.keys(patch).length === 0) {
        setUnchanged(true)
        return
      }
      request = client.request<OauthClient>(`/admin/clients/${encodeURIComponent(original.client_id)}`, { method: 'PATCH', json: patch })
    } else {
      request = client.request<OauthClient>('/admin/clients', { method: 'POST', json: registrationOf(draft) })
    }
    setBusy(true)
    try {
      onSaved(await request)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class='client-form' aria-label={title} onSubmit={submit} data-testid='client-form'>
      <h3>{title}</h3>
      {original && (
        <p class='count'>
          Client ID <code>{original.client_id}</code>
        </p>
      )}
      <div class='field'>
        <label for='client-name'>Name</label>
        <input id='client-name' ref={nameInput} name='client_name' required maxLength={100} value={draft.name} onInput={(e) => update({ name: e.currentTarget.value })} />
      </div>
      <div class='field'>
        <label for='client-redirect-uris'>Redirect URIs</label>
        <textarea
          id='client-redirect-uris'
          name='redirect_uris'
          rows={3}
          aria-describedby='client-redirect-uris-hint'
          value={draft.redirectUris}
          onInput={(e) => update({ redirectUris: e.currentTarget.value })}
        />
        <small id='client-redirect-uris-hint' class='hint'>
          One per line, matched exactly.
        </small>
      </div>
      <div class='field'>
        <label for='client-post-logout-uris'>Post-logout redirect URIs</label>
        <textarea
          id='client-post-logout-uris'
          name='post_logout_redirect_uris'
          rows={2}
          aria-describedby='client-post-logout-uris-hint'
          value={draft.postLogoutRedirectUris}
          onInput={(e) => update({ postLogoutRedirectUris: e.currentTarget.value })}
        />
        <small id='client-post-logout-uris-hint' class='hint'>
          One per line; optional.
        </small>
      </div>
      <div class='field'>
        <label for='client-type'>Client type</label>
        <select
          id='client-type'
          name='token_endpoint_auth_method'
          disabled={configured}
          aria-describedby='client-type-hint'
          value={draft.authMethod}
          onChange={(e) => {
            const authMethod = e.currentTarget.value as AuthMethod
            // A public client cannot act for itself (RFC 6749 §4.4): the service refuses the pair.
            update({ authMethod, ...(authMethod === 'none' ? { grantTypes: draft.grantTypes.filter((g) => g !== 'client_credentials') } : {}) })
          }}
        >
          {AUTH_METHODS.map((method) => (
            <option key={method.value} value={method.value}>
              {method.label}
            </option>
          ))}
        </select>
        <small id='client-type-hint' class='hint'>
          {configured
            ? "A configured client's type is set by the service's configuration."
            : 'A confidential client (a server) gets a secret, shown once; a public one (a browser or mobile app) has none and uses PKCE alone.'}
        </small>
      </div>
      <div class='field'>
        <label for='client-application-type'>Application type</label>
        <select
          id='client-application-type'
          name='application_type'
          aria-describedby='client-application-type-hint'
          value={draft.applicationType}
          onChange={(e) => update({ applicationType: e.currentTarget.value as ApplicationType })}
        >
          <option value='web'>web</option>
          <option value='native'>native</option>
        </select>
        <small id='client-application-type-hint' class='hint'>
          Native: loopback redirect URIs on any port and private-use schemes (RFC 8252).
        </small>
      </div>
      <div class='field'>
        <label class='check'>
          <input type='checkbox' name='first_party' disabled={configured} checked={draft.firstParty} onChange={(e) => update({ firstParty: e.currentTarget.checked })} />{' '}
          First party
        </label>
        <small class='hint'>A first-party app never asks its users for consent.</small>
      </div>
      {configured
        ? (
          <p class='field'>
            Grant types: {original!.grant_types.join(', ')} <small class='hint'>(set by configuration)</small>
          </p>
          )
        : (
          <fieldset class='field'>
            <legend>Grant types</legend>
            {GRANT_TYPES.map((grant) => (
              <label key={grant} class='check'>
                <input
                  type='checkbox'
                  name='grant_types'
                  value={grant}
                  checked={draft.grantTypes.includes(grant)}
                  disabled={grant === 'client_credentials' && draft.authMethod === 'none'}
                  onChange={() => toggleGrant(grant)}
                />{' '}
                {grant}
              </label>
            ))}
          </fieldset>
          )}
      <div class='field'>
        <label for='client-scope'>Scope</label>
        <input id='client-scope' name='scope' aria-describedby='client-scope-hint' value={draft.scope} onInput={(e) => update({ scope: e.currentTarget.value })} />
        <small id='client-scope-hint' class='hint'>
          The API scopes it may ask for, space-separated; openid, profile, email and offline_access need no listing.
        </small>
      </div>
      <div class='actions'>
        <button type='submit' disabled={busy || (!configured && draft.grantTypes.length === 0)}>
          {busy ? 'Saving…' : original ? 'Save changes' : 'Register client'}
        </button>
        <button type='button' onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
      {unchanged && (
        <p class='notice' role='status'>
          Nothing changed.
        </p>
      )}
      {error !== null && <ErrorBox error={error} />}
    </form>
  )
}
