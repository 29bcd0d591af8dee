import { Type, type Static } from 'typebox'
import {
  Email,
  Id,
  NextCursor,
  PageCursor,
  PageLimit,
  Password,
  Role,
  STORABLE_TEXT,
  Timestamp,
  UserName,
} from './common.js'

/** What the API shows of a user. The response schema is the barrier: nothing else is serialized. */
export const UserPublic = Type.Object(
  {
    id: Id,
    name: Type.String({ examples: ['hamed'] }),
    email: Type.String({ examples: ['hamed@example.com'] }),
    role: Role,
    is_active: Type.Boolean(),
    email_verified: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
)
export type UserPublic = Static<typeof UserPublic>

export const UserCreate = Type.Object(
  {
    name: UserName,
    email: Email,
    password: Password,
    role: Type.Optional({ ...Role, description: 'Only an admin may set this; defaults to "user".' }),
  },
  {
    additionalProperties: false,
    examples: [{ name: 'hamed', email: 'hamed@example.com', password: 'correct horse battery staple' }],
  },
)
export type UserCreate = Static<typeof UserCreate>

export const UserUpdate = Type.Object(
  {
    name: Type.Optional(UserName),
    email: Type.Optional(Email),
    role: Type.Optional({ ...Role, description: 'Admins only.' }),
    is_active: Type.Optional(Type.Boolean({ description: 'Admins only.' })),
    current_password: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'Your current password: required when you (not an admin) change your own email.',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ name: 'hamed2' }] },
)
export type UserUpdate = Static<typeof UserUpdate>

export const UserListQuery = Type.Object(
  {
    limit: Type.Optional(PageLimit),
    cursor: Type.Optional(PageCursor),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: STORABLE_TEXT,
        description: 'Text to find in the name or the email (case-insensitive).',
      }),
    ),
    role: Type.Optional(Role),
    is_active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type UserListQuery = Static<typeof UserListQuery>

export const UserPage = Type.Object(
  { items: Type.Array(UserPublic), next_cursor: NextCursor },
  { additionalProperties: false },
)
