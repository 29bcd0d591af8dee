import { isUniqueViolation } from '../db/errors.js'
import type { UserRow } from '../db/database.js'
import { conflict, invalidInput } from './errors.js'
import type { Repositories } from '../repositories/index.js'
import type { UserRecord } from '../repositories/users.js'
import { isCommonPassword } from '../auth/common-passwords.js'
import { nameKey, normalizeEmail } from '../auth/identifiers.js'
import { hashPassword, normalizePassword, passwordLength, PASSWORD_MAX_LENGTH } from '../auth/passwords.js'

/** The size of the name and name_key columns, in characters. */
export const NAME_MAX_LENGTH = 64

const UNSTORABLE = /[\p{Cc}\p{Cs}]/u

/**
 * What the schema cannot check of a name (or what is set without it: FIRST_ADMIN_NAME, the CLI),
 * as a 422 naming the field: control characters and lone surrogates (PostgreSQL refuses NUL in
 * text; a lone surrogate would be stored as U+FFFD), "@" in any form, and a length that still
 * fits the columns once normalised ("İ" lower-cases to two code points, NFKC
 * expands some characters), which would otherwise fail in the database.
 */
export function assertNamePolicy(name: string, field = 'name'): void {
  if (UNSTORABLE.test(name))
    throw invalidInput('The name contains characters that are not allowed.', [
      { in: 'body', field, message: 'must not contain control characters' },
    ])
  // On the normalised form: "＠" (U+FF20) and "﹫" (U+FE6B) become "@" there (see loginLookup).
  if (nameKey(name).includes('@'))
    throw invalidInput('A name cannot contain "@": it could be taken for an email address.', [
      { in: 'body', field, message: 'must not contain "@" (a name is never taken for an email address)' },
    ])
  // Stryker disable next-line ArrayDeclaration: no name is known whose NFC form outgrows its key; the column stores the NFC form, so it is checked anyway.
  const longest = Math.max([...name.normalize('NFC')].length, [...nameKey(name)].length)
  if (longest > NAME_MAX_LENGTH)
    throw invalidInput('The name is too long.', [
      { in: 'body', field, message: `must be at most ${NAME_MAX_LENGTH} characters once normalised` },
    ])
}

/** Rejects a password outside the length rules, as a 422 naming the field. */
export function assertPasswordPolicy(password: string, minLength: number, field = 'password'): void {
  const length = passwordLength(password)
  if (length < minLength)
    throw invalidInput('The password is too short.', [
      { in: 'body', field, message: `must be at least ${minLength} characters` },
    ])
  if (length > PASSWORD_MAX_LENGTH)
    throw invalidInput('The password is too long.', [
      { in: 'body', field, message: `must be at most ${PASSWORD_MAX_LENGTH} characters` },
    ])
  if (isCommonPassword(normalizePassword(password)))
    throw invalidInput('The password is one of the most common passwords; choose another.', [
      { in: 'body', field, message: 'is one of the most common passwords' },
    ])
}

/** The detail of the 409 of a taken name (a new account from an identity provider tries another). */
export const NAME_TAKEN = 'This name is already taken.'

/** Turns a unique violation on users into a 409 that says which field is taken. */
export async function explainUserConflict(
  repos: Repositories,
  error: unknown,
  fields: { email?: string; name?: string },
  exceptId?: number,
): Promise<never> {
  if (!isUniqueViolation(error)) throw error
  const field = await repos.users.findConflict(fields.email, fields.name && nameKey(fields.name), exceptId)
  throw conflict(field === 'name' ? NAME_TAKEN : 'A user with this email already exists.')
}

export interface NewAccount {
  name: string
  email: string
  password: string
  role?: UserRow['role']
  emailVerified?: boolean
}

/** Creates an account; the database's unique indexes decide duplicates (409), not a prior read. */
export async function createAccount(
  repos: Repositories,
  account: NewAccount,
  passwordMinLength: number,
): Promise<UserRecord> {
  assertNamePolicy(account.name)
  assertPasswordPolicy(account.password, passwordMinLength)
  const passwordHash = await hashPassword(account.password)
  return insertAccount(repos, { ...account, passwordHash })
}

/**
 * Stores a new account whose name passed assertNamePolicy and whose password is hashed (or
 * NO_PASSWORD); a unique violation is a 409 that says which field is taken.
 */
export async function insertAccount(
  repos: Repositories,
  account: Omit<NewAccount, 'password'> & { passwordHash: string },
): Promise<UserRecord> {
  const email = normalizeEmail(account.email)
  const name = account.name.normalize('NFC')
  const now = new Date()
  let id: number
  try {
    id = await repos.users.insert({
      name,
      name_key: nameKey(name),
      email,
      password_hash: account.passwordHash,
      role: account.role ?? 'user',
      is_active: true,
      email_verified: account.emailVerified ?? false,
      created_at: now,
      updated_at: now,
    })
  } catch (error) {
    return explainUserConflict(repos, error, { email, name })
  }
  // Read in the same transaction or connection that inserted it: it is there.
  return (await repos.users.findById(id))!
}
