import { client, type Grant, type GrantList } from '../api.js'
import { Table, type Column } from '../table.js'
import { Empty, LoadView, useLoad, when } from '../ui.js'

/** The columns of a list of grants: here, and on an admin's user page. */
export const GRANT_COLUMNS: Column<Grant>[] = [
  { header: 'App', cell: (grant: Grant) => grant.clientName },
  { header: 'Access', class: 'ua', cell: (grant: Grant) => grant.scope || '—' },
  { header: 'Since', cell: (grant: Grant) => when(grant.createdAt) },
]

/**
 * #/apps: the apps the signed-in admin let into their own account (DESIGN
 * §3.15). Revoking one ends its grant and signs the app out of the account.
 */
export function AppsPage () {
  const [load, reload] = useLoad(() => client.request<GrantList>('/users/me/grants'), 'grants')
  return (
    <section>
      <h2>Apps with access</h2>
      <p class='count'>Apps you allowed to use your account. Revoking one signs it out; it has to ask again.</p>
      <LoadView load={load} what='apps' retry={reload}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No app has access to your account.</Empty>
              )
            : (
              <Table
                testid='grants'
                label='Apps with access'
                rows={items}
                rowKey={(grant) => grant.clientId}
                rowAttributes={(grant) => ({ 'data-client-id': grant.clientId })}
                columns={GRANT_COLUMNS}
                revoke={{
                  text: 'Revoke access',
                  label: (grant) => `Revoke access of ${grant.clientName}`,
                  confirm: (grant) => `Revoke the access of ${grant.clientName}? It is signed out of your account.`,
                  danger: true,
                  action: async (grant) => {
                    await client.request(`/users/me/grants/${encodeURIComponent(grant.clientId)}`, { method: 'DELETE' })
                    reload()
                  },
                }}
              />
              )}
      </LoadView>
    </section>
  )
}
