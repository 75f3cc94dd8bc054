import type { Test } from 'tap'
import { json } from '../helpers/app.js'
import type { Response } from './context.js'

/** What several sections of the attack catalogue (catalogue-*.ts) assert and measure alike. */

export function assertInvalidToken (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 120)})`)
  t.match(String(response.headers['www-authenticate'] ?? ''), /^Bearer error="invalid_token"/, `${label}: RFC 6750 invalid_token challenge`)
}

export function assertInvalidGrant (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 120)})`)
  t.equal(json(response).error, 'invalid_grant', `${label}: invalid_grant`)
}

export function assertNo5xx (t: Test, response: Response, label: string) {
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${label}: 4xx, got ${response.statusCode} (${response.body.slice(0, 120)})`)
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}
