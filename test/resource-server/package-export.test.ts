import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

/**
 * The plugin as another service gets it: the package's `./resource-server`
 * export (the compiled dist/, built by `npm ci`/`npm run build`), with its
 * type declarations, depending on nothing of the auth service itself.
 */

const ROOT = new URL('../../', import.meta.url).pathname

t.test('token-auth/resource-server resolves to the compiled plugin and its declarations', async (t) => {
  const specifier = 'token-auth/resource-server'
  const resolved = import.meta.resolve(specifier)
  t.match(resolved, /\/dist\/src\/resource-server\/index\.js$/)
  const mod = (await import(specifier)) as Record<string, unknown>
  t.type(mod.default, 'function', 'the plugin is the default export')
  t.equal(mod.resourceServerPlugin, mod.default)
  t.type(mod.ResourceAuthError, 'function')
  const declarations = join(ROOT, 'dist/src/resource-server/index.d.ts')
  t.ok(existsSync(declarations), 'types are shipped')
  const text = readFileSync(declarations, 'utf8')
  t.match(text, /requireAuth\(options\?: RequireAuthOptions\)/, 'with the fastify decorations')
  t.match(text, /auth: ResourceAuth \| null/)
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  t.same(manifest.exports['./resource-server'], {
    types: './dist/src/resource-server/index.d.ts',
    default: './dist/src/resource-server/index.js',
  })
  // Only what is exported is reachable: no deep imports into the service's internals.
  // Node's resolver sets `code`; through tsx's loader the code is only in the message.
  let refused: unknown
  try {
    import.meta.resolve('token-auth/dist/src/features/sessions/sessions.js')
  } catch (error) {
    refused = error
  }
  const { code, message } = (refused ?? {}) as { code?: string; message?: string }
  t.match(`${code ?? ''} ${message ?? ''}`, /ERR_PACKAGE_PATH_NOT_EXPORTED/, 'a deep import is refused')
})

t.test('the plugin imports only jose, fastify, fastify-plugin, node: built-ins and its own modules', async (t) => {
  const dir = join(ROOT, 'src/resource-server')
  const allowed = /^(\.\/[a-z-]+\.js|jose|fastify|fastify-plugin|node:[a-z]+)$/
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8')
    const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!)
    for (const specifier of specifiers) t.match(specifier, allowed, `${file}: ${specifier}`)
  }
})
