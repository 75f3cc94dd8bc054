import { useState } from 'preact/hooks'
import { InvalidCredentialsError, MfaRequiredError } from '../../src/client/index.js'
import { AUDIT_EVENT_TYPES, client, query, type ApiKey, type AuditEvent, type OutboxMessage, type Page, type Session, type User } from './api.js'
import { isVerificationRequired, VerifyAddressFirst } from './account-pages.js'
import { ResetSecondFactorsButton, SecondStepForm } from './mfa-pages.js'
import { ActionButton, describeError, Empty, ErrorBox, LoadView, useLoad, when } from './ui.js'
import { PasskeySignIn } from './passkey-pages.js'

export function LoginPage ({ notice, onSignedIn }: { notice: string | null; onSignedIn: () => void }) {
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  // The second step of a sign-in with a second factor (mfa-pages.tsx).
  const [challenge, setChallenge] = useState<MfaRequiredError | null>(null)
  async function admitted () {
    if (client.claims?.role !== 'admin') {
      await client.logout().catch(() => undefined)
      setError('This account is not an administrator. The dashboard is for admins only.')
      return
    }
    onSignedIn()
  }
  async function submit (event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await client.login(email, password)
      await admitted()
    } catch (e) {
      if (e instanceof MfaRequiredError) setChallenge(e)
      else setError(e instanceof InvalidCredentialsError ? 'Wrong email or password.' : describeError(e))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class='login'>
      <h1>token-auth admin</h1>
      {notice && (
        <p class='notice' role='status' data-testid='login-notice'>
          {notice}
        </p>
      )}
      {challenge && (
        <SecondStepForm
          challenge={challenge}
          onDone={() => {
            setChallenge(null)
            void admitted()
          }}
          onRestart={() => {
            setChallenge(null)
            setPassword('')
          }}
        />
      )}
      <form onSubmit={submit} aria-label='Sign in' hidden={challenge !== null}>
        <label>
          Email
          <input name='email' type='email' autocomplete='username' required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name='password'
            type='password'
            autocomplete='current-password'
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type='submit' disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p class='state error' role='alert' data-testid='login-error'>
            {error}
          </p>
        )}
        <a href='#/reset-password'>Forgot your password?</a>
      </form>
      {challenge === null && (
        <PasskeySignIn onSignedIn={onSignedIn} onNotAdmin={() => setError('This account is not an administrator. The dashboard is for admins only.')} />
      )}
    </main>
  )
}

