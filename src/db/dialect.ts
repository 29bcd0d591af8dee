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
  type MysqlPool as KyselyMysqlPool,
  type MysqlPoolConnection,
  type PostgresPool,
  type PostgresPoolClient,
} from 'kysely'
import type * as Mysql from 'mysql2'
import type {
  Pool as MysqlPool,
  PoolConnection as MysqlPoolConnectionRaw,
  TypeCastField,
  TypeCastNext,
} from 'mysql2'
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
      const pool = createPostgresPool(target, options)
      return {
        dialect: new PostgresDialect({ pool: boundedPostgresPool(pool, options.queryTimeoutMs) }),
        pool,
      }
    }
    case 'mysql': {
      const pool = createMysqlPoolFor(target, options)
      return { dialect: new MysqlDialect({ pool: boundedMysqlPool(pool, options) }), pool }
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

// ---------------------------------------------------------------- bounds on every call

/**
 * A database call that did not finish within its bound (DATABASE_QUERY_TIMEOUT_MS,
 * DATABASE_CONNECT_TIMEOUT_MS): the database is hung or the link to it is (a partition can last
 * ~15 minutes of TCP retries). The request answers 503 with Retry-After.
 */
export class DatabaseTimeoutError extends Error {
  override name = 'DatabaseTimeoutError'
  readonly code = 'DATABASE_TIMEOUT'
  constructor(what: 'query' | 'connect', timeoutMs: number) {
    super(
      what === 'query'
        ? `the database did not answer a query within ${timeoutMs} ms`
        : `no database connection could be had within ${timeoutMs} ms`,
    )
  }
}

/** TCP keep-alive on every connection: a peer that vanished is noticed while the connection idles. */
const KEEP_ALIVE_DELAY_MS = 10_000

/**
 * The client-side bound is a little later than the server-side one (statement_timeout,
 * max_statement_time): a database that is alive cancels a slow statement itself and keeps the
 * connection; only a database (or a link) that says nothing makes the client give up on it.
 */
const CLIENT_TIMEOUT_MARGIN_MS = 1_000

/** ROLLBACK after a failure on a connection already given up: the database aborts it when it closes. */
const isRollback = (sqlText: string) => /^\s*rollback\s*$/i.test(sqlText)

// ---------------------------------------------------------------- PostgreSQL

function createPostgresPool(target: Extract<DatabaseTarget, { engine: 'postgres' }>, options: OpenOptions) {
  const pg = drivers.postgres()
  const url = new URL(target.url)
  url.searchParams.delete('pool_size')
  const onPoolError = options.onPoolError ?? (() => {})
  const queryTimeoutMs = options.queryTimeoutMs
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: target.poolSize,
    // Bounds both opening a connection and waiting for a free one in the pool.
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
    ...(queryTimeoutMs
      ? {
          statement_timeout: queryTimeoutMs,
          // A transaction left open by a client that vanished must not hold its locks.
          idle_in_transaction_session_timeout: queryTimeoutMs * 2,
          query_timeout: queryTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
        }
      : {}),
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

/**
 * The pool as Kysely sees it: a connection whose query timed out or whose link failed is destroyed
 * when released, never handed to the next request (pg would otherwise queue that request's
 * queries behind the hung one), and the ROLLBACK Kysely sends after such a failure is not sent to
 * it (it would wait out a second timeout and replace the real error).
 */
function boundedPostgresPool(pool: pg.Pool, queryTimeoutMs: number | undefined): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>()
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let broken = false
    const query = async (sqlText: string, parameters: ReadonlyArray<unknown>) => {
      if (broken && isRollback(sqlText)) return { command: 'ROLLBACK', rowCount: 0, rows: [] }
      try {
        return await client.query(sqlText, parameters as unknown[])
      } catch (error) {
        if ((error as Error).message === 'Query read timeout') {
          broken = true
          throw new DatabaseTimeoutError('query', queryTimeoutMs ?? 0)
        }
        if (isConnectionError(error)) broken = true
        throw error
      }
    }
    return {
      query: query as unknown as PostgresPoolClient['query'],
      release: (destroy?: boolean) => client.release(broken || destroy === true),
    }
  }
  return {
    async connect() {
      const client = await pool.connect()
      let wrapped = clients.get(client)
      if (!wrapped) clients.set(client, (wrapped = wrap(client)))
      return wrapped
    },
    end: () => pool.end(),
  }
}

// ---------------------------------------------------------------- MySQL / MariaDB

