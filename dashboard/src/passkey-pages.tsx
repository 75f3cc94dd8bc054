import { useState } from 'preact/hooks'
import { InvalidCredentialsError, type Passkey } from '../../src/client/index.js'
import { isVerificationRequired, VerifyAddressFirst } from './account-pages.js'
import { client, mayEndSession } from './api.js'
import { TableScroll } from './table.js'
import { ActionButton, describeError, Empty, LoadView, useLoad, when } from './ui.js'

/**
 * Passkeys in the dashboard (DESIGN §3.12): the "Sign in with a passkey"
 * button of the login page, and the signed-in admin's passkeys page
 * (#/passkeys): register, list, rename, delete. The browser does the
 * ceremonies through the SDK (src/client/passkeys.ts).
 */

/** What the browser's WebAuthn errors mean to a person. */
export function describePasskeyError (error: unknown): string {
  const name = (error as { name?: string } | null)?.name
  if (name === 'NotAllowedError') return 'No passkey was used (cancelled, timed out, or none for this site).'
  if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.'
  if (name === 'SecurityError') return 'This page\'s address does not match the service\'s passkey settings (WEBAUTHN_RP_ID).'
  if (error instanceof InvalidCredentialsError) return 'The passkey was not accepted.'
  return describeError(error)
}

/** The login page's passkey button: a discoverable passkey, no email needed. */
export function PasskeySignIn ({ onSignedIn, onNotAdmin }: { onSignedIn: () => void; onNotAdmin: () => void }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  return (
    <div class='passkey-sign-in'>
      <button
        type='button'
        disabled={busy}
        onClick={async () => {
          setBusy(true)
          setError(null)
          try {
            const claims = await client.signInWithPasskey()
            if (claims?.role !== 'admin') {
              await client.logout().catch(() => undefined)
              onNotAdmin()
              return
            }
            onSignedIn()
          } catch (e) {
            setError(describePasskeyError(e))
          } finally {
            setBusy(false)
          }
        }}
      >
        {busy ? 'Waiting for your passkey…' : 'Sign in with a passkey'}
      </button>
      {error && (
        <p class='state error' role='alert' data-testid='passkey-error'>
          {error}
        </p>
      )}
    </div>
  )
}

function PasskeyRow ({ passkey, changed }: { passkey: Passkey; changed: () => void }) {
  const [editing, setEditing] = useState(false)
  const [name, setName] = useState(passkey.name)
  const [error, setError] = useState<unknown>(null)
  return (
    <tr>
      <td>
        {editing
          ? (
            <form
              class='inline-form'
              aria-label={`Rename passkey ${passkey.name}`}
              onSubmit={async (e) => {
                e.preventDefault()
                setError(null)
                try {
                  await client.renamePasskey(passkey.id, name.trim())
                  setEditing(false)
                  changed()
                } catch (err) {
                  setError(err)
                }
              }}
            >
              <input aria-label='New name' required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
              <button type='submit'>Save</button>
              <button type='button' onClick={() => setEditing(false)}>
                Cancel
              </button>
              {error !== null && (
                <span class='inline-error' role='alert'>
                  {describeError(error)}
                </span>
              )}
            </form>
            )
          : (
              passkey.name
            )}
      </td>
      <td>{passkey.deviceType === 'multiDevice' ? (passkey.backedUp ? 'synced' : 'syncable') : 'this device only'}</td>
      <td>{when(passkey.createdAt)}</td>
      <td>{when(passkey.lastUsedAt)}</td>
      <td>
        {!editing && (
          <button type='button' aria-label={`Rename passkey ${passkey.name}`} onClick={() => setEditing(true)}>
            Rename
          </button>
        )}
        <ActionButton
          class='danger'
          label={`Delete passkey ${passkey.name}`}
          confirm={`Delete the passkey "${passkey.name}"? It will no longer sign you in, and devices signed in with it will be signed out.`}
          action={async () => {
            await mayEndSession(`You deleted the passkey "${passkey.name}", which this session was signed in with, so it was signed out. Sign in again.`, async () => {
              await client.deletePasskey(passkey.id)
              // A session signed in with the passkey ended with it: find out now rather than at the next request.
              await client.refresh().catch(() => undefined)
            })
            if (client.isSignedIn) changed()
          }}
        >
          Delete
        </ActionButton>
      </td>
    </tr>
  )
}

/** #/passkeys: the signed-in admin's own passkeys. */
export function PasskeysPage () {
  const [load, reload] = useLoad(() => client.listPasskeys(), 'passkeys')
  const [name, setName] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [added, setAdded] = useState<string | null>(null)
  return (
    <section>
      <h2>Your passkeys</h2>
      <p>
        A passkey signs you in without a password, and counts as two factors. When you sign in with your password, it is also your second factor.
      </p>
      <form
        class='filters'
        aria-label='Add a passkey'
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setError(null)
          setAdded(null)
          try {
            const passkey = await client.registerPasskey(name.trim() || undefined)
            setAdded(passkey.name)
            setName('')
            reload()
          } catch (err) {
            setError(err)
          } finally {
            setBusy(false)
          }
        }}
      >
        <input aria-label='Passkey name' placeholder='Name (optional), e.g. Work laptop' maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button type='submit' disabled={busy}>
          {busy ? 'Waiting for your authenticator…' : 'Add a passkey'}
        </button>
      </form>
      {added && (
        <p class='notice' role='status' data-testid='passkey-added'>
          The passkey <strong>{added}</strong> was added.
        </p>
      )}
      {error !== null && (isVerificationRequired(error)
        ? <VerifyAddressFirst what='passkey' />
        : (
          <p class='state error' role='alert' data-testid='passkey-register-error'>
            {describePasskeyError(error)}
          </p>
          ))}
      <LoadView load={load} what='passkeys' retry={reload}>
        {(passkeys) =>
          passkeys.length === 0
            ? (
              <Empty>You have no passkeys.</Empty>
              )
            : (
              <TableScroll label='Passkeys'>
                <table data-testid='passkeys'>
                  <thead>
                    <tr>
                      <th>Name</th>
                      <th>Kind</th>
                      <th>Added</th>
                      <th>Last used</th>
                      <th>
                        <span class='visually-hidden'>Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {passkeys.map((passkey) => (
                      <PasskeyRow key={passkey.id} passkey={passkey} changed={reload} />
                    ))}
                  </tbody>
                </table>
              </TableScroll>
              )}
      </LoadView>
    </section>
  )
}
