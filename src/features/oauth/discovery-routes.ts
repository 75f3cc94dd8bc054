import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { enabledGrantTypes } from '../tokens/grants/index.js'
import { OPENID_SCOPES } from '../clients/clients.js'
import { SIGNING_ALG } from '../signing-keys/signing-keys.js'
import { ACR_VALUES_SUPPORTED } from './authorization-request.js'

const Metadata = Type.Object(
  {
    issuer: Type.String(),
    authorization_endpoint: Type.String(),
    authorization_challenge_endpoint: Type.String({ description: 'draft-ietf-oauth-first-party-apps: first-party sign-in without a browser' }),
    token_endpoint: Type.String(),
    userinfo_endpoint: Type.String(),
    end_session_endpoint: Type.String(),
    revocation_endpoint: Type.String(),
    introspection_endpoint: Type.String(),
    jwks_uri: Type.String(),
    grant_types_supported: Type.Array(Type.String()),
    response_types_supported: Type.Array(Type.String()),
    response_modes_supported: Type.Array(Type.String()),
    scopes_supported: Type.Array(Type.String()),
    subject_types_supported: Type.Array(Type.String()),
    id_token_signing_alg_values_supported: Type.Array(Type.String()),
    token_endpoint_auth_methods_supported: Type.Array(Type.String()),
    revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
    code_challenge_methods_supported: Type.Array(Type.String()),
    claims_supported: Type.Array(Type.String()),
    acr_values_supported: Type.Array(Type.String()),
    prompt_values_supported: Type.Array(Type.String()),
    authorization_response_iss_parameter_supported: Type.Boolean(),
    claims_parameter_supported: Type.Boolean(),
    request_parameter_supported: Type.Boolean(),
    request_uri_parameter_supported: Type.Boolean(),
    require_request_uri_registration: Type.Boolean(),
  },
  { additionalProperties: false }
)

/**
 * Authorization server metadata (RFC 8414) and OpenID Provider metadata
 * (OIDC Discovery 1.0 §3): one document under both names, so both list the
 * same endpoints, grants, scopes, claims and algorithms.
 */
const wellKnown: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config } = fastify
  const { issuer } = config
  const metadata = {
    issuer,
    authorization_endpoint: `${issuer}/oauth/authorize`,
    authorization_challenge_endpoint: `${issuer}/oauth/authorize-challenge`,
    token_endpoint: `${issuer}/auth/token`,
    userinfo_endpoint: `${issuer}/oauth/userinfo`,
    end_session_endpoint: `${issuer}/oauth/logout`,
    revocation_endpoint: `${issuer}/auth/revoke`,
    introspection_endpoint: `${issuer}/auth/introspect`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: enabledGrantTypes(config),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    scopes_supported: [...new Set([...OPENID_SCOPES, ...config.scopes])],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [SIGNING_ALG],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'sid', 'at_hash', 'email', 'email_verified'],
    acr_values_supported: ACR_VALUES_SUPPORTED,
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    authorization_response_iss_parameter_supported: true,
    claims_parameter_supported: false,
    request_parameter_supported: false,
    // OIDC Discovery's default for this one is true: say no.
    request_uri_parameter_supported: false,
    require_request_uri_registration: false,
  }

  const route = (path: string, summary: string) => fastify.get(
    path,
    { config: { publicCache: true }, schema: { tags: ['discovery'], summary, response: { 200: Metadata } } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return metadata
    }
  )
  route('/oauth-authorization-server', 'Authorization server metadata (RFC 8414)')
  route('/openid-configuration', 'OpenID Provider metadata (OIDC Discovery 1.0)')
}

export default wellKnown