export function UsersPage ({ q, cursor }: { q: string; cursor: string }) {
  const [search, setSearch] = useState(q)
  const [load, reload] = useLoad(
    () => client.request<Page<User>>(`/admin/users${query({ q, cursor, limit: '20' })}`),
    `${q}|${cursor}`
  )
  return (
    <section>
      <h2>Users</h2>
      <form
        class='filters'
        role='search'
        onSubmit={(e) => {
          e.preventDefault()
          location.hash = `#/users${query({ q: search.trim() })}`
        }}
      >
        <input name='q' type='search' placeholder='Search by email' aria-label='Search by email' value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        <button type='submit'>Search</button>
      </form>
      <LoadView load={load} what='users' retry={reload}>
        {(page) =>
          page.items.length === 0
            ? (
              <Empty>{q ? `No user matches “${q}”.` : 'No users yet.'}</Empty>
              )
            : (
              <>
                <table data-testid='users'>
                  <thead>
                    <tr>
                      <th>Email</th>
                      <th>Role</th>
                      <th>Status</th>
                      <th>Address</th>
                      <th>Created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((user) => (
                      <tr key={user.id}>
                        <td>
                          <a href={`#/users/${user.id}`}>{user.email}</a>
                        </td>
                        <td>{user.role}</td>
                        <td>{user.disabled ? 'disabled' : 'active'}</td>
                        <td>{user.emailVerifiedAt ? 'verified' : 'unverified'}</td>
                        <td>{when(user.createdAt)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <nav class='pager'>
                  {cursor && <a href={`#/users${query({ q })}`}>First page</a>}
                  {page.nextCursor && <a href={`#/users${query({ q, cursor: page.nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}

export function UserPage ({ id }: { id: string }) {
  const [userLoad, reloadUser] = useLoad(() => client.request<User>(`/admin/users/${id}`), id)
  const [sessionsLoad, reloadSessions] = useLoad(() => client.request<{ items: Session[] }>(`/admin/users/${id}/sessions`), id)
  async function revokeSession (sessionId: string) {
    await client.request(`/admin/sessions/${sessionId}`, { method: 'DELETE' })
    reloadSessions()
  }
  const [role, setRole] = useState<'user' | 'admin' | ''>('')
  const [resetSent, setResetSent] = useState(false)
  const patch = async (body: Partial<Pick<User, 'role' | 'disabled'>>) => {
    await client.request(`/admin/users/${id}`, { method: 'PATCH', json: body })
    reloadUser()
    reloadSessions()
  }
  return (
    <section>
      <p>
        <a href='#/users'>← Users</a>
      </p>
      <LoadView load={userLoad} what='the user' retry={reloadUser}>
        {(user) => (
          <div class='user' data-testid='user'>
            <h2>{user.email}</h2>
            <dl>
              <dt>Id</dt>
              <dd>
                <code>{user.id}</code>
              </dd>
              <dt>Role</dt>
              <dd data-testid='user-role'>{user.role}</dd>
              <dt>Status</dt>
              <dd data-testid='user-status'>{user.disabled ? 'disabled' : 'active'}</dd>
              <dt>Email</dt>
              <dd data-testid='user-verified'>{user.emailVerifiedAt ? `verified ${when(user.emailVerifiedAt)}` : 'not verified'}</dd>
              <dt>Created</dt>
              <dd>{when(user.createdAt)}</dd>
            </dl>
            <div class='actions'>
              <label>
                Role{' '}
                <select aria-label='Role' value={role || user.role} onChange={(e) => setRole(e.currentTarget.value as 'user' | 'admin')}>
                  <option value='user'>user</option>
                  <option value='admin'>admin</option>
                </select>
              </label>
              <ActionButton action={() => patch({ role: (role || user.role) as 'user' | 'admin' })}>Change role</ActionButton>
              {user.disabled
                ? (
                  <ActionButton action={() => patch({ disabled: false })}>Enable user</ActionButton>
                  )
                : (
                  <ActionButton class='danger' action={() => patch({ disabled: true })}>
                    Disable user
                  </ActionButton>
                  )}
              {!user.disabled && (
                <ActionButton
                  action={async () => {
                    await client.request(`/admin/users/${id}/password-reset`, { method: 'POST' })
                    setResetSent(true)
                  }}
                >
                  Send password reset email
                </ActionButton>
              )}
              <ResetSecondFactorsButton userId={user.id} email={user.email} />
              <a href={`#/audit${query({ userId: user.id })}`}>Audit events</a>
            </div>
            {resetSent && (
              <p class='notice' role='status' data-testid='reset-sent'>
                A password reset link was emailed to {user.email}. You never see the link; the user chooses the new password.
              </p>
            )}
          </div>
        )}
      </LoadView>
      <h3>Sessions</h3>
      <LoadView load={sessionsLoad} what='sessions' retry={reloadSessions}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No live sessions.</Empty>
              )
            : (
              <>
                <table data-testid='sessions'>
                  <thead>
                    <tr>
                      <th>Session</th>
                      <th>Client</th>
                      <th>IP</th>
                      <th>User agent</th>
                      <th>Signed in</th>
                      <th>Last refreshed</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {items.map((session) => (
                      <tr key={session.id} data-session-id={session.id}>
                        <td>
                          <code>{session.id.slice(0, 8)}</code>
                          {session.current && ' (this one)'}
                        </td>
                        <td>{session.clientId}</td>
                        <td>{session.ip ?? '—'}</td>
                        <td class='ua'>{session.userAgent ?? '—'}</td>
                        <td>{when(session.createdAt)}</td>
                        <td>{when(session.lastRefreshedAt)}</td>
                        <td>
                          <ActionButton
                            label={`Revoke session ${session.id}`}
                            action={() => revokeSession(session.id)}
                          >
                            Revoke
                          </ActionButton>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <ActionButton
                  class='danger'
                  action={async () => {
                    await client.request(`/admin/users/${id}/sessions`, { method: 'DELETE' })
                    reloadSessions()
                  }}
                >
                  Revoke all sessions
                </ActionButton>
              </>
              )}
      </LoadView>
    </section>
  )
}

export function AuditPage ({ filters }: { filters: Record<string, string> }) {
  const [form, setForm] = useState({
    type: filters.type ?? '',
    userId: filters.userId ?? '',
    since: toLocalInput(filters.since),
    until: toLocalInput(filters.until),
  })
  const key = JSON.stringify(filters)
  const [load, reload] = useLoad(() => client.request<Page<AuditEvent>>(`/admin/audit-events${query({ ...filters, limit: '25' })}`), key)
  const set = (name: keyof typeof form) => (e: Event) => setForm({ ...form, [name]: (e.currentTarget as HTMLInputElement).value })
  return (
    <section>
      <h2>Audit events</h2>
      <form
        class='filters'
        onSubmit={(e) => {
          e.preventDefault()
          location.hash = `#/audit${query({
            type: form.type,
            userId: form.userId.trim(),
            since: fromLocalInput(form.since),
            until: fromLocalInput(form.until),
          })}`
        }}
      >
        <select aria-label='Event type' value={form.type} onChange={set('type')}>
          <option value=''>All types</option>
          {AUDIT_EVENT_TYPES.map((type) => (
            <option key={type} value={type}>
              {type}
            </option>
          ))}
        </select>
        <input aria-label='User id' placeholder='User id' value={form.userId} onInput={set('userId')} />
        <label>
          Since <input type='datetime-local' aria-label='Since' value={form.since} onInput={set('since')} />
        </label>
        <label>
          Until <input type='datetime-local' aria-label='Until' value={form.until} onInput={set('until')} />
        </label>
        <button type='submit'>Filter</button>
      </form>
      <LoadView load={load} what='audit events' retry={reload}>
        {(page) =>
          page.items.length === 0
            ? (
              <Empty>No audit events match these filters.</Empty>
              )
            : (
              <>
                <table data-testid='audit-events'>
                  <thead>
                    <tr>
                      <th>When</th>
                      <th>Type</th>
                      <th>User</th>
                      <th>Actor</th>
                      <th>IP</th>
                      <th>Details</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((event) => (
                      <tr key={event.id}>
                        <td>{when(event.at)}</td>
                        <td>{event.type}</td>
                        <td>{event.userId ? <a href={`#/users/${event.userId}`}>{event.userId.slice(0, 8)}</a> : '—'}</td>
                        <td>{event.actorId ? event.actorId.slice(0, 8) : '—'}</td>
                        <td>{event.ip ?? '—'}</td>
                        <td>
                          <code>{event.details ? JSON.stringify(event.details) : ''}</code>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <nav class='pager'>
                  {filters.cursor && <a href={`#/audit${query({ ...filters, cursor: undefined })}`}>First page</a>}
                  {page.nextCursor && <a href={`#/audit${query({ ...filters, cursor: page.nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}

function toLocalInput (iso: string | undefined): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ''
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}
function fromLocalInput (local: string): string | undefined {
  if (!local) return undefined
  const date = new Date(local)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

export function ApiKeysPage ({ cursor }: { cursor: string }) {
  const [load, reload] = useLoad(() => client.request<Page<ApiKey>>(`/api-keys${query({ cursor })}`), `keys ${cursor}`)
  async function revokeKey (keyId: string) {
    await client.request(`/api-keys/${keyId}`, { method: 'DELETE' })
    reload()
  }
  const [name, setName] = useState('')
  const [scopes, setScopes] = useState<string[]>(['profile'])
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const toggle = (scope: string) => setScopes(scopes.includes(scope) ? scopes.filter((s) => s !== scope) : [...scopes, scope])
  return (
    <section>
      <h2>Your API keys</h2>
      {created && (
        <div class='created-key' role='status' data-testid='created-key'>
          <p>
            The key <strong>{created.name}</strong> was created. Copy it now: it will not be shown again.
          </p>
          <code class='secret'>{created.key}</code>
          <button type='button' onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      <form
        class='filters'
        aria-label='Create an API key'
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setError(null)
          try {
            const key = await client.request<{ key: string; name: string }>('/api-keys', { method: 'POST', json: { name: name.trim(), scopes } })
            setCreated({ name: key.name, key: key.key })
            setName('')
            reload()
          } catch (err) {
            setError(err)
          } finally {
            setBusy(false)
          }
        }}
      >
        <input aria-label='Key name' placeholder='Key name' required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        {['profile', 'introspect'].map((scope) => (
          <label key={scope}>
            <input type='checkbox' checked={scopes.includes(scope)} onChange={() => toggle(scope)} /> {scope}
          </label>
        ))}
        <button type='submit' disabled={busy || scopes.length === 0}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </form>
      {error !== null && (isVerificationRequired(error) ? <VerifyAddressFirst what='API key' /> : <ErrorBox error={error} />)}
      <LoadView load={load} what='API keys' retry={reload}>
        {({ items, nextCursor }) =>
          items.length === 0
            ? (
              <Empty>{cursor ? 'No more API keys.' : 'You have no API keys.'}</Empty>
              )
            : (
              <>
                <table data-testid='api-keys'>
                  <thead>
                    <tr>
                      <th>Name</th>
                      <th>Prefix</th>
                      <th>Scopes</th>
                      <th>Created</th>
                      <th>Expires</th>
                      <th>Last used</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {items.map((key) => (
                      <tr key={key.id}>
                        <td>{key.name}</td>
                        <td>
                          <code>{key.prefix}</code>
                        </td>
                        <td>{key.scopes.join(' ')}</td>
                        <td>{when(key.createdAt)}</td>
                        <td>{when(key.expiresAt)}</td>
                        <td>{when(key.lastUsedAt)}</td>
                        <td>
                          <ActionButton
                            label={`Revoke key ${key.name}`}
                            action={() => revokeKey(key.id)}
                          >
                            Revoke
                          </ActionButton>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <nav class='pager'>
                  {cursor && <a href='#/keys'>First page</a>}
                  {nextCursor && <a href={`#/keys${query({ cursor: nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}

/** Splits a message's text into strings and clickable links. */
function withLinks (text: string) {
  return text.split(/(https?:\/\/[^\s<>"]+)/).map((part, i) => (i % 2 === 1 ? <a key={i} href={part}>{part}</a> : part))
}

/**
 * The email outbox: every message's delivery state; in the development
 * mailbox (no SMTP_URL) each message also rendered, links clickable, so a
 * reset or a verification can be clicked through without a mail server.
 */
export function MailboxPage ({ status, cursor }: { status: string; cursor: string }) {
  const [load, reload] = useLoad(
    () => client.request<Page<OutboxMessage>>(`/admin/outbox${query({ status, cursor, limit: '20' })}`),
    `${status}|${cursor}`
  )
  return (
    <section>
      <h2>Mailbox</h2>
      <nav class='filters' aria-label='Message status'>
        {['', 'pending', 'sent', 'dead'].map((value) => (
          <a key={value} href={`#/mailbox${query({ status: value })}`} aria-current={value === status ? 'page' : undefined}>
            {value || 'all'}
          </a>
        ))}
        <button type='button' onClick={reload}>
          Refresh
        </button>
      </nav>
      <LoadView load={load} what='messages' retry={reload}>
        {(page) =>
          page.items.length === 0
            ? (
              <Empty>No messages.</Empty>
              )
            : (
              <>
                <table data-testid='outbox'>
                  <thead>
                    <tr>
                      <th>Queued</th>
                      <th>To</th>
                      <th>Message</th>
                      <th>Status</th>
                      <th>Attempts</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((message) => (
                      <tr key={message.id} data-message-id={message.id} data-recipient={message.recipient}>
                        <td>{when(message.createdAt)}</td>
                        <td>{message.recipient}</td>
                        <td>
                          {message.rendered
                            ? (
                              <details>
                                <summary>{message.rendered.subject}</summary>
                                <pre class='mail'>{withLinks(message.rendered.text)}</pre>
                              </details>
                              )
                            : (
                              <code>{message.template}</code>
                              )}
                        </td>
                        <td>
                          {message.status}
                          {message.lastError && <div class='inline-error'>{message.lastError}</div>}
                        </td>
                        <td>{message.attempts}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <nav class='pager'>
                  {cursor && <a href={`#/mailbox${query({ status })}`}>First page</a>}
                  {page.nextCursor && <a href={`#/mailbox${query({ status, cursor: page.nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}
