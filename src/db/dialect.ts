/**
 * Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB lives here: this is the
 * only file that imports a database driver. Repositories and migrations stay portable by calling
 * the named helpers below.
 */
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type SqliteDatabase from 'better-sqlite3'
import type { Statement as SqliteStatement } from 'better-sqlite3'
import {
  Kysely,
  MysqlAdapter,
  MysqlDialect,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  sql,
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type Dialect,
  type InsertQueryBuilder,
  type InsertResult,
} from 'kysely'
import type * as Mysql from 'mysql2'
import type { Pool as MysqlPool, TypeCastField, TypeCastNext } from 'mysql2'
import type pg from 'pg'
import type { DatabaseOptions } from '../config.js'
import type { Database } from './database.js'

const require = createRequire(import.meta.url)

/**
 * The drivers, each loaded when a database of its engine is first opened: a server on SQLite never
 * loads pg or mysql2, which shortens its start and its memory (docs/performance.md).
 */
const drivers = {
  sqlite: () => require('better-sqlite3') as typeof SqliteDatabase,
  postgres: () => require('pg') as typeof pg,
  mysql: () => require('mysql2') as typeof Mysql,
}

export type Engine = 'sqlite' | 'postgres' | 'mysql'

export type DatabaseTarget =
  | { engine: 'sqlite'; filename: string }
  | { engine: 'postgres'; url: string; host: string; database: string; poolSize: number }
  | { engine: 'mysql'; url: string; host: string; database: string; poolSize: number }

/** A DATABASE_URL problem, worded for the person who wrote it. */
export class DatabaseUrlError extends Error {
  override name = 'DatabaseUrlError'
}

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url === 'sqlite::memory:' || url === 'sqlite://:memory:')
    return { engine: 'sqlite', filename: ':memory:' }
  if (url.startsWith('sqlite:')) {
    // sqlite:///relative/path.db → relative/path.db ; sqlite:////abs/path.db → /abs/path.db
    const match = /^sqlite:\/\/\/(.+)$/.exec(url)
    if (!match?.[1])
      throw new DatabaseUrlError(
        `DATABASE_URL: "${url}" is not a SQLite URL; use sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite::memory:`,
      )
    return { engine: 'sqlite', filename: decodeURIComponent(match[1]) }
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new DatabaseUrlError('DATABASE_URL: is not a valid URL')
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''))
  if (!database) throw new DatabaseUrlError('DATABASE_URL: name the database after the host, e.g. …:5432/app')
  const poolSize = Number(
    parsed.searchParams.get('pool_size') ?? parsed.searchParams.get('connection_limit') ?? 10,
  )
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000)
    throw new DatabaseUrlError('DATABASE_URL: pool_size must be a whole number between 1 and 1000')
  const host = `${parsed.hostname}:${parsed.port || (parsed.protocol.startsWith('postgres') ? 5432 : 3306)}`
  if (parsed.protocol === 'postgres:' || parsed.protocol === 'postgresql:')
    return { engine: 'postgres', url, host, database, poolSize }
  if (parsed.protocol === 'mysql:' || parsed.protocol === 'mariadb:')
    return { engine: 'mysql', url, host, database, poolSize }
  throw new DatabaseUrlError(`DATABASE_URL: unsupported scheme "${parsed.protocol}"`)
}

/** Describes the target without credentials, for logs and error messages. */
export function describeTarget(target: DatabaseTarget): string {
  if (target.engine === 'sqlite') return `SQLite database ${target.filename}`
  return `${target.engine === 'postgres' ? 'PostgreSQL' : 'MySQL/MariaDB'} database "${target.database}" at ${target.host}`
}

export interface DatabaseHandle {
  db: Kysely<Database>
  engine: Engine
  target: DatabaseTarget
  /** The driver's connection pool (read by the metrics at scrape time); none on SQLite. */
  pool?: pg.Pool | MysqlPool
}

/** Told about connections that fail while idle in a pool (they are replaced on the next query). */
export type PoolErrorListener = (error: Error) => void

export interface OpenOptions extends Partial<DatabaseOptions> {
  onPoolError?: PoolErrorListener
}

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
    case 'postgres': {
      const pool = createPostgresPool(target, options.onPoolError ?? (() => {}))
      return { dialect: new PostgresDialect({ pool }), pool }
    }
    case 'mysql': {
      const pool = createMysqlPoolFor(target)
      return { dialect: new MysqlDialect({ pool }), pool }
    }
  }
}

// ---------------------------------------------------------------- SQLite

const SQLITE_STATEMENT_CACHE_SIZE = 500

/**
 * Opens SQLite in WAL mode with foreign keys on, and returns it in the shape Kysely's SQLite
 * dialect expects, with two additions:
 * - prepared statements are cached by SQL text (preparing is a large part of a one-row read);
 * - values are converted where SQLite has no native type: `Date` and `boolean` parameters become
 *   ISO-8601 text and 0/1, and columns declared `timestamp`/`boolean` come back as `Date`/`boolean`,
 *   so that repositories see the same types on every engine.
 */
