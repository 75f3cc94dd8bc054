import { useEffect, useRef, useState } from 'preact/hooks'
import { AUDIT_EVENT_TYPES, client, query, type Page, type Webhook, type WebhookDelivery } from '../api.js'
import { Table } from '../table.js'
import { ActionButton, Empty, ErrorBox, LoadView, useLoad, when } from '../ui.js'

/**
 * #/webhooks: the endpoints the service POSTs its events to (DESIGN §3.18):
 * register one, change its URL, events or description, disable and enable
 * it, rotate its secret, delete it; per endpoint, its deliveries (each with
 * its attempts, a Retry button) and a replay of a time range. A secret is in
 * the service's answer only once, so it is shown here once, until the admin
 * dismisses it. Writes may ask for a recent sign-in first: the client's
 * onStepUpRequired opens the step-up prompt and retries.
 */

/** How often an open deliveries list asks again, to show attempts as the worker makes them. */
const LIVE_REFRESH_MS = 3000
const DELIVERIES_PER_PAGE = '20'
const DELIVERY_STATUSES = ['pending', 'delivered', 'dead'] as const

/** The form's fields, as typed. */
interface Draft {
  url: string
  /** `*`: every event type, the ones added later too. */
  allEvents: boolean
  events: string[]
  description: string
}

const NEW_ENDPOINT: Draft = { url: '', allEvents: true, events: [], description: '' }

function draftOf (hook: Webhook): Draft {
  const allEvents = hook.events.includes('*')
  return { url: hook.url, allEvents, events: allEvents ? [] : hook.events, description: hook.description ?? '' }
}

const eventsOf = (draft: Draft) => (draft.allEvents ? ['*'] : draft.events)
const sameSet = (a: string[], b: string[]) => {
  const left = [...new Set(a)].sort()
  const right = [...new Set(b)].sort()
  return left.length === right.length && left.every((item, i) => item === right[i])
}

interface WebhookChanges {
  url?: string
  events?: string[]
  description?: string | null
}

/** The fields the admin changed, and only those: a PATCH must name at least one. */
function changesOf (draft: Draft, original: Webhook): WebhookChanges {
  const patch: WebhookChanges = {}
  const url = draft.url.trim()
  const description = draft.description.trim()
  if (url !== original.url) patch.url = url
  if (!sameSet(eventsOf(draft), original.events)) patch.events = eventsOf(draft)
  if (description !== (original.description ?? '')) patch.description = description === '' ? null : description
  return patch
}

const endpointPath = (hook: { id: string }) => `/admin/webhooks/${encodeURIComponent(hook.id)}`

function describeEvents (events: string[]): string {
  return events.includes('*') ? 'every event (*)' : events.join(', ')
}

/** A secret the service just made, and why: it is never shown again. */
interface ShownSecret {
  url: string
  endpointId: string
  secret: string
  rotated: boolean
}

