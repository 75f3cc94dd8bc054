import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import fp from 'fastify-plugin'
import { pageSecurityHeaders, securityHeadersHook } from './helmet.js'
import { LOWER_CASE, NO_NUL, withInputRules } from '../../shared/input-formats.js'

/**
 * The Content-Security-Policy of Swagger UI's pages, in place of the API's
 * `default-src 'none'`: @fastify/swagger-ui serves its scripts and styles as
 * files (no inline script), and "Try it out" calls this origin. The one
 * inline style its bundle injects is allowed by its hash, not by
 * 'unsafe-inline'; test/e2e/docs.test.ts fails on any violation, so an
 * upgrade that changes it shows here.
 */
const SWAGGER_UI_INLINE_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
export const DOCS_CSP = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", SWAGGER_UI_INLINE_STYLE],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'object-src': ["'none'"],
}

const DOCS_HEADERS = pageSecurityHeaders(DOCS_CSP)

/**
 * OpenAPI at /docs/json and Swagger UI at /docs, generated from the route
 * schemas; `schemas` are those routes name by $id (the app gathers them
 * from every capability).
 */
export default fp(
  async (fastify: FastifyInstance, options: { schemas: TSchema[] }) => {
    for (const schema of options.schemas) fastify.addSchema(schema)
    await fastify.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Token auth API',
          version: '0.1.0',
          description:
            "An authentication service for a platform's SPAs, mobile apps and services. It signs users up and in " +
            '(password, authenticator app, passkeys) and issues short-lived JWT access tokens, which any service verifies ' +
            'offline against `/.well-known/jwks.json`, with refresh tokens that rotate on every use and end the session ' +
            'when a used one is presented again. It also does API keys, email verification, password reset, and an admin API.\n\n' +
            '**Where to start**\n\n' +
            '1. `POST /auth/signup` creates an account and signs it in; a first-party app signs in with `POST /oauth/authorize-challenge` ' +
            '(username, password and a PKCE `code_challenge`) and exchanges the code at `POST /auth/token` (`grant_type=authorization_code`, `code_verifier`); ' +
            'other apps use the authorization code flow of `/oauth/authorize`. Each ends with an `access_token` and a `refresh_token`.\n' +
            '2. Send the access token as `Authorization: Bearer …` (the Authorize button here), e.g. to `GET /users/me`.\n' +
            '3. Before it expires, `POST /auth/token` with `grant_type=refresh_token`, and keep the new pair: a refresh token works once.\n\n' +
            'Services that receive the tokens verify them with the JWKS; the discovery documents are `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.\n\n' +
            `**Input rules**: strings refuse U+0000 (\`${NO_NUL}\`; not passwords or the introspected token); ` +
            `ids are lower-cased before use (\`${LOWER_CASE}\`: any case is the same id); ` +
            '`uuid` is a hyphenated RFC 9562 UUID, no `urn:uuid:`; `date-time` is RFC 3339, years 0001-9999, no leap second.',
        },
        servers: [{ url: fastify.config.issuer }],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          },
        },
      },
      // The document shows the request schemas as the validator compiles them (app.ts), NUL rule included.
      transform: ({ schema, url }) => {
        const { body, querystring, params, headers } = schema ?? {}
        return {
          schema: {
            ...schema,
            ...(body ? { body: withInputRules(body) } : {}),
            ...(querystring ? { querystring: withInputRules(querystring) } : {}),
            ...(params ? { params: withInputRules(params) } : {}),
            ...(headers ? { headers: withInputRules(headers) } : {}),
          },
          url,
        }
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    })
    // Encapsulated: the page's headers replace the API's on /docs only (a parent's hook runs first).
    await fastify.register(async (docs) => {
      docs.addHook('onRequest', securityHeadersHook(DOCS_HEADERS))
      await docs.register(swaggerUi, { routePrefix: '/docs' })
    })
  },
  { name: 'swagger', dependencies: ['config'] }
)
