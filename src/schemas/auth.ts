import { Type, type Static } from 'typebox'
import { LoginName } from './common.js'

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
  },
  { additionalProperties: false },
)
export type TokenResponse = Static<typeof TokenResponse>
