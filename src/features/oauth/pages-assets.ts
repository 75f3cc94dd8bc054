/**
 * The hosted pages' stylesheet and script, served from this service (the
 * pages' CSP allows only 'self'). The script does one thing: the passkey
 * buttons, which need navigator.credentials.get(); the rest of the pages
 * work without it.
 */

export const PAGES_CSS = `:root { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d232a; background: #f5f6f8; --accent: #2b59c3; --danger: #b42318; }
body { margin: 0; }
.card { box-sizing: border-box; max-width: 24rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; }
@media (max-width: 30rem) { .card { margin: 0; min-height: 100vh; border-radius: 0; box-shadow: none; padding: 1.25rem; } }
h1 { font-size: 1.35rem; margin: 0 0 0.75rem; }
form { display: grid; gap: 0.6rem; margin: 1rem 0; }
label { font-weight: 600; }
input { font: inherit; padding: 0.45rem 0.6rem; border: 1px solid #c4c9d1; border-radius: 4px; }
button { font: inherit; padding: 0.5rem 0.9rem; border: 1px solid #c4c9d1; border-radius: 4px; background: #fff; cursor: pointer; }
form > button[type=submit]:only-of-type:not(.link), button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.decision { grid-template-columns: 1fr 1fr; }
.error { color: var(--danger); background: #fef3f2; padding: 0.6rem 0.8rem; border-radius: 4px; }
.help, .for { color: #4a5563; font-size: 0.92em; }
.links { display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; align-items: center; }
form.inline { display: inline; margin: 0; }
button.link { background: none; border: none; padding: 0; color: var(--accent); text-decoration: underline; }
.notice { background: #ecfdf3; padding: 0.6rem 0.8rem; border-radius: 4px; }
a { color: var(--accent); }
.scopes { padding-left: 1.2rem; }
.logo { border-radius: 8px; }
`

export const PAGES_JS = `'use strict'
;(() => {
  const toBase64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '')
  const fromBase64url = (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4)), (c) => c.charCodeAt(0))
  async function options (form) {
    const secondFactor = form.dataset.passkey === 'second-factor'
    const response = await fetch(secondFactor ? '/auth/mfa/passkey-options' : '/auth/passkey/options', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(secondFactor ? { mfa_token: form.elements.mfa_token.value } : {}),
    })
    if (!response.ok) throw new Error('the passkey could not be started')
    return response.json()
  }
  async function run (form, button) {
    button.disabled = true
    try {
      const json = await options(form)
      const credential = await navigator.credentials.get({
        publicKey: {
          ...json,
          challenge: fromBase64url(json.challenge),
          allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
        },
      })
      const r = credential.response
      form.elements.credential.value = JSON.stringify({
        id: credential.id,
        rawId: toBase64url(credential.rawId),
        type: credential.type,
        clientExtensionResults: credential.getClientExtensionResults(),
        authenticatorAttachment: credential.authenticatorAttachment || undefined,
        response: {
          clientDataJSON: toBase64url(r.clientDataJSON),
          authenticatorData: toBase64url(r.authenticatorData),
          signature: toBase64url(r.signature),
          userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined,
        },
      })
      form.submit()
    } catch (error) {
      button.disabled = false
      let note = form.querySelector('.error')
      if (!note) { note = document.createElement('p'); note.className = 'error'; note.setAttribute('role', 'alert'); form.prepend(note) }
      note.textContent = 'The passkey did not work: ' + (error && error.message ? error.message : 'try again')
    }
  }
  for (const form of document.querySelectorAll('form[data-passkey]')) {
    if (!window.PublicKeyCredential) { form.hidden = true; continue }
    const button = form.querySelector('[data-passkey-start]')
    button.addEventListener('click', () => run(form, button))
  }
})()
`
