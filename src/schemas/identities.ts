import { Type, type Static } from 'typebox'
import { OPAQUE_TOKEN_PATTERN } from '../auth/opaque-tokens.js'
import { Timestamp } from './common.js'

/** A provider id as OIDC_PROVIDERS names it (config/identity-providers.ts). */
export const ProviderId = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$', examples: ['keycloak'] })

export const ProviderParams = Type.Object({ provider: ProviderId }, { additionalProperties: false })

/** RFC 7636: base64url of a SHA-256, 43 characters. */
const CodeChallenge = Type.String({
  pattern: '^[A-Za-z0-9_-]{43}$',
  description:
    'your PKCE challenge: base64url(SHA-256(code_verifier)), where code_verifier is 43 to 128 random characters you keep; you send it with the one-time code',
  examples: ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
})

const ReturnTo = Type.String({
  maxLength: 2048,
  description:
    'where the browser goes back, with `?code=…&provider=…` (or `?error=…&error_description=…`): an address on PUBLIC_URL, WEBAUTHN_ORIGINS or CORS_ORIGINS; the account page by default',
  examples: ['https://app.example.com/signed-in'],
})

export const StartQuery = Type.Object(
  {
    code_challenge: CodeChallenge,
    code_challenge_method: Type.Optional(Type.Literal('S256', { description: 'the only method: S256' })),
    return_to: Type.Optional(ReturnTo),
  },
  { additionalProperties: false },
)

export const LinkRequest = Type.Object(
  {
    code_challenge: CodeChallenge,
    code_challenge_method: Type.Optional(Type.Literal('S256')),
    return_to: Type.Optional(ReturnTo),
    password: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description:
          'your current password; it may be left out within 5 minutes of proving a second factor in this session',
      }),
    ),
  },
  { additionalProperties: false },
)

export const AuthorizationRedirect = Type.Object(
  {
    authorization_url: Type.String({
      description: "the provider's sign-in page: send the browser there (a top-level navigation)",
    }),
  },
  { additionalProperties: false },
)

/** The callback's query: whatever the provider sends (OAuth 2.0, OIDC, RFC 9207); checked by the rules. */
export const CallbackQuery = Type.Object(
  {
    state: Type.Optional(Type.String({ maxLength: 512 })),
    code: Type.Optional(Type.String({ maxLength: 4096 })),
    error: Type.Optional(Type.String({ maxLength: 512 })),
    error_description: Type.Optional(Type.String({ maxLength: 4096 })),
    error_uri: Type.Optional(Type.String({ maxLength: 2048 })),
    iss: Type.Optional(Type.String({ maxLength: 2048 })),
    session_state: Type.Optional(Type.String({ maxLength: 512 })),
    scope: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: true },
)

export const CodeExchange = Type.Object(
  {
    code: Type.String({
      pattern: OPAQUE_TOKEN_PATTERN,
      description: 'the one-time code the callback added to your return address (valid 60 s, once)',
    }),
    code_verifier: Type.String({
      pattern: '^[A-Za-z0-9._~-]{43,128}$',
      description: 'the PKCE verifier whose challenge started this sign-in (RFC 7636)',
    }),
  },
  { additionalProperties: false },
)

export const ProviderSummary = Type.Object(
  {
    id: ProviderId,
    name: Type.String({
      description: 'what a sign-in button says after "Sign in with"',
      examples: ['Company SSO'],
    }),
    login_url: Type.String({
      description: 'GET it (with code_challenge) in the browser to sign in',
      examples: ['/login/keycloak'],
    }),
  },
  { additionalProperties: false },
)

export const ProviderList = Type.Object(
  { providers: Type.Array(ProviderSummary) },
  { additionalProperties: false },
)

export const LinkedIdentity = Type.Object(
  {
    provider: ProviderId,
    provider_name: Type.String({ examples: ['Company SSO'] }),
    email: Type.Union([Type.String(), Type.Null()], {
      description: 'the email the provider gave at the last sign-in',
    }),
    created_at: Timestamp,
    last_used_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
)
export type LinkedIdentityBody = Static<typeof LinkedIdentity>

export const LinkedIdentityList = Type.Object(
  { items: Type.Array(LinkedIdentity) },
  { additionalProperties: false },
)
