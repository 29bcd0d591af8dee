/**
 * MySQL and MariaDB through mysql2: a pool whose every call is bounded (pool-bounds.ts), whose
 * broken connections are never handed to the next request, and whose values read as on the other
 * engines (UTC dates, booleans).
 */
import { MysqlDialect, type MysqlPool as KyselyMysqlPool, type MysqlPoolConnection } from 'kysely'
import type { Pool as MysqlPool, PoolConnection, TypeCastField, TypeCastNext } from 'mysql2'
import { drivers } from './drivers.js'
import { DatabaseTimeoutError } from './errors.js'
import {
  CLIENT_TIMEOUT_MARGIN_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  isRollback,
  KEEP_ALIVE_DELAY_MS,
  type PoolOptions,
} from './pool-bounds.js'
import type { DatabaseTarget } from './target.js'

type MysqlTarget = Extract<DatabaseTarget, { engine: 'mysql' }>

/** Kysely's dialect over a new pool, and the pool itself (the metrics read it). */
export function mysqlDialect(target: MysqlTarget, options: PoolOptions) {
  const pool = createMysqlPool(target, options)
  return { dialect: new MysqlDialect({ pool: boundedMysqlPool(pool, options) }), pool }
}

function createMysqlPool(target: MysqlTarget, options: PoolOptions) {
  const url = new URL(target.url)
  url.protocol = 'mysql:'
  url.searchParams.delete('pool_size')
  const pool = drivers.mysql().createPool({
    uri: url.toString(),
    connectionLimit: target.poolSize,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
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
  if (options.queryTimeoutMs) boundStatementsOnServer(pool, options.queryTimeoutMs)
  return pool
}

/**
 * The server gives up on a statement (and a lock wait) by itself: max_statement_time on MariaDB
 * (seconds), max_execution_time on MySQL (milliseconds, SELECT only). Sent first on each new
 * connection, so it runs before any query of ours on it.
 */
function boundStatementsOnServer(pool: MysqlPool, queryTimeoutMs: number) {
  const seconds = queryTimeoutMs / 1000
  pool.on('connection', (connection) => {
    connection.query(`SET SESSION max_statement_time = ${seconds}`, (error) => {
      if (error) connection.query(`SET SESSION max_execution_time = ${queryTimeoutMs}`, () => {})
    })
    connection.query(`SET SESSION innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(seconds))}`, () => {})
  })
}

/**
 * The pool as Kysely sees it: waiting for a connection is bounded (mysql2 bounds only opening
 * one), every query carries a client-side timeout, and a connection whose query timed out or
 * failed fatally is destroyed instead of returned to the pool.
 */
function boundedMysqlPool(pool: MysqlPool, options: PoolOptions): KyselyMysqlPool {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const connections = new WeakMap<PoolConnection, MysqlPoolConnection>()
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
        if (!wrapped)
          connections.set(connection, (wrapped = boundedConnection(connection, options.queryTimeoutMs)))
        callback(null, wrapped)
      })
    },
    end: (callback) => pool.end(callback),
  }
}

function boundedConnection(
  connection: PoolConnection,
  queryTimeoutMs: number | undefined,
): MysqlPoolConnection {
  let broken = false
  const query = (
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
  }
  return {
    query: query as MysqlPoolConnection['query'],
    release: () => (broken ? connection.destroy() : connection.release()),
  }
}
