import { useEffect, useRef, useState } from 'preact/hooks'
import { InvalidCredentialsError, type StepUpRequiredError } from '../../src/client/index.js'
import { describeError } from './ui.js'

/**
 * The step-up prompt (DESIGN §3.12): when a write needs a recent
 * authentication, or a second factor proven in this session (adding a
 * passkey, an authenticator or an API key to an account that has one), the
 * client asks here (AuthClientOptions.onStepUpRequired); the admin confirms
 * with one of their factors (the password only without any), and the write
 * is retried. One prompt at a time: concurrent refusals wait for the same
 * answer.
 */

type Method = 'otp' | 'recovery_code' | 'password' | 'passkey'
type Proof = { password: string } | { otp: string } | { recoveryCode: string } | { passkey: true }

/** What the signed-in admin has to step up with. */
export interface StepUpFactors {
  otp: boolean
  recoveryCodes: boolean
  passkeys: boolean
}

/** The service's multi-factor level (RFC 9470 acr_values). */
const MFA_ACR = 'urn:token-auth:acr:mfa'

const METHOD_NAMES: Record<Method, string> = {
  passkey: 'a passkey',
  otp: 'an authenticator code',
  recovery_code: 'a recovery code',
  password: 'my password',
}

interface Prompt {
  required: StepUpRequiredError
  resolve: (steppedUp: boolean) => void
}

interface Connection {
  stepUp: (proof: Proof) => Promise<unknown>
  /** The admin's factors, read without a step-up of their own. */
  factors: () => Promise<StepUpFactors>
}

let current: Promise<boolean> | null = null
let show: ((prompt: Prompt | null) => void) | null = null
let connection: Connection | null = null

/** Wires the prompt to the client's stepUp and to the admin's factors; called once by api.ts. */
export function connectStepUp (connect: Connection): void {
  connection = connect
}

/** The client's onStepUpRequired: shows the dialog, resolves whether the admin stepped up. */
export function askForStepUp (required: StepUpRequiredError): Promise<boolean> {
  if (!show) return Promise.resolve(false)
  current ??= new Promise<boolean>((resolve) => show!({ required, resolve })).finally(() => {
    current = null
  })
  return current
}

/**
 * The ways to step up, best first: the admin's factors, or the password
 * for an account without one (the service refuses the password beside a
 * factor). Every way, when the factors could not be read, the password
 * left out where the service asked for a second factor.
 */
function methodsFor (factors: StepUpFactors | null, mfaRequired: boolean): Method[] {
  if (!factors) return mfaRequired ? ['passkey', 'otp', 'recovery_code'] : ['passkey', 'otp', 'recovery_code', 'password']
  const methods: Method[] = []
  if (factors.passkeys) methods.push('passkey')
  if (factors.otp) methods.push('otp')
  if (factors.otp && factors.recoveryCodes) methods.push('recovery_code')
  if (methods.length === 0) methods.push('password')
  return methods
}

/** The service's message as a sentence: capitalized, with its full stop. */
function sentence (message: string): string {
  const text = message.trim()
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`
}

export function StepUpDialog () {
  const [prompt, setPrompt] = useState<Prompt | null>(null)
  const [methods, setMethods] = useState<Method[] | null>(null)
  const [method, setMethod] = useState<Method>('otp')
  const [value, setValue] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const firstControl = useRef<HTMLSelectElement | null>(null)
  useEffect(() => {
    show = (next) => {
      setPrompt(next)
      setValue('')
      setError(null)
      setMethods(null)
      if (!next || !connection) return
      const mfaRequired = next.required.acrValues.includes(MFA_ACR)
      connection.factors().then(
        (factors) => methodsFor(factors, mfaRequired),
        () => methodsFor(null, mfaRequired)
      ).then((found) => {
        setMethods(found)
        setMethod(found[0]!)
      })
    }
    return () => {
      show = null
    }
  }, [])
  useEffect(() => {
    if (methods) firstControl.current?.focus()
  }, [methods])
  if (!prompt) return null

  const mfaRequired = prompt.required.acrValues.includes(MFA_ACR)
  const close = (steppedUp: boolean) => {
    prompt.resolve(steppedUp)
    setPrompt(null)
  }
  async function submit (event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const proof: Proof = method === 'passkey'
        ? { passkey: true }
        : method === 'password' ? { password: value } : method === 'otp' ? { otp: value.replace(/\s/g, '') } : { recoveryCode: value.trim() }
      await connection!.stepUp(proof)
      close(true)
    } catch (e) {
      const name = (e as { name?: string } | null)?.name
      setError(
        e instanceof InvalidCredentialsError
          ? 'That was not accepted. Try again.'
          : name === 'NotAllowedError' ? 'No passkey was used (cancelled, timed out, or none for this site). Try again.' : describeError(e)
      )
    } finally {
      setBusy(false)
    }
  }
  const labels: Record<Exclude<Method, 'passkey'>, string> = { otp: 'Code from your authenticator app', recovery_code: 'Recovery code', password: 'Password' }
  return (
    <div class='dialog-backdrop'>
      <div
        role='dialog'
        aria-modal='true'
        aria-labelledby='step-up-title'
        aria-describedby='step-up-why'
        onKeyDown={(e) => {
          if (e.key === 'Escape' && !busy) close(false)
        }}
      >
        <form class='dialog' onSubmit={submit} data-testid='step-up'>
          <h2 id='step-up-title'>Confirm it is you</h2>
          <p id='step-up-why'>
            {sentence(prompt.required.message)}{' '}
            {mfaRequired ? 'This change needs a recent confirmation with your second factor.' : 'This change needs a recent sign-in.'}
          </p>
          {!methods
            ? <p class='state loading' role='status'>Loading your factors…</p>
            : (
              <>
                <label>
                  With
                  <select ref={firstControl} value={method} onChange={(e) => { setMethod(e.currentTarget.value as Method); setValue(''); setError(null) }} aria-label='Confirm with'>
                    {methods.map((m) => <option key={m} value={m}>{METHOD_NAMES[m]}</option>)}
                  </select>
                </label>
                {method === 'passkey'
                  ? <p>Your browser will ask you to choose one of your passkeys and unlock it.</p>
                  : (
                    <label>
                      {labels[method]}
                      {method === 'password'
                        ? <input name='step-up-secret' type='password' autocomplete='current-password' required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
                        : <input name='step-up-secret' type='text' autocomplete='one-time-code' inputMode={method === 'otp' ? 'numeric' : 'text'} required value={value} onInput={(e) => setValue(e.currentTarget.value)} />}
                    </label>
                    )}
              </>
              )}
          {error && <p class='state error' role='alert'>{error}</p>}
          <div class='actions'>
            <button type='submit' disabled={busy || !methods}>{busy ? (method === 'passkey' ? 'Waiting for your passkey…' : 'Checking…') : 'Confirm'}</button>
            <button type='button' onClick={() => close(false)} disabled={busy}>Cancel</button>
          </div>
        </form>
      </div>
    </div>
  )
}
