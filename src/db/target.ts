/** Which database DATABASE_URL names: its engine, and where it is. */

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
