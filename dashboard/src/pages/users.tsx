import { useState } from 'preact/hooks'
import { client, query, type AdminUser, type UserList } from '../api.js'
import { Table } from '../table.js'
import { Empty, LoadView, useLoad, when } from '../ui.js'

/** What a user's second factors are, in a few words. */
export function describeSecondFactors ({ totp, passkeys }: AdminUser['secondFactors']): string {
  const parts = [...(totp ? ['authenticator app'] : []), ...(passkeys > 0 ? [`${passkeys} ${passkeys === 1 ? 'passkey' : 'passkeys'}`] : [])]
  return parts.length > 0 ? parts.join(', ') : 'none'
}

/** How many users there are, or match the search. */
function countLine (total: number, q: string): string {
  const users = `${total} ${total === 1 ? 'user' : 'users'}`
  return q ? `${users} ${total === 1 ? 'matches' : 'match'} “${q}”` : users
}

/** #/users: every user, newest first, searchable by email. */
export function UsersPage ({ q, cursor }: { q: string; cursor: string }) {
  const [search, setSearch] = useState(q)
  const [load, reload] = useLoad(() => client.request<UserList>(`/admin/users${query({ q, cursor, limit: '20' })}`), `${q}|${cursor}`)
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
                <p class='count' data-testid='users-total'>
                  {countLine(page.total, q)}
                </p>
                <Table
                  testid='users'
                  label='Users'
                  rows={page.items}
                  rowKey={(user) => user.id}
                  rowAttributes={(user) => ({ 'data-user-id': user.id })}
                  columns={[
                    { header: 'Email', cell: (user) => <a href={`#/users/${user.id}`}>{user.email}</a> },
                    { header: 'Role', cell: (user) => user.role },
                    { header: 'Status', cell: (user) => (user.disabled ? 'disabled' : 'active') },
                    { header: 'Verified', cell: (user) => (user.emailVerifiedAt ? 'verified' : 'unverified') },
                    { header: 'Second factor', cell: (user) => describeSecondFactors(user.secondFactors) },
                    { header: 'Last sign-in', cell: (user) => when(user.lastSignInAt) },
                    { header: 'Created', cell: (user) => when(user.createdAt) },
                  ]}
                />
                <nav class='pager' aria-label='Pages'>
                  {cursor && <a href={`#/users${query({ q })}`}>First page</a>}
                  {page.nextCursor && <a href={`#/users${query({ q, cursor: page.nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}