function createMysqlPoolFor(target: Extract<DatabaseTarget, { engine: 'mysql' }>, options: OpenOptions) {
  const url = new URL(target.url)
  url.protocol = 'mysql:'
  url.searchParams.delete('pool_size')
  const pool = drivers.mysql().createPool({
    uri: url.toString(),
    connectionLimit: target.poolSize,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    enableKeepAlive: true,
    keepAliveInitialDelay: KEEP_ALIVE_DELAY_MS,
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
  const queryTimeoutMs = options.queryTimeoutMs
  if (queryTimeoutMs) {
    // The server gives up on a statement (and a lock wait) by itself: max_statement_time on
    // MariaDB (seconds), max_execution_time on MySQL (milliseconds, SELECT only). Sent first on
    // each new connection, so it runs before any query of ours on it.
    const seconds = queryTimeoutMs / 1000
    pool.on('connection', (connection) => {
      connection.query(`SET SESSION max_statement_time = ${seconds}`, (error) => {
        if (error) connection.query(`SET SESSION max_execution_time = ${queryTimeoutMs}`, () => {})
      })
      connection.query(`SET SESSION innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(seconds))}`, () => {})
    })
  }
  return pool
}

/**
 * The pool as Kysely sees it: waiting for a connection is bounded (mysql2 bounds only opening
 * one), every query carries a client-side timeout, and a connection whose query timed out or
 * failed fatally is destroyed instead of returned to the pool.
 */
function boundedMysqlPool(pool: MysqlPool, options: OpenOptions): KyselyMysqlPool {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000
  const queryTimeoutMs = options.queryTimeoutMs
  const connections = new WeakMap<MysqlPoolConnectionRaw, MysqlPoolConnection>()
  const wrap = (connection: MysqlPoolConnectionRaw): MysqlPoolConnection => {
    let broken = false
    return {
      query: ((
        sqlText: string,
        parameters: unknown[],
        callback?: (error: unknown, result: unknown) => void,
      ) => {
        if (!callback) return connection.query(sqlText, parameters)
        if (broken && isRollback(sqlText)) return callback(null, { affectedRows: 0 })
        connection.query(
          { sql: sqlText, ...(queryTimeoutMs ? { timeout: queryTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS } : {}) },
          parameters as never,
          (error: (Error & { code?: string; fatal?: boolean }) | null, result: unknown) => {
            if (error?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
              broken = true
              return callback(new DatabaseTimeoutError('query', queryTimeoutMs ?? 0), result)
            }
            if (error?.fatal) broken = true
            callback(error, result)
          },
        )
      }) as MysqlPoolConnection['query'],
      release: () => (broken ? connection.destroy() : connection.release()),
    }
  }
  return {
    getConnection(callback) {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        callback(new DatabaseTimeoutError('connect', connectTimeoutMs), undefined as never)
      }, connectTimeoutMs)
      pool.getConnection((error, connection) => {
        if (settled) {
          // Came too late: the request has already been answered.
          connection?.release()
          return
        }
        settled = true
        clearTimeout(timer)
        if (error) return callback(error, undefined as never)
        let wrapped = connections.get(connection)
        if (!wrapped) connections.set(connection, (wrapped = wrap(connection)))
        callback(null, wrapped)
      })
    },
    end: (callback) => pool.end(callback),
  }
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

/** True when the error is a foreign-key violation (a row refers to one that is gone), on any engine. */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503' || code === 'ER_NO_REFERENCED_ROW_2'
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
 * Codes of a statement the database (or our client) gave up on for taking too long: PostgreSQL's
 * statement_timeout (57014 query_canceled) and lock_timeout (55P03), MariaDB's max_statement_time,
 * MySQL's max_execution_time, InnoDB's lock wait, mysql2's client-side query timeout.
 */
const TIMEOUT_ERROR_CODES = new Set([
  'DATABASE_TIMEOUT',
  '57014',
  '55P03',
  'ER_STATEMENT_TIMEOUT',
  'ER_QUERY_TIMEOUT',
  'ER_LOCK_WAIT_TIMEOUT',
  'PROTOCOL_SEQUENCE_TIMEOUT',
])

/** True when the error says a database call hit its time bound. */
export function isDatabaseTimeout(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && TIMEOUT_ERROR_CODES.has(code)
}

/**
 * True when the database cannot serve the request now (unreachable, too slow to answer, or unable
 * to store data): the client may retry, so the answer is 503 with Retry-After, never a 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return isConnectionError(error) || isDatabaseTimeout(error) || isStorageError(error)
}

/**
 * SQLite's answers when the file cannot take a write: a full disk (SQLITE_FULL), an I/O error
 * (SQLITE_IOERR and its extended codes, e.g. SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC), a read-only
 * file or folder (SQLITE_READONLY…), a file that cannot be opened (SQLITE_CANTOPEN…).
 */
const SQLITE_STORAGE_ERROR_CODE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN)(_|$)/

/**
 * The same of a database server: PostgreSQL's disk_full (53100), io_error (58030) and a read-only
 * transaction (25006: a replica, or `default_transaction_read_only`); MySQL/MariaDB's full disk or
 * table, and a server running with --read-only.
 */
const SERVER_STORAGE_ERROR_CODES = new Set([
  '53100',
  '58030',
  '25006',
  'ER_DISK_FULL',
  'ER_RECORD_FILE_FULL',
  'ER_OPTION_PREVENTS_STATEMENT',
  'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION',
])

/**
 * True when the database answers but cannot store data: a storage fault of the server's side,
 * which may pass (space freed, disk remounted, a primary back), never a fault of the request.
 */
export function isStorageError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return (
    typeof code === 'string' && (SQLITE_STORAGE_ERROR_CODE.test(code) || SERVER_STORAGE_ERROR_CODES.has(code))
  )
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
