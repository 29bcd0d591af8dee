/** Opens the database DATABASE_URL names, on whichever engine it is, behind one Kysely instance. */
import { Kysely, SqliteDialect, type Dialect } from 'kysely'
import type { Pool as MysqlPool } from 'mysql2'
import type pg from 'pg'
import type { DatabaseOptions } from '../config.js'
import type { Database } from './database.js'
import { mysqlDialect } from './mysql.js'
import type { PoolOptions } from './pool-bounds.js'
import { postgresDialect } from './postgres.js'
import { openSqlite } from './sqlite.js'
import type { DatabaseTarget, Engine } from './target.js'

export interface DatabaseHandle {
  db: Kysely<Database>
  engine: Engine
  target: DatabaseTarget
  /** The driver's connection pool (read by the metrics at scrape time); none on SQLite. */
  pool?: pg.Pool | MysqlPool
}

export interface OpenOptions extends Partial<DatabaseOptions>, PoolOptions {}

/**
 * Opens a database. Without `queryTimeoutMs` a query may run as long as it needs (the CLI's
 * migrations and seeding); the server always passes its bounds (config.database).
 */
export function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): DatabaseHandle {
  const { dialect, pool } = createDialect(target, options)
  return { db: new Kysely<Database>({ dialect }), engine: target.engine, target, pool }
}

function createDialect(
  target: DatabaseTarget,
  options: OpenOptions,
): { dialect: Dialect; pool?: pg.Pool | MysqlPool } {
  switch (target.engine) {
    case 'sqlite':
      return {
        dialect: new SqliteDialect({
          database: openSqlite(target.filename, options.sqliteSynchronous ?? 'full'),
        }),
      }
    case 'postgres':
      return postgresDialect(target, options)
    case 'mysql':
      return mysqlDialect(target, options)
  }
}
