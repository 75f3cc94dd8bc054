import { useEffect, useRef, useState } from 'preact/hooks'
import { client, query, type GrantList, type Session, type User } from '../api.js'
import { ResetSecondFactorsButton } from '../mfa-pages.js'
import { GRANT_COLUMNS } from './apps.js'
import { Table } from '../table.js'
import { ActionButton, Empty, isNotFound, LoadView, useLoad, when } from '../ui.js'

/**
 * #/users/:id: a user, their live sessions, and what an admin does to them.
 * The sessions are asked for only once the user is found, so an unknown id
 * shows one "no such user", not a second failure under it.
 */
export function UserPage ({ id }: { id: string }) {
  const [userLoad, reloadUser] = useLoad(() => client.request<User>(`/admin/users/${id}`), id)
  // Bumped by a change that may end sessions (role, disabled): the sessions list loads again.
  const [changes, setChanges] = useState(0)
  const [role, setRole] = useState<'user' | 'admin' | ''>('')
  const [resetSent, setResetSent] = useState(false)
  const patch = async (body: Partial<Pick<User, 'role' | 'disabled'>>) => {
    await client.request(`/admin/users/${id}`, { method: 'PATCH', json: body })
    reloadUser()
    setChanges((n) => n + 1)
  }
  const back = (
    <p>
      <a href='#/users'>← Users</a>
    </p>
  )
  if (userLoad.state === 'error' && isNotFound(userLoad.error)) {
    return (
      <section>
        {back}
        <h2>No such user</h2>
        <p class='state error' role='alert' data-testid='user-not-found'>
          <span>
            No user has the id <code>{id}</code>.
          </span>
        </p>
      </section>
    )
  }
  return (
    <section>
      {back}
      <LoadView load={userLoad} what='the user' retry={reloadUser}>
        {(user) => (
          <>
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
                <a href={`#/audit${query({ email: user.email })}`}>Audit events</a>
              </div>
              {resetSent && (
                <p class='notice' role='status' data-testid='reset-sent'>
                  A password reset link was emailed to {user.email}. You never see the link; the user chooses the new password.
                </p>
              )}
            </div>
            <UserSessions userId={user.id} changes={changes} />
            <UserGrants userId={user.id} />
          </>
        )}
      </LoadView>
    </section>
  )
}

/** A user's live sessions: revoke one, or all. */
function UserSessions ({ userId, changes }: { userId: string; changes: number }) {
  const [load, reload] = useLoad(() => client.request<{ items: Session[] }>(`/admin/users/${userId}/sessions`), userId)
  const mounted = useRef(false)
  useEffect(() => {
    if (mounted.current) reload()
    mounted.current = true
  }, [changes])
  return (
    <>
      <h3>Sessions</h3>
      <LoadView load={load} what='sessions' retry={reload}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No live sessions.</Empty>
              )
            : (
              <>
                <Table
                  testid='sessions'
                  label='Sessions'
                  rows={items}
                  rowKey={(session) => session.id}
                  rowAttributes={(session) => ({ 'data-session-id': session.id })}
                  columns={[
                    {
                      header: 'Session',
                      cell: (session) => (
                        <>
                          <code>{session.id.slice(0, 8)}</code>
                          {session.current && ' (this one)'}
                        </>
                      ),
                    },
                    { header: 'Client', cell: (session) => session.clientId },
                    { header: 'IP', cell: (session) => session.ip ?? '—' },
                    { header: 'User agent', class: 'ua', cell: (session) => session.userAgent ?? '—' },
                    { header: 'Signed in', cell: (session) => when(session.createdAt) },
                    { header: 'Last refreshed', cell: (session) => when(session.lastRefreshedAt) },
                  ]}
                  revoke={{
                    label: (session) => `Revoke session ${session.id}`,
                    action: async (session) => {
                      await client.request(`/admin/sessions/${session.id}`, { method: 'DELETE' })
                      reload()
                    },
                  }}
                />
                <ActionButton
                  class='danger'
                  action={async () => {
                    await client.request(`/admin/users/${userId}/sessions`, { method: 'DELETE' })
                    reload()
                  }}
                >
                  Revoke all sessions
                </ActionButton>
              </>
              )}
      </LoadView>
    </>
  )
}

/** The apps a user let into their account (revoked by the user, or by deleting the client). */
function UserGrants ({ userId }: { userId: string }) {
  const [load, reload] = useLoad(() => client.request<GrantList>(`/admin/users/${userId}/grants`), userId)
  return (
    <>
      <h3>Apps with access</h3>
      <LoadView load={load} what='apps with access' retry={reload}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No app has access to this account.</Empty>
              )
            : (
              <Table testid='user-grants' label='Apps with access' rows={items} rowKey={(grant) => grant.clientId} columns={GRANT_COLUMNS} />
              )}
      </LoadView>
    </>
  )
}
