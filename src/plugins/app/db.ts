import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { Database } from '../../db/database.js'
import { migrateToLatest } from '../../db/migrator.js'
import { openDatabase, type DatabaseHandle } from '../../db/open.js'
import { createDependencyMonitor, type DependencyMonitor } from '../../dependencies/monitor.js'
import { createRepositories, runInTransaction, type Repositories } from '../../repositories/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    repos: Repositories
    /** Runs `work` in one transaction, with repositories bound to it. */
    transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
    /** Whether the database answers: told of every call that failed for want of it. */
    dbMonitor: DependencyMonitor
  }
}

export interface DbPluginOptions {
  database: DatabaseHandle
  /** Apply pending migrations while the app starts (the default). */
  migrate: boolean
  /** Destroy the connection pool when the app closes (false when the caller owns it). */
  closeOnShutdown: boolean
}

export default fp<DbPluginOptions>(
  async (app, { database, migrate, closeOnShutdown }) => {
    const { db, engine } = database
    if (migrate) await migrateWithoutQueryBound(database)
    const monitor = createDependencyMonitor({
      name: 'database',
      log: app.log,
      // A commit, not a read: a full disk or a read-only server still answers reads.
      probe: () => app.repos.readinessProbe.write(new Date()),
      meanwhile: 'requests that need it answer 503 with Retry-After',
      onFailure: () => app.metrics.dependencyFailure('database'),
      onChange: (available) => app.metrics.dependencyAvailable('database', available),
    })
    app.metrics.dependencyAvailable('database', true)
    app.decorate('dbMonitor', monitor)
    app.addHook('onClose', async () => monitor.close())
    app.decorate('db', db)
    app.decorate(
      'repos',
      createRepositories(db, engine, (effect) => effect()),
    )
    app.decorate('transaction', <T>(work: (repos: Repositories) => Promise<T>) =>
      runInTransaction(db, engine, work),
    )
    if (closeOnShutdown) app.addHook('onClose', async () => db.destroy())
  },
  { name: 'db', dependencies: ['metrics'] },
)

/**
 * Migrations may rewrite large tables: on PostgreSQL and MySQL they run on a connection of their
 * own without the per-query bound that protects requests (DATABASE_QUERY_TIMEOUT_MS).
 */
async function migrateWithoutQueryBound(database: DatabaseHandle) {
  if (database.engine === 'sqlite') {
    await migrateToLatest(database.db)
    return
  }
  const unbounded = openDatabase(database.target)
  try {
    await migrateToLatest(unbounded.db)
  } finally {
    await unbounded.db.destroy()
  }
}
