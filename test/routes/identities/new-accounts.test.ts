/**
 * The account a provider's sign-in ends in, in the details the other identity tests leave open:
 * the name a new account gets (cut to leave room for a suffix, trimmed, 'user' when nothing is
 * left) and how often a taken one is tried again (against names really held), an email registered
 * while the sign-in is under way, an account that has another identity of the provider, an
 * account deleted mid-way, and each refusal's whole message and recorded reason.
 *
 * SQLite, opened by the test so that it sees every query the app sends (Kysely's query log): the
 * tries of a name are the inserts into users the database refused or took, and a listener may act
 * between two of the app's queries, as a request at the same moment would.
 */
import assert from 'node:assert/strict'
import { after, afterEach, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Kysely, sql, SqliteDialect } from 'kysely'
import { buildApp } from '../../../src/app.js'
import type { Database } from '../../../src/db/database.js'
import { openSqlite } from '../../../src/db/sqlite.js'
import { NAME_MAX_LENGTH } from '../../../src/services/accounts.js'
import { assertProblem, register, testConfig, uniqueUser } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { startTestIdentityProvider, type TestPerson } from '../../support/oidc-provider.js'
import { enrolTotp, eventsOf, userWithToken } from '../mfa/support.js'
import {
  callbackOf,
  identityRows,
  PROVIDER,
  PUBLIC_URL,
  signInAs,
  storeIdentity,
  userByEmail,
} from './support.js'

const idp = await startTestIdentityProvider({ redirectUris: [callbackOf(PROVIDER)] })
after(() => idp.close())

const config = (env: Record<string, string> = {}) =>
  testConfig({
    DATABASE_URL: 'sqlite::memory:',
    PUBLIC_URL,
    OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER, 'Test SSO')]),
    ...env,
  })

interface SeenQuery {
  sql: string
  parameters: readonly unknown[]
  failed: boolean
}

/** An in-memory SQLite database for the app, whose queries the test sees once each has run. */
function watchedDatabase() {
  const sqlite = openSqlite(':memory:', 'full')
  const listeners = new Set<(query: SeenQuery) => void>()
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: sqlite }),
    log(event) {
      const seen = {
        sql: event.query.sql,
        parameters: event.query.parameters,
        failed: event.level === 'error',
      }
      for (const listener of listeners) listener(seen)
    },
  })
  return {
    handle: { db, engine: 'sqlite' as const, target: { engine: 'sqlite' as const, filename: ':memory:' } },
    /** Calls `listener` after each query, until the returned function or `forget` is called. */
    listen(listener: (query: SeenQuery) => void) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    forget: () => listeners.clear(),
    /** Runs a statement at once on the app's connection (between two of its queries). */
    run: (text: string, parameters: unknown[] = []) => sqlite.prepare(text).run(parameters),
  }
}

/** The name an insert into users tried, or undefined for any other query. */
function insertedName(query: SeenQuery): string | undefined {
  const columns = /^insert into "users" \(([^)]*)\)/.exec(query.sql)?.[1]?.split(', ')
  return columns && (query.parameters[columns.indexOf('"name"')] as string)
}

/**
 * Ten tries, when the service gives up after six: a retry that never stops would hang the test,
 * so past this many, what makes the tries fail is taken away and the next one is let through.
 */
const RELEASE_AFTER = 10

/** A new account row, as a registration at this moment would write it (no password needed here). */
const INSERT_USER =
  'insert into users (name, name_key, email, password_hash, role, is_active, email_verified, created_at, updated_at) ' +
  "values (?, ?, ?, '!', 'user', 1, 0, ?, ?)"

/** The last refusal the audit trail recorded. */
async function lastRefusal(app: FastifyInstance) {
  const row = await app.db
    .selectFrom('audit_events')
    .select(['user_id', 'outcome', 'details'])
    .where('event', '=', 'external_login_failed')
    .orderBy('id', 'desc')
    .executeTakeFirstOrThrow()
  return { user_id: row.user_id, outcome: row.outcome, details: JSON.parse(row.details!) as unknown }
}

