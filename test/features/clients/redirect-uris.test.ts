import t from 'tap'
import { matchesRedirectUri, redirectUriProblem } from '../../../src/features/clients/redirect-uris.js'

/** Redirect URIs (RFC 9700 §4.1.3, RFC 8252 §7): what may be registered, and exact matching with the native loopback exception. */

t.test('what a client may register', async (t) => {
  for (const uri of ['https://app.example/cb', 'https://app.example/cb?x=1', 'http://127.0.0.1/cb', 'http://[::1]:8080/cb', 'http://localhost:3000/cb']) {
    t.equal(redirectUriProblem(uri, 'web'), null, uri)
  }
  t.equal(redirectUriProblem('com.example.app:/callback', 'native'), null, 'a reverse-domain private-use scheme, native')
  const refused: [string, 'web' | 'native'][] = [
    ['http://app.example/cb', 'web'],
    ['https://app.example/cb#frag', 'web'],
    ['https://user:pw@app.example/cb', 'web'],
    ['https://*.example/cb', 'web'],
    ['/relative/cb', 'web'],
    ['com.example.app:/callback', 'web'],
    ['myapp:/callback', 'native'],
    ['javascript:alert(1)', 'native'],
  ]
  for (const [uri, type] of refused) t.type(redirectUriProblem(uri, type), 'string', `${uri} (${type}) refused`)
})

t.test('exact match, and a native client\'s loopback URI on any real port', async (t) => {
  const registered = ['https://app.example/cb', 'http://127.0.0.1/callback', 'http://[::1]/callback']
  t.ok(matchesRedirectUri(registered, 'https://app.example/cb', 'web'))
  for (const uri of ['https://app.example/cb/', 'https://app.example/CB', 'https://app.example/cb?x', 'https://app.example:443/cb', 'https://APP.example/cb']) {
    t.notOk(matchesRedirectUri(registered, uri, 'native'), `${uri}: not byte for byte`)
  }
  t.ok(matchesRedirectUri(registered, 'http://127.0.0.1:53412/callback', 'native'), 'any port, native')
  t.ok(matchesRedirectUri(registered, 'http://[::1]:1/callback', 'native'))
  t.notOk(matchesRedirectUri(registered, 'http://127.0.0.1:53412/callback', 'web'), 'no port freedom for a web client')
  for (const uri of ['http://127.0.0.1:0/callback', 'http://127.0.0.1:65536/callback', 'http://127.0.0.1:53412/other', 'http://localhost:53412/callback', 'http://127.0.0.2:53412/callback']) {
    t.notOk(matchesRedirectUri(registered, uri, 'native'), `${uri} refused`)
  }
})