function openSqlite(filename: string, synchronous: DatabaseOptions['sqliteSynchronous']) {
  if (filename !== ':memory:') mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
  const database = new (drivers.sqlite())(filename)
  database.pragma('journal_mode = WAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  database.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)

  const cache = new Map<string, ReturnType<typeof wrapStatement>>()
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
  statement: ReturnType<typeof wrapStatement>,
): ReturnType<typeof wrapStatement> {
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

// ---------------------------------------------------------------- PostgreSQL

function createPostgresPool(
  target: Extract<DatabaseTarget, { engine: 'postgres' }>,
  onPoolError: PoolErrorListener,
) {
  const pg = drivers.postgres()
  const url = new URL(target.url)
  url.searchParams.delete('pool_size')
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: target.poolSize,
    connectionTimeoutMillis: 5000,
    // BIGINT (price) is bounded to Number.MAX_SAFE_INTEGER by the API, so a number is exact.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pg.types.builtins.INT8
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  })
  // An idle connection that dies (the server restarted) is dropped from the pool; without this
  // listener the 'error' event would crash the process. The next query opens a new connection.
  pool.on('error', onPoolError)
  // A connection can also die while checked out (between a failed query and its release); the
  // client then emits 'error' too, which would otherwise be an uncaught exception.
  pool.on('connect', (client) => client.on('error', onPoolError))
  return pool
}

// ---------------------------------------------------------------- MySQL / MariaDB

function createMysqlPoolFor(target: Extract<DatabaseTarget, { engine: 'mysql' }>) {
  const url = new URL(target.url)
  url.protocol = 'mysql:'
  url.searchParams.delete('pool_size')
  return drivers.mysql().createPool({
    uri: url.toString(),
    connectionLimit: target.poolSize,
    connectTimeout: 5000,
    // Dates are written and read as UTC, whatever the server's or the process's time zone.
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: false,
    // MySQL has no boolean type: TINYINT(1) columns come back as booleans, as on PostgreSQL.
    typeCast: (field: TypeCastField, next: TypeCastNext) => {
      if (field.type === 'TINY' && field.length === 1) {
        const value = field.string()
        return value === null ? null : value === '1'
      }
      return next()
    },
  })
}

// ---------------------------------------------------------------- portable helpers

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- works on any schema
export function engineOf(db: Kysely<any>): Engine {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  return 'sqlite'
}

/** Column types for migrations: the same logical schema on every engine. */
export function columnTypes(engine: Engine) {
  return {
    /** Auto-incrementing integer primary key. */
    id: (engine === 'postgres' ? 'serial' : 'integer') as ColumnDataType,
    /** Builds the primary key of an `id` column (PostgreSQL's serial is already auto-incrementing). */
    primaryKey: (col: ColumnDefinitionBuilder) =>
      engine === 'postgres' ? col.primaryKey() : col.primaryKey().autoIncrement(),
    /** A UTC instant with millisecond precision. */
    timestamp: (engine === 'postgres'
      ? 'timestamptz(3)'
      : engine === 'mysql'
        ? 'datetime(3)'
        : 'timestamp') as ColumnDataType,
    /** Long text (unbounded on PostgreSQL/SQLite, 64 KiB on MySQL). */
    text: 'text' as ColumnDataType,
  }
}

/**
 * MySQL tables use a binary collation so that comparisons and unique indexes behave as on
 * PostgreSQL and SQLite: "é" ≠ "e", "a" ≠ "A". Case-insensitive uniqueness is explicit
 * (lower-cased key columns), never a side effect of a collation.
 */
export function tableOptions(engine: Engine) {
  return engine === 'mysql' ? sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin` : sql``
}

/** Runs an INSERT and returns the new row's id (MySQL has no RETURNING). */
export async function insertReturningId<TB extends keyof Database>(
  engine: Engine,
  query: InsertQueryBuilder<Database, TB, InsertResult>,
): Promise<number> {
  if (engine === 'mysql') {
    const result = await query.executeTakeFirstOrThrow()
    return Number(result.insertId)
  }
  const row = await query.returning(sql<number>`id`.as('id')).executeTakeFirstOrThrow()
  return Number(row.id)
}

/** True when the error is a unique-constraint violation, on any engine. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return (
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === '23505' ||
    code === 'ER_DUP_ENTRY'
  )
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  '57P01', // PostgreSQL admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up or shutting down)
  '08006', // connection_failure
  '08001', // unable to connect
  'SQLITE_CANTOPEN',
  'SQLITE_BUSY',
])

/**
 * SQLite's answers when the file cannot take a write: a full disk (SQLITE_FULL), an I/O error
 * (SQLITE_IOERR and its extended codes, e.g. SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC), a read-only
 * file or folder (SQLITE_READONLY…), a file that cannot be opened (SQLITE_CANTOPEN…).
 */
const STORAGE_ERROR_CODE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN)(_|$)/

/**
 * True when the database answers but cannot store data: a storage fault of the server's side,
 * which may pass (space freed, disk remounted), never a fault of the request.
 */
export function isStorageError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && STORAGE_ERROR_CODE.test(code)
}

/** True when the error says the database cannot be reached (as opposed to a bad query). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true
  // pg reports a connection lost mid-query, or a pool timeout, without a code.
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(
    error.message,
  )
}
