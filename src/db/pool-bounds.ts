/**
 * What bounds every call to a database server (PostgreSQL, MySQL/MariaDB): the options a pool is
 * opened with, and the rules both pools follow.
 */
import type { DatabaseOptions } from '../config.js'

/** Told about connections that fail while idle in a pool (they are replaced on the next query). */
export type PoolErrorListener = (error: Error) => void

/** Without `queryTimeoutMs` a query may run as long as it needs (the CLI's migrations and seeding). */
export interface PoolOptions extends Partial<Pick<DatabaseOptions, 'queryTimeoutMs' | 'connectTimeoutMs'>> {
  onPoolError?: PoolErrorListener
}

/** How long opening a connection, or waiting for a free one, may take when nothing else is said. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000

/** TCP keep-alive on every connection: a peer that vanished is noticed while the connection idles. */
export const KEEP_ALIVE_DELAY_MS = 10_000

/**
 * The client-side bound is a little later than the server-side one (statement_timeout,
 * max_statement_time): a database that is alive cancels a slow statement itself and keeps the
 * connection; only a database (or a link) that says nothing makes the client give up on it.
 */
export const CLIENT_TIMEOUT_MARGIN_MS = 1_000

/** ROLLBACK after a failure on a connection already given up: the database aborts it when it closes. */
export const isRollback = (sqlText: string) => /^\s*rollback\s*$/i.test(sqlText)