describe('the account a sign-in with a provider ends in', () => {
  const clock = new TestClock()
  const database = watchedDatabase()
  let app: FastifyInstance

  before(async () => {
    app = await buildApp(config(), { logger: false, clock, database: database.handle })
  })
  after(async () => {
    await app?.close()
    await database.handle.db.destroy()
  })
  afterEach(() => database.forget())

  /**
   * Signs in as `person`, with the names tried for a new account (inserts into users, refused or
   * taken); past RELEASE_AFTER tries, `release` takes away what makes them fail.
   */
  async function signInTrying(person: TestPerson, release: () => void = () => undefined) {
    const tries: { name: string; refused: boolean }[] = []
    let released = false
    const stopListening = database.listen((query) => {
      const name = insertedName(query)
      if (name !== undefined) tries.push({ name, refused: query.failed })
      // At the query after that try: a try runs under a savepoint, whose rollback would undo it.
      else if (tries.length === RELEASE_AFTER && !released) {
        released = true
        release()
      }
    })
    const response = await signInAs(app, idp, person.sub)
    stopListening()
    return { response, tries }
  }

  test(`a long display name is cut to ${NAME_MAX_LENGTH - 6} characters, room for the suffix when it is taken`, async () => {
    const long = `Ada ${uniqueUser().name} `.padEnd(NAME_MAX_LENGTH + 20, 'x')
    const cut = long.slice(0, NAME_MAX_LENGTH - 6)

    const first = await signInTrying(idp.addPerson({ preferred_username: long }))
    assert.equal(first.response.statusCode, 200, first.response.body)
    assert.deepEqual(first.tries, [{ name: cut, refused: false }])

    // The same name again: the cut one is taken, the second try has a suffix and fits exactly.
    const namesake = idp.addPerson({ preferred_username: long })
    const second = await signInTrying(namesake)
    assert.equal(second.response.statusCode, 200, second.response.body)
    const user = (await userByEmail(app, namesake.email!))!
    assert.match(user.name, new RegExp(`^${cut}-\\d{5}$`))
    assert.equal(user.name.length, NAME_MAX_LENGTH)
    assert.deepEqual(second.tries, [
      { name: cut, refused: true },
      { name: user.name, refused: false },
    ])
  })

  test("a display name is trimmed once its '@' are gone; nothing left gives 'user'", async () => {
    const unique = uniqueUser().name
    const spaced = idp.addPerson({ preferred_username: ` @Ada ${unique}@ ` })
    assert.equal((await signInAs(app, idp, spaced.sub)).statusCode, 200)
    assert.equal((await userByEmail(app, spaced.email!))!.name, `Ada ${unique}`)

    const atSigns = idp.addPerson({ preferred_username: ' @＠﹫ ' })
    assert.equal((await signInAs(app, idp, atSigns.sub)).statusCode, 200)
    assert.equal((await userByEmail(app, atSigns.email!))!.name, 'user')
  })

  test('a name taken with each of its 90,000 suffixes is tried six times, then the sign-in ends: 409, nothing made', async () => {
    const base = `taken_${uniqueUser().name}`
    await register(app, uniqueUser({ name: base }))
    // Every name a retry may draw (randomInt(10_000, 100_000)), held by an account each.
    const now = new Date()
    await sql`
      with recursive suffix(n) as (select 10000 union all select n + 1 from suffix where n < 99999)
      insert into users (name, name_key, email, password_hash, role, is_active, email_verified, created_at, updated_at)
      select ${base} || '-' || n, ${base} || '-' || n, ${base} || '-' || n || '@example.com', '!', 'user', 1, 1, ${now}, ${now}
      from suffix
    `.execute(app.db)
    const usersBefore = await app.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('count'))
      .execute()

    const person = idp.addPerson({ preferred_username: base })
    const { response, tries } = await signInTrying(person, () =>
      database.run('delete from users where name_key like ?', [`${base}-%`]),
    )

    assert.equal(assertProblem(response, 409).detail, 'This name is already taken.')
    assert.deepEqual(
      tries.map(({ name, refused }) => [name.replace(/-\d{5}$/, '-NNNNN'), refused]),
      [[base, true], ...Array.from({ length: 5 }, () => [`${base}-NNNNN`, true])],
    )
    assert.equal(await userByEmail(app, person.email!), undefined)
    assert.deepEqual(
      (await identityRows(app)).filter((row) => row.subject === person.sub),
      [],
    )
    assert.deepEqual(
      await app.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll().as('count'))
        .execute(),
      usersBefore,
    )
  })

  test('an email registered while the sign-in is under way ends it: 409, tried once, that account kept', async () => {
    const person = idp.addPerson()
    const racer = uniqueUser({ email: person.email! })
    // The moment the sign-in has found no account of the email, a registration takes it.
    const unlisten = database.listen((query) => {
      if (!query.sql.startsWith('select') || !query.parameters.includes(person.email)) return
      unlisten()
      database.run(INSERT_USER, [racer.name, racer.name, racer.email, new Date(), new Date()])
    })
    const { response, tries } = await signInTrying(person, () =>
      database.run('delete from users where email = ?', [racer.email]),
    )
    unlisten()

    assert.equal(assertProblem(response, 409).detail, 'A user with this email already exists.')
    assert.deepEqual(tries, [{ name: person.preferred_username, refused: true }])
    const kept = (await userByEmail(app, person.email!))!
    assert.equal(kept.name, racer.name)
    assert.deepEqual(await identityRows(app, kept.id), [])
  })

  test('a database failure while making the account is not tried again, even one that reads as a taken name: 500', async () => {
    const person = idp.addPerson()
    const refuse = `refuse_${person.sub.replace(/\W/g, '_')}`
    database.run(
      `create trigger ${refuse} before insert on users when new.email = '${person.email}' ` +
        "begin select raise(abort, 'This name is already taken.'); end",
    )
    try {
      const { response, tries } = await signInTrying(person, () => database.run(`drop trigger ${refuse}`))
      assert.equal(
        assertProblem(response, 500).detail,
        'Something went wrong on our side; it has been logged.',
      )
      assert.deepEqual(tries, [{ name: person.preferred_username, refused: true }])
      assert.equal(await userByEmail(app, person.email!), undefined)
    } finally {
      database.run(`drop trigger if exists ${refuse}`)
    }
  })

  test('an account linked to another identity of the provider is not linked a second one by its email: 409', async () => {
    const owner = await register(app, uniqueUser())
    await app.db.updateTable('users').set({ email_verified: true }).where('id', '=', owner.id).execute()
    const first = idp.addPerson({ email: owner.email })
    const eventsBefore = (await eventsOf(app, owner.id, '')).length
    assert.equal((await signInAs(app, idp, first.sub)).statusCode, 200)
    // A link makes no account: the owner's trail has the sign-in, and no registration.
    assert.deepEqual(
      (await eventsOf(app, owner.id, ''))
        .slice(eventsBefore)
        .map(({ event, details }) => [event, JSON.parse(details!) as unknown]),
      [['external_login_succeeded', { provider: PROVIDER, linked: true }]],
    )

    const second = idp.addPerson({ email: owner.email })
    const sessionsBefore = await app.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', owner.id)
      .execute()
    const response = await signInAs(app, idp, second.sub)
    assert.equal(
      assertProblem(response, 409).detail,
      'Your account is linked to another account of this provider: sign in with that one, or unlink it first.',
    )
    assert.deepEqual(
      (await identityRows(app, owner.id)).map((row) => row.subject),
      [first.sub],
    )
    assert.deepEqual(
      await app.db.selectFrom('sessions').select('id').where('user_id', '=', owner.id).execute(),
      sessionsBefore,
    )
  })

  test('a person without an email is refused, recorded as no_email', async () => {
    const person = idp.addPerson({ email: undefined, email_verified: undefined })
    const response = await signInAs(app, idp, person.sub)
    assert.equal(
      assertProblem(response, 403).detail,
      'The provider did not give an email address, which a new sign-in needs: allow it at the provider.',
    )
    assert.deepEqual(await lastRefusal(app), {
      user_id: null,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'no_email' },
    })
  })

  test('an email the provider has not verified is refused for a new account, recorded as unverified_email', async () => {
    const person = idp.addPerson({ email_verified: false })
    const response = await signInAs(app, idp, person.sub)
    assert.equal(
      assertProblem(response, 403).detail,
      'The provider has not verified your email address: verify it there first, or register with a password.',
    )
    assert.deepEqual(await lastRefusal(app), {
      user_id: null,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'unverified_email' },
    })
  })

  test('an existing account of an email we never verified: the whole 409 tells the way to link', async () => {
    const squatter = await register(app, uniqueUser())
    const person = idp.addPerson({ email: squatter.email })
    const response = await signInAs(app, idp, person.sub)
    assert.equal(
      assertProblem(response, 409).detail,
      'An account with this email address exists, and the provider or this server has not verified the address: ' +
        'log in to that account another way, then link this provider from the account settings.',
    )
  })

  test('a deactivated account is refused, recorded as inactive', async () => {
    const person = idp.addPerson()
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    const user = (await userByEmail(app, person.email!))!
    await app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
    const response = await signInAs(app, idp, person.sub)
    assert.equal(assertProblem(response, 403).detail, 'This account is deactivated.')
    assert.deepEqual(await lastRefusal(app), {
      user_id: user.id,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'inactive' },
    })
  })

  test('an account deleted while its sign-in is under way is refused as deactivated, not an error', async () => {
    const person = idp.addPerson()
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    const user = (await userByEmail(app, person.email!))!
    // Once the sign-in has found the identity (and noted its use), the account goes.
    const unlisten = database.listen((query) => {
      if (!query.sql.startsWith('update "external_identities"')) return
      unlisten()
      database.run('delete from users where id = ?', [user.id])
    })
    const response = await signInAs(app, idp, person.sub)
    unlisten()
    assert.equal(assertProblem(response, 403).detail, 'This account is deactivated.')
    assert.deepEqual(await lastRefusal(app), {
      user_id: user.id,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'inactive' },
    })
  })

  test('an account with a second factor is refused, recorded as second_factor', async () => {
    const user = await userWithToken(app)
    await app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    await enrolTotp(app, user, clock)
    const response = await signInAs(app, idp, idp.addPerson({ email: user.email }).sub)
    assert.equal(
      assertProblem(response, 403).detail,
      'This account has a second factor, which a sign-in with a provider does not prove: log in with your password or a passkey.',
    )
    assert.deepEqual(await lastRefusal(app), {
      user_id: user.id,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'second_factor' },
    })
  })
})

describe('the account a sign-in with a provider ends in, under REQUIRE_EMAIL_VERIFICATION', () => {
  let app: FastifyInstance
  before(async () => {
    app = await buildApp(config({ REQUIRE_EMAIL_VERIFICATION: 'true' }), { logger: false })
  })
  after(() => app?.close())

  test('a linked account whose email is not verified is refused, recorded as email_not_verified', async () => {
    const user = await register(app, uniqueUser())
    const person = idp.addPerson()
    await storeIdentity(app, { userId: user.id, subject: person.sub })
    const response = await signInAs(app, idp, person.sub)
    assert.equal(
      assertProblem(response, 403).detail,
      'The email address of this account is not verified yet: follow the link in the email we sent.',
    )
    assert.deepEqual(await lastRefusal(app), {
      user_id: user.id,
      outcome: 'failure',
      details: { provider: PROVIDER, reason: 'email_not_verified' },
    })
  })
})
