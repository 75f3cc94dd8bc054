/**
 * The hosted pages of the authorization server (DESIGN §3.15): plain HTML
 * forms that work without script (the passkey buttons need it), in the
 * dashboard's look, usable at 420 px. Every value is escaped; the pages load
 * only this service's own stylesheet and script (pages-assets.ts).
 */

export interface PageFrame {
  title: string
  /** The forms' CSRF value (the as_csrf cookie's). */
  csrf: string
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

function document (title: string, body: string, script = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/oauth/assets/pages.css">
${script ? '<script src="/oauth/assets/pages.js" defer></script>' : ''}
</head>
<body>
<main class="card">
${body}
</main>
</body>
</html>`
}

function hidden (fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n')
}

function alert (message: string | undefined): string {
  return message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''
}

export interface SignInPage {
  csrf: string
  interaction: string
  clientName: string
  email?: string | undefined
  error?: string | undefined
  /** A notice that is no error (an account created, waiting for its address to be confirmed). */
  notice?: string | undefined
  /** The platform's own sign-up page (SIGN_UP_URL); unset: this service's sign-up page, in the same flow. */
  signUpUrl?: string | undefined
  forgotPasswordUrl?: string | undefined
  passkeys: boolean
}

export function signInPage (page: SignInPage): string {
  const fields = hidden({ interaction: page.interaction, csrf: page.csrf })
  const signUp = page.signUpUrl
    ? `<a href="${escapeHtml(page.signUpUrl)}">Create an account</a>`
    : `<form method="post" action="/oauth/sign-up/form" class="inline">\n${fields}\n<button type="submit" class="link">Create an account</button>\n</form>`
  const links = [
    signUp,
    page.forgotPasswordUrl ? `<a href="${escapeHtml(page.forgotPasswordUrl)}">Forgot your password?</a>` : '',
  ].filter(Boolean).join('\n')
  const passkey = page.passkeys
    ? `<form method="post" action="/oauth/sign-in/passkey" class="passkey" data-passkey="sign-in">
${fields}
<input type="hidden" name="credential" value="">
<button type="button" data-passkey-start>Sign in with a passkey</button>
</form>`
    : ''
  return document('Sign in', `<h1>Sign in</h1>
<p class="for">to continue to <strong>${escapeHtml(page.clientName)}</strong></p>
${alert(page.error)}
${page.notice ? `<p class="notice" role="status">${escapeHtml(page.notice)}</p>` : ''}
<form method="post" action="/oauth/sign-in">
${fields}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username webauthn" required value="${escapeHtml(page.email ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${passkey}
<nav class="links">${links}</nav>`, page.passkeys)
}

export interface SignUpPage {
  csrf: string
  interaction: string
  clientName: string
  email?: string | undefined
  error?: string | undefined
}

export function signUpPage (page: SignUpPage): string {
  const fields = hidden({ interaction: page.interaction, csrf: page.csrf })
  return document('Create an account', `<h1>Create an account</h1>
<p class="for">to continue to <strong>${escapeHtml(page.clientName)}</strong></p>
${alert(page.error)}
<form method="post" action="/oauth/sign-up">
${fields}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" required value="${escapeHtml(page.email ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" aria-describedby="password-help">
<p id="password-help" class="help">At least 8 characters; a common password is refused.</p>
<button type="submit">Create account</button>
</form>
<form method="post" action="/oauth/sign-in/form" class="inline">
${fields}
<button type="submit" class="link">I have an account: sign in</button>
</form>`)
}

export interface SecondFactorPage {
  csrf: string
  interaction: string
  mfaToken: string
  factors: readonly string[]
  error?: string | undefined
}

export function secondFactorPage (page: SecondFactorPage): string {
  const fields = hidden({ interaction: page.interaction, csrf: page.csrf, mfa_token: page.mfaToken })
  const codes = page.factors.includes('otp') || page.factors.includes('recovery_code')
  const passkey = page.factors.includes('passkey')
  return document('Second step', `<h1>Confirm it is you</h1>
${alert(page.error)}
${codes
? `<form method="post" action="/oauth/sign-in/second-factor">
${fields}
<label for="code">Code</label>
<input id="code" name="code" inputmode="text" autocomplete="one-time-code" required aria-describedby="code-help">
<p id="code-help" class="help">The 6-digit code of your authenticator app, or one of your recovery codes.</p>
<button type="submit">Sign in</button>
</form>`
: ''}
${passkey
? `<form method="post" action="/oauth/sign-in/second-factor" data-passkey="second-factor">
${fields}
<input type="hidden" name="credential" value="">
<button type="button" data-passkey-start>Use a passkey</button>
</form>`
: ''}`, passkey)
}

export interface ConsentPage {
  csrf: string
  interaction: string
  clientName: string
  clientUri?: string | null | undefined
  logoUri?: string | null | undefined
  email: string
  scopes: { scope: string; description: string }[]
}

export function consentPage (page: ConsentPage): string {
  const logo = page.logoUri ? `<img class="logo" src="${escapeHtml(page.logoUri)}" alt="" width="48" height="48">` : ''
  const home = page.clientUri ? `<p class="help"><a href="${escapeHtml(page.clientUri)}" rel="noopener noreferrer">${escapeHtml(page.clientUri)}</a></p>` : ''
  const list = page.scopes.map((s) => `<li>${escapeHtml(s.description)}</li>`).join('\n')
  return document('Allow access', `${logo}<h1>${escapeHtml(page.clientName)} wants to</h1>
<ul class="scopes">${list}</ul>
<p class="help">Signed in as ${escapeHtml(page.email)}. You can withdraw this access at any time from your account's apps.</p>
${home}
<form method="post" action="/oauth/consent" class="decision">
${hidden({ interaction: page.interaction, csrf: page.csrf })}
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="allow" class="primary">Allow</button>
</form>`)
}

export interface LogoutPage {
  csrf: string
  /** The logout request, sealed like an authorization request. */
  logout: string
  clientName?: string | undefined
}

export function logoutPage (page: LogoutPage): string {
  return document('Sign out', `<h1>Sign out?</h1>
<p>${page.clientName ? `${escapeHtml(page.clientName)} asks to sign you out.` : 'You are about to sign out.'} This ends your sign-in here, for every app that uses it.</p>
<form method="post" action="/oauth/logout">
${hidden({ csrf: page.csrf, logout: page.logout })}
<button type="submit" class="primary">Sign out</button>
</form>`)
}

export function signedOutPage (): string {
  return document('Signed out', '<h1>You are signed out</h1>\n<p>You can close this window.</p>')
}

export function errorPage (message: string): string {
  return document('Sign-in error', `<h1>This sign-in cannot continue</h1>\n${alert(message)}\n<p class="help">Go back to the application and try again.</p>`)
}
