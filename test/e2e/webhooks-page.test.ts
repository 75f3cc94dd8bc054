import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import tap, { type Test } from 'tap'
import { browserTest, dashboardService, jsonApi, launchBrowser, watchPage } from '../helpers/browser.js'
import { WebhookReceiver } from '../helpers/webhook-receiver.js'
import { PROJECT_ROOT } from '../../src/paths.js'
import { recordAuditEvent } from '../../src/shared/audit.js'

/**
 * The dashboard's Webhooks page (#/webhooks, DESIGN §3.18) in Chromium,
 * against a loopback receiver that verifies every message with the
 * standardwebhooks package: register (secret shown once, given to the
 * receiver), a delivery shown delivered, a failed attempt with its status,
 * Retry, rotate, disable and enable, replay, delete; and a loopback URL
 * refused with its reason when private networks are not allowed.
 */

// Two browsers and two apps, on the embedded database of a slow machine.
tap.setTimeout(360_000)

const PASSWORD = 'a fine passphrase'
const SCREENSHOTS = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
const shot = async (page: Page, name: string) => {
  await mkdir(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `webhooks-${name}.png`), fullPage: true })
}
/** Deliveries on a loaded machine: the worker polls every 100 ms, but the embedded database can stall. */
const DELIVERY_MS = 60_000

/** The service with an admin signed in to the dashboard's Webhooks page, at 1280x800. */
async function adminOnWebhooksPage (t: Test, label: string, env: Record<string, string>) {
  const service = await dashboardService(t, env)
  const api = jsonApi(service.origin)
  const adminEmail = `admin-${Date.now()}@e2e.test`
  const adminId = (await api('POST', '/auth/signup', { email: adminEmail, password: PASSWORD })).body.user.id as string
  await service.app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  await service.app.db.user.update({ where: { id: adminId }, data: { emailVerifiedAt: new Date() } })
  const context = await launchBrowser(t, label)
  const problems: string[] = []
  const page = watchPage(context.pages()[0] ?? (await context.newPage()), problems)
  page.on('dialog', (dialog) => { dialog.accept().catch(() => {}) })
  await page.goto(`${service.origin}/dashboard/`)
  await page.getByLabel('Email').fill(adminEmail)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.getByTestId('users').waitFor()
  await page.getByRole('link', { name: 'Webhooks' }).click()
  await page.getByRole('heading', { name: 'Webhooks' }).waitFor()
  return { ...service, api, page, problems }
}

/** The secret the page shows once, after it is dismissed. */
async function readSecret (page: Page): Promise<{ secret: string; text: string }> {
  const box = page.getByTestId('webhook-secret')
  await box.waitFor()
  const secret = (await box.locator('code.secret').textContent()) ?? ''
  const text = (await box.textContent()) ?? ''
  await page.getByRole('button', { name: 'I have stored it' }).click()
  await box.waitFor({ state: 'detached' })
  return { secret, text }
}

