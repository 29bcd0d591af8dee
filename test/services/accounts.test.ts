/**
 * The account rules the request schemas do not already enforce, on their own: the name and
 * password policies (reached through FIRST_ADMIN_NAME, FIRST_ADMIN_PASSWORD and the CLI, which
 * no schema checks, and for what only normalisation reveals), and the first admin's creation over
 * a stand-in users repository: once, without hashing a password when it exists, and with a
 * configuration error that names the variable to fix.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { passwordHashing } from '../../src/auth/passwords.js'
import { ConfigError } from '../../src/config.js'
import type { Repositories } from '../../src/repositories/index.js'
import { assertNamePolicy, assertPasswordPolicy, NAME_MAX_LENGTH } from '../../src/services/accounts.js'
import type { ServiceLogger } from '../../src/services/context.js'
import { DomainError } from '../../src/services/errors.js'
import { ensureFirstAdmin } from '../../src/services/first-admin.js'

function refusedAs(
  action: () => void,
  detail: string,
  issue: { in: string; field: string; message: string },
) {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof DomainError, String(error))
    assert.equal(error.kind, 'invalid_input')
    assert.equal(error.detail, detail)
    assert.deepEqual(error.facts.issues, [issue])
    return true
  })
}

test('a name with a control character or a lone surrogate is refused, naming the field given', () => {
  for (const name of ['tab\there', 'bell\u0007', 'nul\u0000', 'half \ud800 a pair']) {
    refusedAs(
      () => assertNamePolicy(name, 'FIRST_ADMIN_NAME'),
      'The name contains characters that are not allowed.',
      {
        in: 'body',
        field: 'FIRST_ADMIN_NAME',
        message: 'must not contain control characters',
      },
    )
  }
})

test('a name with "@" in any form is refused: it could be taken for an email address', () => {
  for (const name of ['a@b', 'full\uff20width', 'small\ufe6bcommercial']) {
    refusedAs(
      () => assertNamePolicy(name),
      'A name cannot contain "@": it could be taken for an email address.',
      {
        in: 'body',
        field: 'name',
        message: 'must not contain "@" (a name is never taken for an email address)',
      },
    )
  }
})

test('a name that outgrows the column once normalised is refused; one that fits exactly is not', () => {
  const tooLong = {
    in: 'body',
    field: 'name',
    message: `must be at most ${NAME_MAX_LENGTH} characters once normalised`,
  }
  // "İ" lower-cases to two code points; "ﬀ" (one code point) becomes "ff" in NFKC.
  for (const name of ['İ'.repeat(33), 'ﬀ'.repeat(33), 'x'.repeat(NAME_MAX_LENGTH + 1)])
    refusedAs(() => assertNamePolicy(name), 'The name is too long.', tooLong)
  assertNamePolicy('İ'.repeat(32))
  assertNamePolicy('x'.repeat(NAME_MAX_LENGTH))
})

test('a password is refused when too short, too long or too common, with the field and the limits it was given', () => {
  refusedAs(() => assertPasswordPolicy('seven c', 8, 'new_password'), 'The password is too short.', {
    in: 'body',
    field: 'new_password',
    message: 'must be at least 8 characters',
  })
  refusedAs(() => assertPasswordPolicy('y'.repeat(1025), 8), 'The password is too long.', {
    in: 'body',
    field: 'password',
    message: 'must be at most 1024 characters',
  })
  refusedAs(
    () => assertPasswordPolicy('password1', 8),
    'The password is one of the most common passwords; choose another.',
    { in: 'body', field: 'password', message: 'is one of the most common passwords' },
  )
  assertPasswordPolicy('eight ch', 8)
  assertPasswordPolicy('🔑'.repeat(1024), 8)
})

// ------------------------------------------------------------------ the first admin

const silent: ServiceLogger = { debug() {}, info() {}, warn() {}, error() {} }
const SETTINGS = {
  email: 'Admin@Example.com',
  password: 'a long first admin passphrase',
  name: 'admin',
  passwordMinLength: 8,
}

/** A users repository where `findConflict` answers in turn from `conflicts`, and `insert` as told. */
function usersRepository(conflicts: (string | undefined)[], insert: () => Promise<number>) {
  const calls: string[] = []
  const users = {
    findConflict: async (email: string | undefined) => {
      calls.push(`findConflict ${email}`)
      return conflicts.shift()
    },
    insert: async (row: { role: string; email_verified: boolean; email: string }) => {
      calls.push(`insert ${row.role} ${row.email_verified} ${row.email}`)
      return insert()
    },
    findById: async (id: number) => ({ id }),
  }
  return { repos: { users } as unknown as Repositories, calls }
}

