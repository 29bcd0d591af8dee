import { Type, type Static } from 'typebox'

const base64url = (description: string) => Type.String({ pattern: '^[A-Za-z0-9_-]+$', description })

/**
 * A public signing key (RFC 7517). The response schema lists the public members only and drops
 * any other: a private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`) can never be serialized.
 */
export const PublicJwk = Type.Object(
  {
    kty: Type.Union([Type.Literal('RSA'), Type.Literal('EC'), Type.Literal('OKP')]),
    kid: base64url('RFC 7638 thumbprint of the key (SHA-256): the `kid` of the tokens it signs'),
    alg: Type.String({ examples: ['EdDSA'] }),
    use: Type.Literal('sig'),
    n: Type.Optional(base64url('RSA modulus')),
    e: Type.Optional(base64url('RSA exponent')),
    crv: Type.Optional(Type.String({ examples: ['Ed25519', 'P-256'] })),
    x: Type.Optional(base64url('curve point x')),
    y: Type.Optional(base64url('curve point y (EC)')),
  },
  { additionalProperties: false },
)

export const Jwks = Type.Object(
  {
    keys: Type.Array(PublicJwk, {
      description:
        'the keys that verify access tokens now: the current one, one published before it signs, and those retired from signing whose tokens have not expired. Empty with an HS algorithm (SECRET_KEY is never published)',
    }),
  },
  { additionalProperties: false },
)
export type JwksBody = Static<typeof Jwks>

export const Discovery = Type.Object(
  {
    issuer: Type.String({ description: 'the `iss` of every access token (JWT_ISSUER)' }),
    jwks_uri: Type.String({ description: 'the URL of GET /.well-known/jwks.json' }),
    token_endpoint: Type.String({ description: 'the URL of POST /login (the password grant)' }),
    grant_types_supported: Type.Array(Type.String(), { examples: [['password']] }),
    token_endpoint_auth_methods_supported: Type.Array(Type.String(), { examples: [['none']] }),
    subject_types_supported: Type.Array(Type.String(), { examples: [['public']] }),
    access_token_signing_alg_values_supported: Type.Array(Type.String(), {
      description: 'the algorithms of the keys in jwks_uri (or the HS algorithm)',
    }),
  },
  { additionalProperties: false },
)
export type DiscoveryBody = Static<typeof Discovery>
