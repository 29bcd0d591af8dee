import { ConfigError } from '../config.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { DatabaseUrlError, describeTarget, type DatabaseTarget } from '../db/target.js'
import { explainConnectionFailure } from '../dependencies/monitor.js'
import { MigrationError } from '../db/migrator.js'

/**
 * Turns the errors a person can meet while starting (bad config, unreachable database, port in
 * use) into one line that says what is wrong and what to do. Anything else is a bug: undefined.
 */
export function describeStartupError(
  error: unknown,
  context: { target?: DatabaseTarget; host?: string; port?: number },
): string | undefined {
  if (error instanceof ConfigError || error instanceof DatabaseUrlError) return error.message
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (code === 'EADDRINUSE')
    return `PORT: ${context.host}:${context.port} is already in use; stop the other process or choose another PORT`
  if (code === 'EADDRNOTAVAIL' || code === 'EACCES')
    return `HOST/PORT: cannot listen on ${context.host}:${context.port} (${code}); check HOST and PORT`
  // The folder of a SQLite file could not be created (a path through a file, no permission, …).
  const fsPath = (error as NodeJS.ErrnoException | null)?.path
  if (context.target?.engine === 'sqlite' && code && typeof fsPath === 'string')
    return `DATABASE_URL: cannot create ${describeTarget(context.target)} (${code} on ${fsPath}); check the path and its permissions`
  const cause = error instanceof MigrationError ? error.cause : error
  const where = context.target ? describeTarget(context.target) : 'the database'
  if (isDatabaseUnavailable(cause))
    return `DATABASE_URL: cannot reach ${where} (${explainConnectionFailure(cause)}); check that it is running and that DATABASE_URL is right`
  const dbCode = (cause as { code?: string } | null)?.code
  if (dbCode === '28P01' || dbCode === '28000' || dbCode === 'ER_ACCESS_DENIED_ERROR')
    return `DATABASE_URL: ${where} refused the user name or password; check the credentials in DATABASE_URL`
  if (dbCode === '3D000' || dbCode === 'ER_BAD_DB_ERROR')
    return `DATABASE_URL: ${where} does not exist; create it first (${creationHint(context.target)})`
  if (error instanceof MigrationError) return `database: ${error.message}`
  return undefined
}

/** How to make a missing database, with the tool of its engine. */
function creationHint(target: DatabaseTarget | undefined): string {
  if (target?.engine === 'postgres')
    return `e.g. createdb ${target.database}, or CREATE DATABASE "${target.database}"`
  if (target?.engine === 'mysql')
    return `e.g. mysql -e 'CREATE DATABASE \`${target.database}\` CHARACTER SET utf8mb4'`
  return 'CREATE DATABASE'
}
