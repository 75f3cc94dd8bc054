import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import type { SessionEndReason } from '../../src/client/index.js'
import { client, mayHaveSession, takeEndNotice } from './api.js'
import { PasswordResetPage, RemoveCredentialsPage, VerifyEmailPage } from './account-pages.js'
import { mustEnrolSecondFactor, SecurityPage } from './mfa-pages.js'
import { PasskeysPage } from './passkey-pages.js'
import { ApiKeysPage } from './pages/api-keys.js'
import { AppsPage } from './pages/apps.js'
import { AuditPage } from './pages/audit.js'
import { ClientsPage } from './pages/clients.js'
import { LoginPage } from './pages/login.js'
import { MailboxPage } from './pages/mailbox.js'
import { UserPage } from './pages/user.js'
import { UsersPage } from './pages/users.js'
import { WebhooksPage } from './pages/webhooks.js'
import { StepUpDialog } from './step-up.js'
import { describeError } from './ui.js'
import './style.css'

// must_enrol: an admin without a second factor under REQUIRE_MFA_FOR_ADMINS, kept to the Security page.
type Status = 'starting' | 'signed_out' | 'signed_in' | 'must_enrol'

const END_NOTICES: Record<SessionEndReason, string | null> = {
  expired: 'Your session has expired. Please sign in again.',
  reused: 'Your session was ended for your safety (its refresh token was used twice). Please sign in again.',
  signed_out: null,
  signed_out_elsewhere: 'You signed out in another tab.',
}

function parseRoute (hash: string): { path: string[]; params: Record<string, string> } {
  const [pathPart = '', search = ''] = hash.replace(/^#/, '').split('?')
  const path = pathPart.split('/').filter(Boolean)
  return { path, params: Object.fromEntries(new URLSearchParams(search)) }
}

function useHash (): string {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const update = () => setHash(location.hash)
    addEventListener('hashchange', update)
    return () => removeEventListener('hashchange', update)
  }, [])
  return hash
}

function App () {
  const [status, setStatus] = useState<Status>('starting')
  const [notice, setNotice] = useState<string | null>(null)
  const hash = useHash()
  const statusRef = useRef<Status>(status)
  statusRef.current = status
  /** Signed in as an admin: to the dashboard, or first to the Security page when a second factor is required and missing. */
  const signedIn = async () => setStatus((await mustEnrolSecondFactor().catch(() => false)) ? 'must_enrol' : 'signed_in')

  useEffect(() => {
    const offEnd = client.onSessionEnd((reason) => {
      setNotice(takeEndNotice() ?? END_NOTICES[reason])
      setStatus('signed_out')
    })
    // Another tab signed in (its token arrives by BroadcastChannel).
    const offChange = client.onChange(() => {
      // Only a sign-in elsewhere: a refresh here changes the token too, and must not probe again.
      if (statusRef.current === 'signed_out' && client.isSignedIn && client.claims?.role === 'admin') void signedIn()
    })
    // A reload: sign back in through the refresh cookie, when there may be one (see mayHaveSession in api.ts).
    if (mayHaveSession()) {
      client.restore().then(
        () => {
          if (client.isSignedIn && client.claims?.role === 'admin') void signedIn()
          else setStatus('signed_out')
        },
        (error: unknown) => {
          setNotice(`Could not restore your session: ${describeError(error)}`)
          setStatus('signed_out')
        }
      )
    } else {
      setStatus('signed_out')
    }
    return () => {
      offEnd()
      offChange()
    }
  }, [])

  const { path, params } = parseRoute(hash)
  const section = path[0] ?? 'users'
  // The pages of emailed links, for every user, signed in or not.
  if (section === 'reset-password') return <PasswordResetPage token={params.token} />
  if (section === 'verify-email') return <VerifyEmailPage token={params.token} />
  if (section === 'remove-credentials') return <RemoveCredentialsPage token={params.token} />

  if (status === 'starting') return <p class='state loading'>Loading…</p>
  if (status === 'signed_out') {
    return (
      <LoginPage
        notice={notice}
        onSignedIn={() => {
          setNotice(null)
          void signedIn()
        }}
      />
    )
  }

  let page
  if (status === 'must_enrol') page = <SecurityPage forced />
  else if (section === 'security') page = <SecurityPage />
  else if (section === 'users' && path[1]) page = <UserPage key={path[1]} id={path[1]} />
  else if (section === 'audit') page = <AuditPage key={hash} filters={params} />
  else if (section === 'mailbox') page = <MailboxPage key={hash} status={params.status ?? ''} cursor={params.cursor ?? ''} />
  else if (section === 'keys') page = <ApiKeysPage key={hash} cursor={params.cursor ?? ''} />
  else if (section === 'passkeys') page = <PasskeysPage />
  else if (section === 'clients') page = <ClientsPage />
  else if (section === 'apps') page = <AppsPage />
  else if (section === 'webhooks') page = <WebhooksPage />
  else page = <UsersPage key={hash} q={params.q ?? ''} cursor={params.cursor ?? ''} />

  return (
    <div class='shell'>
      <header>
        <strong>token-auth admin</strong>
        <nav>
          <a href='#/users' aria-current={section === 'users' ? 'page' : undefined}>
            Users
          </a>
          <a href='#/audit' aria-current={section === 'audit' ? 'page' : undefined}>
            Audit events
          </a>
          <a href='#/keys' aria-current={section === 'keys' ? 'page' : undefined}>
            API keys
          </a>
          <a href='#/clients' aria-current={section === 'clients' ? 'page' : undefined}>
            Clients
          </a>
          <a href='#/webhooks' aria-current={section === 'webhooks' ? 'page' : undefined}>
            Webhooks
          </a>
          <a href='#/mailbox' aria-current={section === 'mailbox' ? 'page' : undefined}>
            Mailbox
          </a>
          <a href='#/security' aria-current={section === 'security' ? 'page' : undefined}>
            Security
          </a>
          <a href='#/passkeys' aria-current={section === 'passkeys' ? 'page' : undefined}>
            Passkeys
          </a>
          <a href='#/apps' aria-current={section === 'apps' ? 'page' : undefined}>
            Apps with access
          </a>
        </nav>
        <button
          type='button'
          onClick={async () => {
            await client.logout().catch(() => undefined)
          }}
        >
          Sign out
        </button>
      </header>
      <main>{page}</main>
      <StepUpDialog />
    </div>
  )
}

render(<App />, document.getElementById('app')!)
