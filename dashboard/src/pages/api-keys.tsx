import { useState } from 'preact/hooks'
import { isVerificationRequired, VerifyAddressFirst } from '../account-pages.js'
import { client, query, type ApiKey, type Page } from '../api.js'
import { Table } from '../table.js'
import { Empty, ErrorBox, LoadView, useLoad, when } from '../ui.js'

/** #/keys: the signed-in admin's own API keys: create one (shown once), revoke. */
export function ApiKeysPage ({ cursor }: { cursor: string }) {
  const [load, reload] = useLoad(() => client.request<Page<ApiKey>>(`/api-keys${query({ cursor })}`), `keys ${cursor}`)
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
        {/* introspect: /auth/introspect; events: the security-event streams (/ssf, docs/security-events.md). */}
        {['profile', 'introspect', 'events'].map((scope) => (
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
                <Table
                  testid='api-keys'
                  label='API keys'
                  rows={items}
                  rowKey={(key) => key.id}
                  columns={[
                    { header: 'Name', cell: (key) => key.name },
                    { header: 'Prefix', cell: (key) => <code>{key.prefix}</code> },
                    { header: 'Scopes', cell: (key) => key.scopes.join(' ') },
                    { header: 'Created', cell: (key) => when(key.createdAt) },
                    { header: 'Expires', cell: (key) => when(key.expiresAt) },
                    { header: 'Last used', cell: (key) => when(key.lastUsedAt) },
                  ]}
                  revoke={{
                    label: (key) => `Revoke key ${key.name}`,
                    action: async (key) => {
                      await client.request(`/api-keys/${key.id}`, { method: 'DELETE' })
                      reload()
                    },
                  }}
                />
                <nav class='pager' aria-label='Pages'>
                  {cursor && <a href='#/keys'>First page</a>}
                  {nextCursor && <a href={`#/keys${query({ cursor: nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}
