import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import { AUDIT_EVENT_TYPES, client, query, type AuditEvent, type Page } from '../api.js'
import { Table } from '../table.js'
import { Empty, LoadView, useLoad, when } from '../ui.js'

/** "revokedSessions" and "client_id" as words: "revoked sessions", "client id". */
export function humanize (key: string): string {
  return key
    .replace(/_/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function DetailValue ({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <>—</>
  if (Array.isArray(value)) {
    if (value.length === 0) return <>none</>
    return (
      <>
        {value.map((item, i) => (
          <Fragment key={i}>
            {i > 0 && ', '}
            <DetailValue value={item} />
          </Fragment>
        ))}
      </>
    )
  }
  if (typeof value === 'object') return <Details details={value} />
  if (typeof value === 'string' && UUID.test(value)) return <code>{value}</code>
  return <>{String(value)}</>
}

/** An event's details as named fields (a list of terms and values), nested objects as nested lists; never raw JSON. */
export function Details ({ details }: { details: unknown }) {
  if (typeof details !== 'object' || details === null || Array.isArray(details)) {
    return details === null || details === undefined ? <>—</> : <DetailValue value={details} />
  }
  const entries = Object.entries(details)
  if (entries.length === 0) return <>—</>
  return (
    <dl class='details'>
      {entries.map(([key, value]) => (
        <Fragment key={key}>
          <dt>{humanize(key)}</dt>
          <dd>
            <DetailValue value={value} />
          </dd>
        </Fragment>
      ))}
    </dl>
  )
}

/** A user named by their address, linked to their page; the id when the address is unknown. */
function Person ({ id, email }: { id: string | null; email: string | null }) {
  if (!id) return <>—</>
  return <a href={`#/users/${id}`}>{email ?? id}</a>
}

/** #/audit: the audit log, newest first, by type, user address and time range. */
export function AuditPage ({ filters }: { filters: Record<string, string> }) {
  const [form, setForm] = useState({
    type: filters.type ?? '',
    email: filters.email ?? '',
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
        aria-label='Filter audit events'
        onSubmit={(e) => {
          e.preventDefault()
          location.hash = `#/audit${query({
            type: form.type,
            email: form.email.trim(),
            // A user id comes only from an older link; it stays until removed below.
            userId: filters.userId,
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
        <label>
          User email{' '}
          <input name='email' type='email' placeholder='someone@example.com' value={form.email} onInput={set('email')} />
        </label>
        <label>
          Since <input type='datetime-local' aria-label='Since' value={form.since} onInput={set('since')} />
        </label>
        <label>
          Until <input type='datetime-local' aria-label='Until' value={form.until} onInput={set('until')} />
        </label>
        <button type='submit'>Filter</button>
      </form>
      {filters.userId && (
        <p class='notice' data-testid='user-id-filter'>
          Only the events of the user with the id <code>{filters.userId}</code>.{' '}
          <a href={`#/audit${query({ ...filters, userId: undefined, cursor: undefined })}`}>Show every user's</a>
        </p>
      )}
      <LoadView load={load} what='audit events' retry={reload}>
        {(page) =>
          page.items.length === 0
            ? (
              <Empty>No audit events match these filters.</Empty>
              )
            : (
              <>
                <Table
                  testid='audit-events'
                  label='Audit events'
                  rows={page.items}
                  rowKey={(event) => event.id}
                  rowAttributes={(event) => ({ 'data-event-type': event.type })}
                  columns={[
                    { header: 'When', cell: (event) => when(event.at) },
                    { header: 'Type', cell: (event) => event.type },
                    { header: 'User', cell: (event) => <Person id={event.userId} email={event.userEmail} /> },
                    { header: 'Actor', cell: (event) => <Person id={event.actorId} email={event.actorEmail} /> },
                    { header: 'IP', cell: (event) => event.ip ?? '—' },
                    { header: 'Details', cell: (event) => <Details details={event.details} /> },
                  ]}
                />
                <nav class='pager' aria-label='Pages'>
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
