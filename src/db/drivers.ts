/**
 * The database drivers. Only src/db/ touches one: this module loads them, the engine modules next
 * to it (sqlite.ts, postgres.ts, mysql.ts) use them, and everything else sees Kysely and the handle
 * that open.ts returns. Repositories stay portable through portable.ts and errors.ts.
 */
import { createRequire } from 'node:module'
import type SqliteDatabase from 'better-sqlite3'
import type * as Mysql from 'mysql2'
import type pg from 'pg'

const require = createRequire(import.meta.url)

/**
 * Each driver is loaded when a database of its engine is first opened: a server on SQLite never
 * loads pg or mysql2, which shortens its start and its memory (docs/performance.md).
 */
export const drivers = {
  sqlite: () => require('better-sqlite3') as typeof SqliteDatabase,
  postgres: () => require('pg') as typeof pg,
  mysql: () => require('mysql2') as typeof Mysql,
}
