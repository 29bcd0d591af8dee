import { Type } from 'typebox'

/**
 * Text every engine stores exactly as sent: no NUL (PostgreSQL refuses it in text) and no lone
 * UTF-16 surrogate (each engine would store a different replacement). Ajv matches with the `u`
 * flag, so a real emoji (a surrogate pair) is one code point and passes.
 */
export const STORABLE_TEXT = '^[^\\u0000\\uD800-\\uDFFF]*$'

/** One line of text: storable, without control characters (which could also forge log lines). */
const SINGLE_LINE = '[^\\p{Cc}\\uD800-\\uDFFF]'

/** Database ids: positive 32-bit integers on every engine. */
export const Id = Type.Integer({ minimum: 1, maximum: 2_147_483_647, examples: [1] })

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false })

export const Timestamp = Type.String({ format: 'date-time', examples: ['2026-01-31T12:00:00.000Z'] })

/** An email address, trimmed and lower-cased before it is stored or compared. */
export const Email = Type.String({
  format: 'email',
  minLength: 3,
  maxLength: 254,
  examples: ['hamed@example.com'],
})

/**
 * A character of a user name: one line of text without "@", nor the two characters that NFKC
 * turns into "@" (U+FE6B, U+FF20), since a name could otherwise be taken for an email address
 * (services/accounts.ts assertNamePolicy says the same for every way a name is set).
 */
const NAME_CHARACTER = '[^\\p{Cc}\\uD800-\\uDFFF@\\uFE6B\\uFF20]'

export const UserName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: `^(?!\\s)${NAME_CHARACTER}*(?<!\\s)$`,
  description:
    'Unique, case-insensitively. No leading or trailing spaces, no control characters, and no "@" ' +
    '(a name is never taken for an email address).',
  examples: ['hamed'],
})

/** One line of text as a login name: storable, no control characters but tabs (trimmed away). */
export const LoginName = Type.String({
  minLength: 1,
  maxLength: 254,
  pattern: `^(?:\\t|${SINGLE_LINE})*$`,
  description: 'Email or user name (case-insensitive); one with "@" is an email (names never contain one).',
})

export const Password = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'At least 8 characters (PASSWORD_MIN_LENGTH), at most 1024; counted in Unicode code points.',
  examples: ['correct horse battery staple'],
})

export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])

export const PageLimit = Type.Integer({
  minimum: 1,
  maximum: 100,
  default: 20,
  description: 'Items per page (1–100).',
})

export const PageCursor = Type.String({
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
  description: 'The `next_cursor` of the previous page; opaque.',
})

export const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as `cursor` to get the next page; null on the last page.',
})