export function WebhooksPage () {
  const [load, reload] = useLoad(() => client.request<{ items: Webhook[] }>('/admin/webhooks'), 'webhooks')
  // The form: a new endpoint, or the endpoint being changed.
  const [editing, setEditing] = useState<{ original: Webhook | null } | null>(null)
  const [shown, setShown] = useState<ShownSecret | null>(null)
  // What the last write did, when no secret says it already.
  const [notice, setNotice] = useState<string | null>(null)
  // The endpoint whose deliveries are open below the list.
  const [selected, setSelected] = useState<string | null>(null)
  const showSecret = (hook: Webhook, rotated: boolean) => {
    if (hook.secret) setShown({ url: hook.url, endpointId: hook.id, secret: hook.secret, rotated })
  }
  const selectedHook = load.state === 'ready' ? load.data.items.find((hook) => hook.id === selected) : undefined
  return (
    <section>
      <h2>Webhooks</h2>
      <p class='count'>
        The endpoints every audit event is POSTed to as it happens, signed as Standard Webhooks: at least once, retried with backoff, the same webhook-id on every attempt.
      </p>
      {shown && <WebhookSecret shown={shown} onDone={() => setShown(null)} />}
      {notice && !shown && (
        <p class='notice' role='status' data-testid='webhooks-notice'>
          {notice}
        </p>
      )}
      {editing
        ? (
          <WebhookForm
            key={editing.original?.id ?? 'new'}
            original={editing.original}
            onCancel={() => setEditing(null)}
            onSaved={(saved) => {
              setNotice(`${editing.original ? 'Saved' : 'Registered'} ${saved.url}.`)
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
              Register an endpoint
            </button>
          </div>
          )}
      <LoadView load={load} what='webhook endpoints' retry={reload}>
        {({ items }) =>
          items.length === 0
            ? (
              <Empty>No webhook endpoints yet.</Empty>
              )
            : (
              <Table
                testid='webhooks'
                label='Webhook endpoints'
                rows={items}
                rowKey={(hook) => hook.id}
                rowAttributes={(hook) => ({ 'data-endpoint-id': hook.id, 'data-enabled': String(hook.enabled), 'data-failing-since': hook.failingSince ?? '' })}
                columns={[
                  {
                    header: 'URL',
                    cell: (hook) => (
                      <>
                        <code>{hook.url}</code>
                        {hook.description && <div class='hint'>{hook.description}</div>}
                      </>
                    ),
                  },
                  { header: 'Events', cell: (hook) => describeEvents(hook.events) },
                  {
                    header: 'State',
                    cell: (hook) =>
                      hook.enabled
                        ? 'enabled'
                        : (
                          <>
                            disabled
                            {hook.disabledReason && <div class='inline-error'>{hook.disabledReason}</div>}
                          </>
                          ),
                  },
                  { header: 'Failing since', cell: (hook) => when(hook.failingSince) },
                  { header: 'Created', cell: (hook) => when(hook.createdAt) },
                  {
                    header: 'Actions',
                    cell: (hook) => (
                      <span class='row-actions'>
                        <button
                          type='button'
                          aria-label={`Deliveries to ${hook.url}`}
                          aria-pressed={selected === hook.id}
                          onClick={() => setSelected(selected === hook.id ? null : hook.id)}
                        >
                          Deliveries
                        </button>
                        <button
                          type='button'
                          aria-label={`Edit ${hook.url}`}
                          onClick={() => {
                            setNotice(null)
                            setEditing({ original: hook })
                          }}
                        >
                          Edit
                        </button>
                        {hook.enabled
                          ? (
                            <ActionButton
                              label={`Disable ${hook.url}`}
                              confirm={`Disable ${hook.url}? Nothing is sent to it, and no new event is queued for it, until it is enabled again (a replay catches up).`}
                              action={async () => {
                                await client.request<Webhook>(endpointPath(hook), { method: 'PATCH', json: { enabled: false } })
                                setNotice(`Disabled ${hook.url}.`)
                                reload()
                              }}
                            >
                              Disable
                            </ActionButton>
                            )
                          : (
                            <ActionButton
                              label={`Enable ${hook.url}`}
                              action={async () => {
                                await client.request<Webhook>(endpointPath(hook), { method: 'PATCH', json: { enabled: true } })
                                setNotice(`Enabled ${hook.url}.`)
                                reload()
                              }}
                            >
                              Enable
                            </ActionButton>
                            )}
                        <ActionButton
                          label={`Rotate the secret of ${hook.url}`}
                          confirm={`Rotate the secret of ${hook.url}? The current secret keeps signing beside the new one for a day.`}
                          action={async () => {
                            showSecret(await client.request<Webhook>(`${endpointPath(hook)}/secret`, { method: 'POST' }), true)
                            reload()
                          }}
                        >
                          Rotate secret
                        </ActionButton>
                        <ActionButton
                          class='danger'
                          label={`Delete ${hook.url}`}
                          confirm={`Delete ${hook.url}? Its deliveries, sent or not, are deleted with it.`}
                          action={async () => {
                            await client.request(endpointPath(hook), { method: 'DELETE' })
                            if (editing?.original?.id === hook.id) setEditing(null)
                            if (shown?.endpointId === hook.id) setShown(null)
                            if (selected === hook.id) setSelected(null)
                            setNotice(`Deleted ${hook.url}.`)
                            reload()
                          }}
                        >
                          Delete
                        </ActionButton>
                      </span>
                    ),
                  },
                ]}
              />
              )}
      </LoadView>
      {selectedHook && <Deliveries key={selectedHook.id} hook={selectedHook} onActivity={reload} />}
    </section>
  )
}

/** The secret the service just made, this once, with a copy button; focused, so it is seen (and read) at once. */
function WebhookSecret ({ shown, onDone }: { shown: ShownSecret; onDone: () => void }) {
  const box = useRef<HTMLDivElement | null>(null)
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no')
  useEffect(() => {
    setCopied('no')
    box.current?.focus()
  }, [shown])
  return (
    <div class='created-key' role='status' tabIndex={-1} ref={box} data-testid='webhook-secret'>
      <p>
        <strong>Store this signing secret now: it will not be shown again.</strong> It signs the messages to <code>{shown.url}</code>
        {shown.rotated ? '; the previous secret keeps signing beside it for a day, so the receiver can switch without losing a message.' : '.'}
      </p>
      <code class='secret'>{shown.secret}</code>
      <p class='hint' id='webhook-secret-hint'>
        Give it to the receiver: it checks each message's webhook-signature header with it (any Standard Webhooks library, whsec_ prefix included).
      </p>
      <div class='inline-form'>
        <button
          type='button'
          aria-describedby='webhook-secret-hint'
          onClick={() => {
            navigator.clipboard.writeText(shown.secret).then(
              () => setCopied('yes'),
              () => setCopied('failed')
            )
          }}
        >
          {copied === 'yes' ? 'Copied' : 'Copy secret'}
        </button>
        <button type='button' onClick={onDone}>
          I have stored it
        </button>
      </div>
      {copied === 'failed' && (
        <p class='inline-error' role='alert'>
          The browser did not let the page copy: select the secret and copy it.
        </p>
      )}
    </div>
  )
}

/** Registers an endpoint (original null) or changes one, sending only what changed. */
function WebhookForm ({ original, onSaved, onCancel }: { original: Webhook | null; onSaved: (saved: Webhook) => void; onCancel: () => void }) {
  const [draft, setDraft] = useState<Draft>(original ? draftOf(original) : NEW_ENDPOINT)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [unchanged, setUnchanged] = useState(false)
  const urlInput = useRef<HTMLInputElement | null>(null)
  // The form appears above the list: bring focus (and the view) to it.
  useEffect(() => urlInput.current?.focus(), [])
  const update = (fields: Partial<Draft>) => {
    setUnchanged(false)
    setDraft((current) => ({ ...current, ...fields }))
  }
  const toggleEvent = (type: string) => update({ events: draft.events.includes(type) ? draft.events.filter((t) => t !== type) : [...draft.events, type] })
  const title = original ? `Edit ${original.url}` : 'Register an endpoint'

  async function submit (event: Event) {
    event.preventDefault()
    setError(null)
    let request: Promise<Webhook>
    if (original) {
      const patch = changesOf(draft, original)
      if (Object.keys(patch).length === 0) {
        setUnchanged(true)
        return
      }
      request = client.request<Webhook>(endpointPath(original), { method: 'PATCH', json: patch })
    } else {
      const description = draft.description.trim()
      request = client.request<Webhook>('/admin/webhooks', {
        method: 'POST',
        json: { url: draft.url.trim(), events: eventsOf(draft), ...(description ? { description } : {}) },
      })
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
    <form class='client-form' aria-label={title} onSubmit={submit} data-testid='webhook-form'>
      <h3>{title}</h3>
      <div class='field'>
        <label for='webhook-url'>URL</label>
        <input
          id='webhook-url'
          ref={urlInput}
          name='url'
          type='url'
          required
          minLength={8}
          maxLength={2048}
          placeholder='https://receiver.example.com/webhooks'
          aria-describedby='webhook-url-hint'
          value={draft.url}
          onInput={(e) => update({ url: e.currentTarget.value })}
        />
        <small id='webhook-url-hint' class='hint'>
          https (or http). Addresses on loopback, private, link-local or metadata networks are refused unless the service allows them
          (WEBHOOK_ALLOW_PRIVATE_NETWORKS). Redirects are never followed.
        </small>
      </div>
      <fieldset class='field'>
        <legend>Events</legend>
        <label class='check'>
          <input type='checkbox' name='all-events' checked={draft.allEvents} onChange={(e) => update({ allEvents: e.currentTarget.checked })} /> Every event (*), the
          types added later too
        </label>
        {!draft.allEvents && (
          <fieldset class='field' aria-describedby='webhook-types-hint'>
            <legend>Event types</legend>
            <small id='webhook-types-hint' class='hint'>
              The audit event types; at least one.
            </small>
            {AUDIT_EVENT_TYPES.map((type) => (
              <label key={type} class='check'>
                <input type='checkbox' name='events' value={type} checked={draft.events.includes(type)} onChange={() => toggleEvent(type)} /> {type}
              </label>
            ))}
          </fieldset>
        )}
      </fieldset>
      <div class='field'>
        <label for='webhook-description'>Description</label>
        <textarea
          id='webhook-description'
          name='description'
          rows={2}
          maxLength={500}
          aria-describedby='webhook-description-hint'
          value={draft.description}
          onInput={(e) => update({ description: e.currentTarget.value })}
        />
        <small id='webhook-description-hint' class='hint'>
          Optional: what receives the events, and who runs it.
        </small>
      </div>
      <div class='actions'>
        <button type='submit' disabled={busy || (!draft.allEvents && draft.events.length === 0)}>
          {busy ? 'Saving…' : original ? 'Save changes' : 'Register endpoint'}
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

function deliveryState (delivery: WebhookDelivery): string {
  if (delivery.status === 'delivered') return `delivered ${when(delivery.deliveredAt)}`
  if (delivery.status === 'dead') return `dead ${when(delivery.deadAt)}`
  return delivery.nextAttemptAt ? `pending; next attempt ${when(delivery.nextAttemptAt)}` : 'pending'
}

/** What one attempt got: the receiver's status, or that no answer came. */
const answerOf = (status: number | null) => (status === null ? 'no answer' : `HTTP ${status}`)

function AttemptLog ({ delivery }: { delivery: WebhookDelivery }) {
  if (delivery.attemptLog.length === 0) return <>—</>
  return (
    <details>
      <summary>
        {delivery.attemptLog.length} attempt{delivery.attemptLog.length === 1 ? '' : 's'}
      </summary>
      <ul class='plain' aria-label={`Attempts of ${delivery.webhookId}`}>
        {delivery.attemptLog.map((attempt, i) => (
          <li key={i}>
            Attempt {attempt.attempt}, {when(attempt.at)}: {answerOf(attempt.status)} in {attempt.latencyMs} ms
            {attempt.error && <div class='inline-error'>{attempt.error}</div>}
          </li>
        ))}
      </ul>
    </details>
  )
}

/**
 * An endpoint's deliveries, newest first, by status; "Load more" adds the
 * next page. While only the first page is shown, it asks again every few
 * seconds so attempts appear as the worker makes them (`onActivity` then
 * refreshes the endpoint list too: its failing-since and state move with them).
 */
function Deliveries ({ hook, onActivity }: { hook: Webhook; onActivity: () => void }) {
  const [status, setStatus] = useState('')
  const [live, setLive] = useState(true)
  const [load, reload] = useLoad(
    () => client.request<Page<WebhookDelivery>>(`${endpointPath(hook)}/deliveries${query({ status, limit: DELIVERIES_PER_PAGE })}`),
    `${hook.id}|${status}`
  )
  // The pages after the first, as "Load more" fetched them.
  const [more, setMore] = useState<Page<WebhookDelivery> | null>(null)
  const refresh = () => {
    setMore(null)
    reload()
    onActivity()
  }
  useEffect(() => {
    if (!live || more !== null) return
    const timer = setInterval(() => {
      if (document.visibilityState !== 'visible') return
      reload()
      onActivity()
    }, LIVE_REFRESH_MS)
    return () => clearInterval(timer)
  }, [live, more])

  const heading = `Deliveries to ${hook.url}`
  return (
    <section class='webhook-deliveries' aria-label={heading} data-testid='webhook-deliveries-panel'>
      <h3>{heading}</h3>
      {!hook.enabled && (
        <p class='notice'>This endpoint is disabled: no new event is queued for it, and its deliveries (a retried one too) wait until it is enabled. A replay catches up.</p>
      )}
      <div class='filters'>
        <label>
          Delivery status{' '}
          <select
            value={status}
            onChange={(e) => {
              setMore(null)
              setStatus(e.currentTarget.value)
            }}
          >
            <option value=''>All</option>
            {DELIVERY_STATUSES.map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </label>
        <label class='check'>
          <input type='checkbox' checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Refresh automatically
        </label>
        <button type='button' onClick={refresh}>
          Refresh deliveries
        </button>
      </div>
      <LoadView load={load} what='deliveries' retry={reload}>
        {(first) => {
          const items = more ? [...first.items, ...more.items] : first.items
          const nextCursor = more ? more.nextCursor : first.nextCursor
          return items.length === 0
            ? (
              <Empty>{status ? `No ${status} deliveries.` : 'No deliveries yet: one appears with the next event this endpoint subscribes to.'}</Empty>
              )
            : (
              <>
                <Table
                  testid='webhook-deliveries'
                  label='Deliveries'
                  rows={items}
                  rowKey={(delivery) => delivery.id}
                  rowAttributes={(delivery) => ({
                    'data-delivery-id': delivery.id,
                    'data-message-id': delivery.webhookId,
                    'data-event-type': delivery.eventType ?? '',
                    'data-status': delivery.status,
                    'data-attempts': String(delivery.attempts),
                    'data-last-status': delivery.lastStatus === null ? '' : String(delivery.lastStatus),
                  })}
                  columns={[
                    { header: 'Created', cell: (delivery) => when(delivery.createdAt) },
                    {
                      header: 'Event',
                      cell: (delivery) => (
                        <>
                          {delivery.eventType ?? '(event deleted)'}
                          <div>
                            <code>{delivery.webhookId}</code>
                          </div>
                        </>
                      ),
                    },
                    { header: 'Status', cell: deliveryState },
                    { header: 'Attempts', cell: (delivery) => delivery.attempts },
                    { header: 'Last answer', cell: (delivery) => (delivery.attempts === 0 && delivery.lastStatus === null ? '—' : answerOf(delivery.lastStatus)) },
                    { header: 'Latency', cell: (delivery) => (delivery.lastLatencyMs === null ? '—' : `${delivery.lastLatencyMs} ms`) },
                    { header: 'Last error', class: 'ua', cell: (delivery) => (delivery.lastError ? <span class='inline-error'>{delivery.lastError}</span> : '—') },
                    { header: 'Attempt log', class: 'ua', cell: (delivery) => <AttemptLog delivery={delivery} /> },
                  ]}
                  revoke={{
                    text: 'Retry',
                    label: (delivery) => `Retry ${delivery.eventType ?? 'the delivery'} ${delivery.webhookId}`,
                    action: async (delivery) => {
                      await client.request<WebhookDelivery>(`${endpointPath(hook)}/deliveries/${encodeURIComponent(delivery.id)}/retry`, { method: 'POST' })
                      refresh()
                    },
                  }}
                />
                {nextCursor && (
                  <div class='pager'>
                    <ActionButton
                      action={async () => {
                        const page = await client.request<Page<WebhookDelivery>>(
                          `${endpointPath(hook)}/deliveries${query({ status, limit: DELIVERIES_PER_PAGE, cursor: nextCursor })}`
                        )
                        setMore({ items: [...(more?.items ?? []), ...page.items], nextCursor: page.nextCursor })
                      }}
                    >
                      Load more
                    </ActionButton>
                  </div>
                )}
              </>
              )
        }}
      </LoadView>
      <ReplayForm hook={hook} onQueued={refresh} />
    </section>
  )
}

/** An `<input type=datetime-local>` value: the browser's local time, to the minute. */
function toLocalInput (date: Date): string {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}

function fromLocalInput (local: string): string | null {
  const date = new Date(local)
  return local === '' || Number.isNaN(date.getTime()) ? null : date.toISOString()
}

/** Queues again every event of the endpoint's types in [since, until). */
function ReplayForm ({ hook, onQueued }: { hook: Webhook; onQueued: () => void }) {
  const [range, setRange] = useState(() => {
    const now = Date.now()
    return { since: toLocalInput(new Date(now - 3600_000)), until: toLocalInput(new Date(now + 60_000)) }
  })
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [queued, setQueued] = useState<number | null>(null)

  async function submit (event: Event) {
    event.preventDefault()
    setError(null)
    setQueued(null)
    const since = fromLocalInput(range.since)
    const until = fromLocalInput(range.until)
    if (since === null || until === null) {
      setError(new Error('Give both times.'))
      return
    }
    setBusy(true)
    try {
      const answer = await client.request<{ queued: number }>(`${endpointPath(hook)}/replay`, { method: 'POST', json: { since, until } })
      setQueued(answer.queued)
      onQueued()
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class='filters' aria-label={`Replay events to ${hook.url}`} onSubmit={submit} data-testid='webhook-replay'>
      <h4>Replay a time range</h4>
      <label>
        Since <input type='datetime-local' name='since' step={1} required value={range.since} onInput={(e) => setRange({ ...range, since: e.currentTarget.value })} />
      </label>
      <label>
        Until <input type='datetime-local' name='until' step={1} required value={range.until} onInput={(e) => setRange({ ...range, until: e.currentTarget.value })} />
      </label>
      <button type='submit' disabled={busy}>
        {busy ? 'Queueing…' : 'Replay'}
      </button>
      <small class='hint'>Every event of its types from since (included) to until (excluded) is delivered again, with its webhook-id, so receivers deduplicate.</small>
      {queued !== null && (
        <p class='notice' role='status' data-testid='webhook-replay-queued'>
          Queued {queued} deliver{queued === 1 ? 'y' : 'ies'}.
        </p>
      )}
      {error !== null && <ErrorBox error={error} />}
    </form>
  )
}
