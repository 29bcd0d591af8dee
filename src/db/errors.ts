/**
 * What a database error means, on any engine: the codes of SQLite, PostgreSQL and MySQL/MariaDB
 * (and of their drivers) sorted into the few kinds the rest of the application acts on.
 */

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

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code

/** True when the error is a foreign-key violation (a row refers to one that is gone), on any engine. */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = codeOf(error)
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503' || code === 'ER_NO_REFERENCED_ROW_2'
}

/** True when the error is a unique-constraint violation, on any engine. */
export function isUniqueViolation(error: unknown): boolean {
  const code = codeOf(error)
  return (
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === '23505' ||
    code === 'ER_DUP_ENTRY'
  )
}

/**
 * True when the database ended the transaction to break a deadlock (PostgreSQL 40P01, InnoDB
 * ER_LOCK_DEADLOCK): the whole transaction was rolled back, and running it again may succeed.
 */
export function isDeadlock(error: unknown): boolean {
  const code = codeOf(error)
  return code === '40P01' || code === 'ER_LOCK_DEADLOCK'
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
  const code = codeOf(error)
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
  const code = codeOf(error)
  return (
    typeof code === 'string' && (SQLITE_STORAGE_ERROR_CODE.test(code) || SERVER_STORAGE_ERROR_CODES.has(code))
  )
}

/** True when the error says the database cannot be reached (as opposed to a bad query). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = codeOf(error)
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true
  // pg reports a connection lost mid-query, or a pool timeout, without a code.
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(
    error.message,
  )
}