const uniqueViolation = () => Object.assign(new Error('duplicate'), { code: 'SQLITE_CONSTRAINT_UNIQUE' })

test('the first admin is created once, admin and verified, under the normalised email', async () => {
  const { repos, calls } = usersRepository([undefined], async () => 1)
  await ensureFirstAdmin(repos, SETTINGS, silent)
  assert.deepEqual(calls, ['findConflict admin@example.com', 'insert admin true admin@example.com'])
})

test('when the first admin exists, nothing is created and no password is hashed', async () => {
  const { repos, calls } = usersRepository(['email'], async () => 1)
  const hashed = passwordHashing().hash
  await ensureFirstAdmin(repos, SETTINGS, silent)
  assert.deepEqual(calls, ['findConflict admin@example.com'])
  assert.equal(passwordHashing().hash, hashed)
})

test('without both FIRST_ADMIN_EMAIL and FIRST_ADMIN_PASSWORD nothing happens', async () => {
  for (const settings of [
    { ...SETTINGS, email: undefined },
    { ...SETTINGS, password: undefined },
  ]) {
    const { repos, calls } = usersRepository([], async () => 1)
    await ensureFirstAdmin(repos, settings, silent)
    assert.deepEqual(calls, [])
  }
})

test('another instance creating the first admin at the same moment is the same outcome, not an error', async () => {
  const { repos, calls } = usersRepository([undefined, undefined, 'email'], async () =>
    Promise.reject(uniqueViolation()),
  )
  await ensureFirstAdmin(repos, SETTINGS, silent)
  assert.equal(calls.at(-1), 'findConflict admin@example.com')
})

test('a name taken by another account is a configuration error naming FIRST_ADMIN_NAME', async () => {
  // The insert fails as a duplicate, and the email is still free afterwards: the name is taken.
  const { repos } = usersRepository([undefined, 'name', undefined], async () =>
    Promise.reject(uniqueViolation()),
  )
  await assert.rejects(
    ensureFirstAdmin(repos, SETTINGS, silent),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.message === 'FIRST_ADMIN_NAME: "admin" is taken by another account; choose another name',
  )
})

test('a password or a name that breaks an account rule is a configuration error naming its variable', async () => {
  const cases: [Partial<typeof SETTINGS>, string][] = [
    [{ password: 'short' }, 'FIRST_ADMIN_PASSWORD: must be at least 8 characters'],
    [{ password: 'password1' }, 'FIRST_ADMIN_PASSWORD: is one of the most common passwords'],
    [{ name: 'bell\u0007' }, 'FIRST_ADMIN_NAME: must not contain control characters'],
  ]
  for (const [change, message] of cases) {
    const { repos } = usersRepository([undefined], async () => 1)
    await assert.rejects(
      ensureFirstAdmin(repos, { ...SETTINGS, ...change }, silent),
      (error: unknown) => error instanceof ConfigError && error.message === message,
    )
  }
})

test('a failure of the database is that failure, not a configuration error', async () => {
  const failure = new Error('the database is gone')
  const { repos } = usersRepository([undefined], async () => Promise.reject(failure))
  await assert.rejects(ensureFirstAdmin(repos, SETTINGS, silent), (error: unknown) => error === failure)
})
