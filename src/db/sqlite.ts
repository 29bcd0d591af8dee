/**
 * SQLite through better-sqlite3, in the shape Kysely's SQLite dialect expects, with the
 * conversions that give repositories the same types as on PostgreSQL and MySQL.
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import type SqliteDatabase from 'better-sqlite3'
import type { Statement as SqliteStatement } from 'better-sqlite3'
import type { DatabaseOptions } from '../config.js'
import { drivers } from './drivers.js'

const SQLITE_STATEMENT_CACHE_SIZE = 500

type WrappedStatement = ReturnType<typeof wrapStatement>

/**
 * Opens SQLite in WAL mode with foreign keys on, and returns it in the shape Kysely's SQLite
 * dialect expects, with two additions:
 * - prepared statements are cached by SQL text (preparing is a large part of a one-row read);
 * - values are converted where SQLite has no native type: `Date` and `boolean` parameters become
 *   ISO-8601 text and 0/1, and columns declared `timestamp`/`boolean` come back as `Date`/`boolean`,
 *   so that repositories see the same types on every engine.
 */
export function openSqlite(filename: string, synchronous: DatabaseOptions['sqliteSynchronous']) {
  if (filename !== ':memory:') mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
  const database = new (drivers.sqlite())(filename)
  database.pragma('journal_mode = WAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  database.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)

  const cache = new Map<string, WrappedStatement>()
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = cache.get(sqlText)
      if (!statement) {
        statement = wrapStatement(database.prepare(sqlText))
        if (ROLLBACK.test(sqlText)) statement = skipWhenRolledBack(database, statement)
        if (cache.size >= SQLITE_STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string)
        cache.set(sqlText, statement)
      }
      return statement
    },
  }
}

const ROLLBACK = /^\s*rollback\b/i

/**
 * On a full disk, an I/O error or a read-only file (SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY…)
 * SQLite rolls the whole transaction back by itself. The ROLLBACK (or ROLLBACK TO a savepoint)
 * that Kysely then sends would fail with "cannot rollback - no transaction is active", and that
 * error would replace the real one in the log and in the answer. There is nothing left to undo,
 * so such a rollback does nothing.
 */
function skipWhenRolledBack(
  database: SqliteDatabase.Database,
  statement: WrappedStatement,
): WrappedStatement {
  return {
    ...statement,
    run: (parameters) =>
      database.inTransaction ? statement.run(parameters) : { changes: 0, lastInsertRowid: 0 },
  }
}

function toSqliteValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'boolean') return value ? 1 : 0
  return value
}

function wrapStatement(statement: SqliteStatement) {
  const params = (parameters: ReadonlyArray<unknown>) => parameters.map(toSqliteValue)
  const conversions = statement.reader
    ? statement
        .columns()
        .filter((column) => column.type === 'timestamp' || column.type === 'boolean')
        .map((column) => ({ name: column.name, type: column.type }))
    : []
  const convert = (row: unknown) => {
    const record = row as Record<string, unknown>
    for (const { name, type } of conversions) {
      const value = record[name]
      if (value === null || value === undefined) continue
      record[name] = type === 'boolean' ? value === 1 || value === true : new Date(value as string)
    }
    return row
  }
  return {
    reader: statement.reader,
    all: (parameters: ReadonlyArray<unknown>) => {
      const rows = statement.all(params(parameters))
      return conversions.length ? rows.map(convert) : rows
    },
    run: (parameters: ReadonlyArray<unknown>) => statement.run(params(parameters)),
    iterate: function* (parameters: ReadonlyArray<unknown>) {
      for (const row of statement.iterate(params(parameters))) yield convert(row)
    },
  }
}
