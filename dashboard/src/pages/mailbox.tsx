import { client, query, type OutboxMessage, type Page } from '../api.js'
import { Table } from '../table.js'
import { Empty, LoadView, useLoad, when } from '../ui.js'

/** Splits a message's text into strings and clickable links. */
function withLinks (text: string) {
  return text.split(/(https?:\/\/[^\s<>"]+)/).map((part, i) => (i % 2 === 1 ? <a key={i} href={part}>{part}</a> : part))
}

/**
 * #/mailbox, the email outbox: every message's delivery state; in the
 * development mailbox (no SMTP_URL) each message also rendered, links
 * clickable, so a reset or a verification can be clicked through without a
 * mail server.
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
                <Table
                  testid='outbox'
                  label='Messages'
                  rows={page.items}
                  rowKey={(message) => message.id}
                  rowAttributes={(message) => ({ 'data-message-id': message.id, 'data-recipient': message.recipient })}
                  columns={[
                    { header: 'Queued', cell: (message) => when(message.createdAt) },
                    { header: 'To', cell: (message) => message.recipient },
                    {
                      header: 'Message',
                      cell: (message) =>
                        message.rendered
                          ? (
                            <details>
                              <summary>{message.rendered.subject}</summary>
                              <pre class='mail'>{withLinks(message.rendered.text)}</pre>
                            </details>
                            )
                          : (
                            <code>{message.template}</code>
                            ),
                    },
                    {
                      header: 'Status',
                      cell: (message) => (
                        <>
                          {message.status}
                          {message.lastError && <div class='inline-error'>{message.lastError}</div>}
                        </>
                      ),
                    },
                    { header: 'Attempts', cell: (message) => message.attempts },
                  ]}
                />
                <nav class='pager' aria-label='Pages'>
                  {cursor && <a href={`#/mailbox${query({ status })}`}>First page</a>}
                  {page.nextCursor && <a href={`#/mailbox${query({ status, cursor: page.nextCursor })}`}>Next page</a>}
                </nav>
              </>
              )}
      </LoadView>
    </section>
  )
}
