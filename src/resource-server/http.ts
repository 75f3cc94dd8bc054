import { IssuerUnavailableError } from './errors.js'

/** A JSON request to the issuer with an explicit timeout; network errors, timeouts and non-JSON become IssuerUnavailableError. */
export async function fetchJson (
  fetchImpl: typeof fetch,
  url: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; timeoutMs: number }
): Promise<{ status: number; body: unknown }> {
  let response: Response
  try {
    response = await fetchImpl(url, {
      method: init.method ?? 'GET',
      headers: { accept: 'application/json', ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
      // The issuer's endpoints answer directly; a redirect is not followed to somewhere else.
      redirect: 'error',
      signal: AbortSignal.timeout(init.timeoutMs),
    })
  } catch (error) {
    const timedOut = (error as { name?: string }).name === 'TimeoutError'
    throw new IssuerUnavailableError(`${url}: ${timedOut ? `no answer within ${init.timeoutMs} ms` : 'unreachable'}`, { cause: error })
  }
  let body: unknown
  try {
    body = await response.json()
  } catch (error) {
    throw new IssuerUnavailableError(`${url}: answered ${response.status} without a JSON body`, { cause: error })
  }
  return { status: response.status, body }
}
