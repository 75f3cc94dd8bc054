import type { Test } from 'tap'
import { canonicalFormCases } from './catalogue-canonical-forms.js'
import { cookieCases } from './catalogue-cookies.js'
import { enumerationCases } from './catalogue-enumeration.js'
import { firstPartyCases } from './catalogue-first-party.js'
import { hardeningCases } from './catalogue-hardening.js'
import { inputCases } from './catalogue-input.js'
import { jwtCases } from './catalogue-jwt.js'
import { oauthCases } from './catalogue-oauth.js'
import { passkeyCases } from './catalogue-passkeys.js'
import { passwordCases } from './catalogue-passwords.js'
import { privilegeCases } from './catalogue-privilege.js'
import { recoveryCases } from './catalogue-recovery.js'
import { refreshTokenCases } from './catalogue-refresh-tokens.js'
import { stepUpCases } from './catalogue-step-up.js'
import { takeoverCases } from './catalogue-takeover.js'
import { totpCases } from './catalogue-totp.js'
import { webhookCases } from './catalogue-webhooks.js'
import { securityEventCases } from './catalogue-security-events.js'
import type { AttackContext } from './context.js'

/**
 * The attack catalogue: every case names the attack, the requirement it
 * checks (RFC 8725 JWT BCP, RFC 6749 §10, RFC 9700 OAuth security BCP,
 * RFC 6750 §5, OWASP ASVS 5.0 V3/V6/V7/V9 and input handling) and runs it
 * against the real service. attack-catalogue.test.ts runs each as one tap
 * subtest `<id> <title> [<source>]`; CATALOGUE.md lists them with results.
 *
 * Forged-JWT classes are covered in depth (every variant) by
 * test/http/authentication.test.ts; here each class appears once, as an
 * attack with its source, next to the session, cookie, enumeration and input
 * attacks.
 */

export interface AttackCase {
  id: string
  title: string
  source: string
  run(ctx: AttackContext, t: Test): Promise<void>
}

/** Every case, in the order CATALOGUE.md lists them: one file a section. */
export const cases: AttackCase[] = [
  ...jwtCases, // JWT (RFC 8725, RFC 9068, ASVS V9)
  ...refreshTokenCases, // refresh tokens (RFC 6749 §10.4, RFC 9700 §4.14)
  ...cookieCases, // cookies and CSRF (RFC 6749 §10.12, RFC 9700 §4.7, ASVS V3)
  ...enumerationCases, // enumeration and brute force (ASVS V6.3)
  ...inputCases, // hostile input (DESIGN §4, ASVS V1, V2, V15)
  ...canonicalFormCases, // canonical forms and storable values (security review, findings 5-7)
  ...privilegeCases, // API keys and privilege
  ...passwordCases, // outside review, 2026-12 (passwords, login races, audit, interop, load)
  ...hardeningCases, // response headers and resource limits
  ...recoveryCases, // account recovery and email (DESIGN §3.11)
  ...stepUpCases, // step-up and authentication levels (DESIGN §3.12)
  ...totpCases,
  ...passkeyCases,
  ...takeoverCases, // account takeover (issue 24; also run over SMTP by takeover.test.ts)
  ...oauthCases, // authorization server and OpenID provider (issue 26; RFC 9700 §4, OAuth 2.1, RFC 9207, OIDC Core)
  ...firstPartyCases, // first-party sign-in at the authorization challenge endpoint (issue 27; the login rows again, draft-ietf-oauth-first-party-apps-04 §9)
  ...webhookCases, // webhooks (DESIGN §3.18): SSRF, replay and forgery of signed messages, the secret, the admin API (OWASP SSRF Prevention Cheat Sheet, Standard Webhooks 1.0)
  ...securityEventCases, // security events (DESIGN §3.18): forged, misdirected and replayed SETs at the resource-server kit (RFC 8417 §4), stream management and polls by others (SSF 1.0 §8)
]
