import { sql, type Kysely } from 'kysely'
import type { Database, NewUserRow, UserRow, UserRowUpdate } from '../db/database.js'
import { insertReturningId } from '../db/portable.js'
import type { Engine } from '../db/target.js'
import { compiledOnce } from './compiled-once.js'
import { alone } from './savepoint.js'

/** Every column except the password hash, which only `findCredentialsByLogin`/`findPasswordHash` read. */
const USER_COLUMNS = [
  'id',
  'name',
  'email',
  'role',
  'is_active',
  'email_verified',
  'created_at',
  'updated_at',
] as const

export type UserRecord = Pick<UserRow, (typeof USER_COLUMNS)[number]>
export type UserCredentials = Pick<UserRow, 'id' | 'role' | 'password_hash' | 'is_active' | 'email_verified'>
/** A login name, normalised, and the one column it is looked up in. */
export interface LoginLookup {
  by: 'email' | 'name'
  key: string
}

/** The one-row read behind every GET /users/{id}. */
const findById = compiledOnce((db) => db.selectFrom('users').select(USER_COLUMNS).where('id', '=', 0))

/** Reading one user: by id, by login name, or the unique field a change collides on. */
function userLookups(db: Kysely<Database>, engine: Engine) {
  return {
    async findById(id: number): Promise<UserRecord | undefined> {
      return (await findById(db, engine, [id]))[0]
    },

    /**
     * The one query that reads a password hash for login: by email or by name key (both stored
     * lower-cased), whichever the caller says; each is unique, so at most one account matches.
     */
    findCredentialsByLogin(login: LoginLookup): Promise<UserCredentials | undefined> {
      return db
        .selectFrom('users')
        .select(['id', 'role', 'password_hash', 'is_active', 'email_verified'])
        .where(login.by === 'email' ? 'email' : 'name_key', '=', login.key)
        .executeTakeFirst()
    },

    async findPasswordHash(id: number): Promise<string | undefined> {
      const row = await db.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirst()
      return row?.password_hash
    },

    /** Which unique field a new or changed user collides on, to explain a unique violation. */
    async findConflict(email: string | undefined, nameKey: string | undefined, exceptId?: number) {
      const row = await db
        .selectFrom('users')
        .select(['email', 'name_key'])
        .where((eb) =>
          eb.or([
            // Stryker disable next-line ConditionalExpression: the drivers bind undefined as NULL, which no row equals; the condition says so plainly.
            ...(email !== undefined ? [eb('email', '=', email)] : []),
            // Stryker disable next-line ConditionalExpression: as above.
            ...(nameKey !== undefined ? [eb('name_key', '=', nameKey)] : []),
          ]),
        )
        .$if(exceptId !== undefined, (qb) => qb.where('id', '!=', exceptId!))
        .executeTakeFirst()
      if (!row) return undefined
      return row.email === email ? ('email' as const) : ('name' as const)
    },
  }
}

function userWrites(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * Its id. A taken name or email fails alone (under a savepoint in a transaction), so that the
     * transaction can go on: a new account from an identity provider tries another name.
     */
    insert(row: NewUserRow): Promise<number> {
      return alone(db, 'user_insert', () => insertReturningId(engine, db.insertInto('users').values(row)))
    },

    async update(id: number, changes: UserRowUpdate): Promise<boolean> {
      const result = await db.updateTable('users').set(changes).where('id', '=', id).executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    async delete(id: number): Promise<boolean> {
      const result = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

function userListing(db: Kysely<Database>) {
  return {
    /**
     * A page in id order, after the given id (keyset on the primary key). `text` is lower-cased
     * NFKC and matched against the stored lower-cased forms (name_key, email), so the same rows
     * match on every engine.
     */
    list(options: {
      afterId: number
      limit: number
      filters: { text?: string; role?: UserRow['role']; isActive?: boolean }
    }): Promise<UserRecord[]> {
      const { afterId, limit, filters } = options
      const pattern = filters.text && `%${filters.text.replace(/[!%_]/g, (char) => `!${char}`)}%`
      return db
        .selectFrom('users')
        .select(USER_COLUMNS)
        .where('id', '>', afterId)
        .$if(filters.role !== undefined, (qb) => qb.where('role', '=', filters.role!))
        .$if(filters.isActive !== undefined, (qb) => qb.where('is_active', '=', filters.isActive!))
        .$if(pattern !== undefined, (qb) =>
          qb.where((eb) =>
            eb.or([
              sql<boolean>`${sql.ref('name_key')} like ${pattern} escape '!'`,
              sql<boolean>`${sql.ref('email')} like ${pattern} escape '!'`,
            ]),
          ),
        )
        .orderBy('id')
        .limit(limit)
        .execute()
    },
  }
}

/** The active admins, of whom one must always remain. */
function activeAdmins(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * Counts the active admins and, inside a transaction, locks their rows until it ends: two admins
     * demoting or deleting each other at once are then serialised, and the second sees one admin left.
     * (PostgreSQL allows no FOR UPDATE with an aggregate, so the ids are counted here; SQLite runs one
     * transaction at a time and has no FOR UPDATE.)
     */
    async lockActiveAdmins(): Promise<number> {
      const rows = await db
        .selectFrom('users')
        .select('id')
        .where('role', '=', 'admin')
        .where('is_active', '=', true)
        .orderBy('id')
        .$if(engine !== 'sqlite', (qb) => qb.forUpdate())
        .execute()
      return rows.length
    },

    async countActiveAdmins(): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('role', '=', 'admin')
        .where('is_active', '=', true)
        .executeTakeFirstOrThrow()
      return Number(row.count)
    },
  }
}

export function createUsersRepository(db: Kysely<Database>, engine: Engine) {
  return {
    ...userLookups(db, engine),
    ...userWrites(db, engine),
    ...userListing(db),
    ...activeAdmins(db, engine),
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
