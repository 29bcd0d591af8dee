import { Type, type Static } from 'typebox'
import { OPAQUE_TOKEN_PATTERN } from '../auth/opaque-tokens.js'
import { LoginName, Password, Timestamp } from './common.js'

/**
 * The OAuth2 password grant as Swagger UI (and every OAuth2 client) sends it: form-encoded, with
 * the optional fields of RFC 6749 §4.3. The same shape is accepted as JSON.
 */
export const LoginForm = Type.Object(
  {
    username: LoginName,
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    grant_type: Type.Optional(Type.Literal('password')),
    scope: Type.Optional(Type.String({ maxLength: 1024 })),
    client_id: Type.Optional(Type.String({ maxLength: 256 })),
    client_secret: Type.Optional(Type.String({ maxLength: 256 })),
  },
  {
    additionalProperties: false,
    examples: [{ username: 'hamed@example.com', password: 'correct horse battery staple' }],
  },
)
export type LoginForm = Static<typeof LoginForm>

export const TokenResponse = Type.Object(
  {
    access_token: Type.String({ examples: ['eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ…'] }),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires.', examples: [900] }),
    refresh_token: Type.String({
      description: 'Opaque; exchange it at POST /token/refresh for a new pair. Each is usable once.',
      examples: ['Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9'],
    }),
  },
  { additionalProperties: false },
)
export type TokenResponse = Static<typeof TokenResponse>

export const OpaqueToken = Type.String({
  pattern: OPAQUE_TOKEN_PATTERN,
  description: 'An opaque token, as issued.',
})

export const RefreshRequest = Type.Object(
  { refresh_token: OpaqueToken },
  {
    additionalProperties: false,
    examples: [{ refresh_token: 'Jx0s1Qm4oJ2cY8bKqW3nE5rT7uV9yZ1aB3dF5hJ7kL9' }],
  },
)

export const PasswordChange = Type.Object(
  { current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Password },
  { additionalProperties: false },
)

export const SessionPublic = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    created_at: Timestamp,
    last_used_at: Timestamp,
    expires_at: Timestamp,
    user_agent: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    current: Type.Boolean({ description: 'The session of the token making this request.' }),
  },
  { additionalProperties: false },
)

export const SessionList = Type.Object({ items: Type.Array(SessionPublic) }, { additionalProperties: false })

export const SessionIdParams = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
)