/** "2026-05-01T09:30", the browser's local time (the same zone as this process), to the minute. */
function localMinute (ms: number): string {
  const date = new Date(Math.floor(ms / 60_000) * 60_000)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${two(date.getHours())}:${two(date.getMinutes())}`
}

/** An attribute of every row of the deliveries table. */
async function rowAttribute (page: Page, name: string): Promise<string[]> {
  return (await page.evaluate(`[...document.querySelectorAll('[data-testid=webhook-deliveries] tbody tr')].map((row) => row.getAttribute(${JSON.stringify(name)}))`)) as string[]
}

const bodyOf = (message: { body: string }) => JSON.parse(message.body) as { type: string; data: { userId: string | null } }

await browserTest('the dashboard\'s Webhooks page: register (secret shown once), deliveries, a failure and Retry, rotate, disable and enable, replay, delete', async (t: Test) => {
  const startedAt = Date.now()
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  // A failed attempt waits an hour: the delivery after a 500 is the Retry button's.
  const { app, api, page, problems } = await adminOnWebhooksPage(t, 'webhooks', {
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '100',
    WEBHOOK_RETRY_BASE_SECONDS: '3600',
  })
  await page.getByText('No webhook endpoints yet.').waitFor()
  const signup = async (name: string) =>
    (await api('POST', '/auth/signup', { email: `${name}-${Date.now()}@e2e.test`, password: PASSWORD })).body.user.id as string

  // Register: chosen types, a description; the secret once, handed to the receiver.
  await page.getByRole('button', { name: 'Register an endpoint' }).click()
  await page.getByLabel('URL', { exact: true }).fill(receiver.url)
  await page.getByRole('checkbox', { name: /^Every event \(\*\)/ }).uncheck()
  t.ok(await page.getByRole('button', { name: 'Register endpoint' }).isDisabled(), 'no type chosen: nothing to register')
  await page.getByRole('checkbox', { name: 'user_signed_up', exact: true }).check()
  await page.getByLabel('Description').fill('E2E receiver')
  await shot(page, 'register')
  await page.getByRole('button', { name: 'Register endpoint' }).click()
  await page.getByTestId('webhook-secret').waitFor()
  await shot(page, 'secret')
  const registered = await readSecret(page)
  t.match(registered.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/, 'the signing secret')
  t.match(registered.text, /will not be shown again/, 'shown once, and said so')
  t.match(registered.text, /Give it to the receiver/, 'with a hint of what to do with it')
  t.equal(await page.locator('code.secret').count(), 0, 'the secret is gone once dismissed')
  receiver.secrets = [registered.secret]
  const row = page.locator('[data-testid=webhooks] tr[data-endpoint-id]', { hasText: receiver.url })
  await row.waitFor()
  const endpointId = (await row.getAttribute('data-endpoint-id'))!
  const endpointRow = page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"]`)
  t.match(await endpointRow.textContent(), /E2E receiver/, 'the description')
  t.match(await endpointRow.textContent(), /user_signed_up/, 'the events')
  t.match(await endpointRow.textContent(), /enabled/, 'enabled')

  // An event: delivered, verified by the receiver with the secret read from the page, shown delivered.
  await page.getByRole('button', { name: `Deliveries to ${receiver.url}` }).click()
  await page.getByRole('heading', { name: `Deliveries to ${receiver.url}` }).waitFor()
  const first = await signup('first')
  const [message] = await receiver.waitForAccepted(1, DELIVERY_MS)
  t.ok(message!.verified, 'the receiver verifies the message with the secret the page showed')
  t.equal(bodyOf(message!).type, 'user_signed_up', 'the event')
  t.equal(bodyOf(message!).data.userId, first, 'of the user who signed up')
  const delivered = page.locator(`[data-testid=webhook-deliveries] tr[data-message-id="${message!.id}"][data-status=delivered]`)
  await delivered.waitFor({ timeout: DELIVERY_MS })
  const firstId = (await delivered.getAttribute('data-delivery-id'))!
  const firstRow = page.locator(`[data-testid=webhook-deliveries] tr[data-delivery-id="${firstId}"]`)
  t.match(await delivered.textContent(), /user_signed_up/, 'listed delivered, with its event type')
  t.match(await delivered.textContent(), /HTTP 200/, 'the last answer')
  t.match(await delivered.textContent(), /\d+ ms/, 'its latency')

  // The receiver fails: the attempt is listed with its status and error, the endpoint failing since then.
  receiver.answer = () => 500
  await signup('second')
  const failed = page.locator('[data-testid=webhook-deliveries] tr[data-status=pending][data-last-status="500"]')
  await failed.waitFor({ timeout: DELIVERY_MS })
  const failedId = (await failed.getAttribute('data-delivery-id'))!
  const failedRow = page.locator(`[data-testid=webhook-deliveries] tr[data-delivery-id="${failedId}"]`)
  t.equal(await failedRow.getAttribute('data-attempts'), '1', 'one attempt')
  t.match(await failedRow.textContent(), /HTTP 500/, 'the last answer')
  t.match(await failedRow.textContent(), /not now/, 'the last error, with what the receiver said')
  t.match(await failedRow.textContent(), /next attempt/, 'and when the next is due')
  await failedRow.getByText('1 attempt', { exact: true }).click()
  const log = failedRow.getByRole('list', { name: /^Attempts of evt_/ })
  await log.waitFor()
  t.match(await log.textContent(), /Attempt 1, .*: HTTP 500 in \d+ ms/, 'the attempt log')
  await shot(page, 'failed-attempt')
  await failedRow.getByText('1 attempt', { exact: true }).click() // closed again
  await page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"]:not([data-failing-since=""])`).waitFor({ timeout: DELIVERY_MS })

  // The receiver recovers; Retry delivers it now (its next attempt was an hour away).
  receiver.answer = () => 200
  await failedRow.getByRole('button', { name: /^Retry user_signed_up evt_\d+$/ }).click()
  await page.locator(`[data-testid=webhook-deliveries] tr[data-delivery-id="${failedId}"][data-status=delivered]`).waitFor({ timeout: DELIVERY_MS })
  const accepted = await receiver.waitForAccepted(2, DELIVERY_MS)
  t.ok(accepted[1]!.verified, 'the retried message verifies')
  t.equal(accepted[1]!.id, receiver.received.find((m) => m.status === 500)!.id, 'the same webhook-id as the failed attempt')
  await failedRow.getByText('2 attempts', { exact: true }).click()
  t.match(await failedRow.getByRole('list', { name: /^Attempts of evt_/ }).textContent(), /HTTP 200 in \d+ ms.*HTTP 500 in \d+ ms/s, 'both attempts, newest first')
  await page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"][data-failing-since=""]`).waitFor({ timeout: DELIVERY_MS })

  // Edit: the description and one more type; then nothing changed.
  await page.getByRole('button', { name: `Edit ${receiver.url}` }).click()
  await page.getByLabel('Description').fill('E2E receiver, edited')
  await page.getByRole('checkbox', { name: 'password_changed', exact: true }).check()
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.getByTestId('webhooks-notice').getByText(`Saved ${receiver.url}.`).waitFor()
  // The list catches up after the notice.
  await page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"]`, { hasText: 'E2E receiver, edited' }).waitFor()
  t.match(await endpointRow.textContent(), /user_signed_up, password_changed/, 'the new events')
  await page.getByRole('button', { name: `Edit ${receiver.url}` }).click()
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.getByText('Nothing changed.').waitFor()
  await page.getByRole('button', { name: 'Cancel' }).click()

  // Rotate: a new secret, shown once; the receiver knowing only it verifies the next message.
  await page.getByRole('button', { name: `Rotate the secret of ${receiver.url}` }).click()
  const rotated = await readSecret(page)
  t.match(rotated.secret, /^whsec_/, 'the rotated secret')
  t.not(rotated.secret, registered.secret, 'a new secret')
  t.match(rotated.text, /previous secret keeps signing beside it for a day/, 'the old one signs for a day')
  receiver.secrets = [rotated.secret]
  const third = await signup('third')
  const afterRotation = (await receiver.waitForAccepted(3, DELIVERY_MS))[2]!
  t.equal(bodyOf(afterRotation).data.userId, third, 'the next event')
  t.ok(afterRotation.verified, 'verified with the rotated secret alone')

  // Disable: nothing is sent, a retried delivery waits, a new event is not queued for it; enable: the retried one goes.
  await page.getByRole('button', { name: `Disable ${receiver.url}` }).click()
  await page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"][data-enabled=false]`).waitFor()
  t.match(await endpointRow.textContent(), /disabled by an admin/, 'the reason')
  await page.getByText(/^This endpoint is disabled/).waitFor()
  await firstRow.getByRole('button', { name: /^Retry / }).click()
  await page.locator(`[data-testid=webhook-deliveries] tr[data-delivery-id="${firstId}"][data-status=pending][data-attempts="0"]`).waitFor()
  const fourth = await signup('fourth')
  const fourthEvent = await app.db.auditEvent.findFirstOrThrow({ where: { type: 'user_signed_up', userId: fourth } })
  t.equal(await app.db.webhookDelivery.count({ where: { eventId: fourthEvent.id } }), 0, 'an event while disabled is not queued for it')
  t.equal(receiver.accepted.length, 3, 'nothing sent while disabled')
  await page.getByRole('button', { name: `Enable ${receiver.url}` }).click()
  await page.locator(`[data-testid=webhooks] tr[data-endpoint-id="${endpointId}"][data-enabled=true]`).waitFor()
  const resent = (await receiver.waitForAccepted(4, DELIVERY_MS))[3]!
  t.equal(resent.id, message!.id, 'the retried delivery, sent once enabled, with its webhook-id')
  await page.locator(`[data-testid=webhook-deliveries] tr[data-delivery-id="${firstId}"][data-status=delivered]`).waitFor({ timeout: DELIVERY_MS })

  // Replay every event of its types since before the test: the queued count, then each delivered again (the fourth user's too).
  const since = localMinute(startedAt) // the minute the test started, before the admin signed up
  const until = localMinute(Date.now() + 120_000)
  const replay = page.getByRole('form', { name: `Replay events to ${receiver.url}` })
  await replay.getByLabel('Since').fill(since)
  await replay.getByLabel('Until').fill(until)
  await replay.getByRole('button', { name: 'Replay' }).click()
  const queuedNotice = page.getByTestId('webhook-replay-queued')
  await queuedNotice.waitFor({ timeout: DELIVERY_MS })
  const expected = await app.db.auditEvent.count({
    where: { type: { in: ['user_signed_up', 'password_changed'] }, at: { gte: new Date(since), lt: new Date(until) } },
  })
  t.equal(expected, 5, 'the admin and four users signed up in the range')
  t.equal(await queuedNotice.textContent(), `Queued ${expected} deliveries.`, 'the queued count')
  const afterReplay = await receiver.waitForAccepted(4 + expected, DELIVERY_MS)
  t.ok(afterReplay.some((m) => bodyOf(m).data.userId === fourth), 'the event missed while disabled, replayed')
  t.ok(afterReplay.every((m) => m.verified), 'every message verifies')

  // More deliveries than a page: "Load more" adds the next one; the status filter.
  for (let i = 0; i < 15; i++) await recordAuditEvent(app.db, { type: 'password_changed', userId: first })
  const total = 3 + expected + 15
  await receiver.waitForAccepted(4 + expected + 15, DELIVERY_MS)
  const deliveryRows = page.locator('[data-testid=webhook-deliveries] tbody tr')
  await page.getByRole('button', { name: 'Load more' }).waitFor({ timeout: DELIVERY_MS })
  t.equal(await deliveryRows.count(), 20, 'a page of 20')
  await page.getByRole('button', { name: 'Load more' }).click()
  await deliveryRows.nth(total - 1).waitFor()
  t.equal(await deliveryRows.count(), total, 'then the rest')
  t.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'and no more')
  t.equal(new Set(await rowAttribute(page, 'data-delivery-id')).size, total, 'each once')
  await page.getByLabel('Delivery status').selectOption('dead')
  await page.getByText('No dead deliveries.').waitFor()
  await page.getByLabel('Delivery status').selectOption('delivered')
  await page.getByTestId('webhook-deliveries').waitFor() // the list of dead ones was empty: this is the new one
  t.same([...new Set(await rowAttribute(page, 'data-status'))], ['delivered'], 'only delivered ones')

  // At 420 px the page does not scroll sideways: its tables scroll in their own boxes.
  await page.setViewportSize({ width: 420, height: 800 })
  const widths = (await page.evaluate('({ d: document.documentElement.scrollWidth, w: document.documentElement.clientWidth })')) as { d: number; w: number }
  t.ok(widths.d <= widths.w, `no sideways scroll at 420 px ${JSON.stringify(widths)}`)
  await shot(page, 'narrow')
  await page.setViewportSize({ width: 1280, height: 800 })

  // Delete, after a confirm: the endpoint and its deliveries go.
  await page.getByRole('button', { name: `Delete ${receiver.url}` }).click()
  await page.getByText('No webhook endpoints yet.').waitFor()
  t.equal(await page.getByTestId('webhook-deliveries-panel').count(), 0, 'its deliveries are closed')
  t.match(await page.getByTestId('webhooks-notice').textContent(), `Deleted ${receiver.url}.`)
  t.equal(await app.db.webhookEndpoint.count(), 0, 'gone from the service')
  t.same(problems, [], 'no page error, no CSP refusal')
})

await browserTest('the Webhooks page shows why a loopback URL is refused when private networks are not allowed', async (t: Test) => {
  const { page, problems } = await adminOnWebhooksPage(t, 'webhooks-refused', {})
  await page.getByRole('button', { name: 'Register an endpoint' }).click()
  await page.getByLabel('URL', { exact: true }).fill('http://127.0.0.1:9/hooks')
  await page.getByRole('button', { name: 'Register endpoint' }).click()
  const error = page.getByTestId('webhook-form').getByRole('alert')
  await error.waitFor()
  t.match(await error.textContent(), /non-public address \(loopback\)/, 'the service\'s reason, visible')
  await shot(page, 'refused')
  t.equal(await page.getByTestId('webhook-secret').count(), 0, 'no secret')
  await page.getByRole('button', { name: 'Cancel' }).click()
  t.ok(await page.getByText('No webhook endpoints yet.').isVisible(), 'nothing registered')
  t.same(problems, [])
})
