import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import type { Database } from '../../db/database.js'
import type { DatabaseHandle, Engine } from '../../db/dialect.js'
import { migrateToLatest } from '../../db/migrator.js'
import {
  createAccountTokensRepository,
  type AccountTokensRepository,
} from '../../repositories/account-tokens.js'
import { createAuditEventsRepository, type AuditEventsRepository } from '../../repositories/audit-events.js'
import {
  createIdempotencyKeysRepository,
  type IdempotencyKeysRepository,
} from '../../repositories/idempotency-keys.js'
import { createProductsRepository, type ProductsRepository } from '../../repositories/products.js'
import {
  createReadinessProbeRepository,
  type ReadinessProbeRepository,
} from '../../repositories/readiness-probe.js'
import { createSessionsRepository, type SessionsRepository } from '../../repositories/sessions.js'
import { createUsersRepository, type UsersRepository } from '../../repositories/users.js'

export interface Repositories {
  users: UsersRepository
  products: ProductsRepository
  sessions: SessionsRepository
  idempotencyKeys: IdempotencyKeysRepository
  accountTokens: AccountTokensRepository
  auditEvents: AuditEventsRepository
  readinessProbe: ReadinessProbeRepository
  /**
   * Runs `effect` once the surrounding transaction has committed, and not at all if it rolls
   * back; outside a transaction, at once. For effects beyond the database (the shared revocation
   * set, mail) that must not happen for a change that did not.
   */
  afterCommit(effect: () => Promise<void>): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    dbEngine: Engine
    repos: Repositories
    /** Runs `work` in one transaction, with repositories bound to it. */
    transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  }
}

export interface DbPluginOptions {
  database: DatabaseHandle
  /** Apply pending migrations while the app starts (the default). */
  migrate: boolean
  /** Destroy the connection pool when the app closes (false when the caller owns it). */
  closeOnShutdown: boolean
}

function repositoriesFor(
  db: Kysely<Database>,
  engine: Engine,
  afterCommit: Repositories['afterCommit'],
): Repositories {
  return {
    afterCommit,
    users: createUsersRepository(db, engine),
    products: createProductsRepository(db, engine),
    sessions: createSessionsRepository(db),
    idempotencyKeys: createIdempotencyKeysRepository(db),
    accountTokens: createAccountTokensRepository(db),
    auditEvents: createAuditEventsRepository(db),
    readinessProbe: createReadinessProbeRepository(db),
  }
}

export default fp<DbPluginOptions>(
  async (app, { database, migrate, closeOnShutdown }) => {
    const { db, engine } = database
    if (migrate) await migrateToLatest(db)
    app.decorate('db', db)
    app.decorate('dbEngine', engine)
    app.decorate(
      'repos',
      repositoriesFor(db, engine, (effect) => effect()),
    )
    app.decorate('transaction', async <T>(work: (repos: Repositories) => Promise<T>) => {
      const effects: (() => Promise<void>)[] = []
      const result = await db.transaction().execute((trx) =>
        work(
          repositoriesFor(trx, engine, async (effect) => {
            effects.push(effect)
          }),
        ),
      )
      for (const effect of effects) await effect()
      return result
    })
    if (closeOnShutdown) app.addHook('onClose', async () => db.destroy())
  },
  { name: 'db' },
)
