import Type, { type Static } from 'typebox'

const Uri = Type.String({ minLength: 1, maxLength: 2000 })
const Uris = Type.Array(Uri, { maxItems: 20 })
export const TokenEndpointAuthMethod = Type.Union([Type.Literal('none'), Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')], {
  description: 'none: a public client; client_secret_basic or client_secret_post: a confidential client with a secret',
})
export const ApplicationType = Type.Union([Type.Literal('web'), Type.Literal('native')], {
  description: 'native: loopback redirect URIs on any port and private-use schemes (RFC 8252)',
})
const GrantTypes = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10, description: 'authorization_code, refresh_token, client_credentials' })
const Scope = Type.String({ maxLength: 1024, description: 'space-separated scopes the client may ask for, beyond the OpenID ones' })

/** POST /admin/clients: RFC 7591 §2 client metadata (DESIGN §3.14). */
export const ClientRegistration = Type.Object(
  {
    client_name: Type.String({ minLength: 1, maxLength: 100 }),
    redirect_uris: Uris,
    post_logout_redirect_uris: Type.Optional(Uris),
    grant_types: Type.Optional(GrantTypes),
    scope: Type.Optional(Scope),
    token_endpoint_auth_method: Type.Optional(TokenEndpointAuthMethod),
    application_type: Type.Optional(ApplicationType),
    first_party: Type.Optional(Type.Boolean({ description: 'first-party clients never ask for consent' })),
    logo_uri: Type.Optional(Uri),
    client_uri: Type.Optional(Uri),
  },
  { additionalProperties: false }
)
export type ClientRegistration = Static<typeof ClientRegistration>

/** PATCH /admin/clients/:id: any of the registration's fields. */
export const ClientPatch = Type.Partial(ClientRegistration, { additionalProperties: false, minProperties: 1 })

export const ClientParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }) })

/** A client as the admin API shows it: the registration, its client_id, and its secret the one time it is made. */
export const RegisteredClient = Type.Object(
  {
    client_id: Type.String(),
    client_secret: Type.Optional(Type.String({ description: 'only when the secret is created or rotated: store it now, it is never shown again' })),
    client_name: Type.String(),
    redirect_uris: Type.Array(Type.String()),
    post_logout_redirect_uris: Type.Array(Type.String()),
    grant_types: Type.Array(Type.String()),
    scope: Type.String(),
    token_endpoint_auth_method: TokenEndpointAuthMethod,
    application_type: ApplicationType,
    first_party: Type.Boolean(),
    logo_uri: Type.Optional(Type.String()),
    client_uri: Type.Optional(Type.String()),
    configured: Type.Boolean({ description: 'a first-party client of configuration (web, admin, mobile): edited, never deleted' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'RegisteredClient', title: 'Client' }
)
export type RegisteredClient = Static<typeof RegisteredClient>

export const ClientList = Type.Object({ items: Type.Array(Type.Ref('RegisteredClient')) })
