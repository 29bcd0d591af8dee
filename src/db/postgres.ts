/**
 * PostgreSQL through pg: a pool whose every call is bounded (pool-bounds.ts), and whose broken
 * connections are never handed to the next request.
 */
import { PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely'
import type pg from 'pg'
import { drivers } from './drivers.js'
import { DatabaseTimeoutError, isConnectionError } from './errors.js'
import {
  CLIENT_TIMEOUT_MARGIN_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  isRollback,
  KEEP_ALIVE_DELAY_MS,
  type PoolOptions,
} from './pool-bounds.js'
import type { DatabaseTarget } from './target.js'

type PostgresTarget = Extract<DatabaseTarget, { engine: 'postgres' }>

/** Kysely's dialect over a new pool, and the pool itself (the metrics read it). */
export function postgresDialect(target: PostgresTarget, options: PoolOptions) {
  const pool = createPostgresPool(target, options)
  return { dialect: new PostgresDialect({ pool: boundedPostgresPool(pool, options.queryTimeoutMs) }), pool }
}

function createPostgresPool(target: PostgresTarget, options: PoolOptions) {
  const pg = drivers.postgres()
  const url = new URL(target.url)
  url.searchParams.delete('pool_size')
  const onPoolError = options.onPoolError ?? (() => {})
  const queryTimeoutMs = options.queryTimeoutMs
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: target.poolSize,
    // Bounds both opening a connection and waiting for a free one in the pool.
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
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
  return {
    async connect() {
      const client = await pool.connect()
      let wrapped = clients.get(client)
      if (!wrapped) clients.set(client, (wrapped = boundedClient(client, queryTimeoutMs)))
      return wrapped
    },
    end: () => pool.end(),
  }
}

function boundedClient(client: pg.PoolClient, queryTimeoutMs: number | undefined): PostgresPoolClient {
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
