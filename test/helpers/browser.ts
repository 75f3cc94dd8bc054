import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import tap, { type Test } from 'tap'
import { DASHBOARD_DIR } from '../../src/features/dashboard/plugin.js'
import { listeningTestApp } from './app.js'

/** Debian's Chromium, driven by playwright-core (no browser is downloaded). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Why browser tests of the dashboard cannot run here, or null when they can. */
export function browserTestsUnavailable (): string | null {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`
  if (!existsSync(join(DASHBOARD_DIR, 'index.html'))) return `the dashboard is not built (${DASHBOARD_DIR}; npm run build:dashboard)`
  return null
}

/** Headless Chromium with a fresh profile, closed and removed when `t` ends. */
export async function launchBrowser (t: Test, label: string): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core')
  const profile = await mkdtemp(join(tmpdir(), `token-auth-${label}-`))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(15_000)
  return context
}

/**
 * Runs `run` as the test `name` when a browser can run here; otherwise a
 * skip on a developer machine, and a failure under CI, which must run them.
 */
export async function browserTest (name: string, run: (t: Test) => Promise<void>): Promise<void> {
  const reason = browserTestsUnavailable()
  if (reason === null) {
    await tap.test(name, run)
  } else if (process.env.CI) {
    tap.fail(`browser tests cannot run: ${reason}`)
  } else {
    tap.comment(`browser tests skipped: ${reason}`)
    tap.pass(`skipped: ${reason}`, { skip: reason })
  }
}

/**
 * Records the page's errors and Content-Security-Policy refusals into
 * `problems` (a browser test asserts it stays empty); returns the page.
 */
export function watchPage (page: Page, problems: string[]): Page {
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
  })
  return page
}

/** A JSON client of the service at `origin`, for a browser test's setup: status and parsed body. */
export function jsonApi (origin: string) {
  return async function api (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${origin}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
}

/**
 * The service a dashboard test drives: listening on loopback, plain-http
 * cookies allowed, same origin only; closed at the test's end. `tokenRequests`
 * counts the POST /auth/token requests it has received (logins, refreshes).
 */
export async function dashboardService (t: Test, env: Record<string, string> = {}) {
  const server = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: '', ...env }))
  t.teardown(server.close)
  let tokenRequests = 0
  server.app.server.on('request', (request) => {
    if (request.method === 'POST' && request.url?.split('?')[0] === '/auth/token') tokenRequests++
  })
  return { ...server, origin: server.issuer, tokenRequests: () => tokenRequests }
}

/** Starts `server` on a free loopback port, closed (its connections too) when the test ends; answers the port. */
export async function listenOnLoopback (t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}
