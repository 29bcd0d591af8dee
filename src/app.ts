import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import { limitHashing } from './auth/passwords.js'
import type { Config } from './config.js'
import { openDatabase, type DatabaseHandle } from './db/open.js'
import { parseDatabaseUrl } from './db/target.js'
import { authenticated } from './http/authenticated.js'
import { declareBodyRefusals, declareValidationRefusal, requireDecimalIntegers } from './http/contract.js'
import { handleError } from './http/error-handler.js'
import { logAbortedRequest } from './http/logging.js'
import { answerUnrouted, refuseWhatNodeWouldRefuse, unmetExpectations } from './http/refusals.js'
import { serverOptions, type ServerOptionsInput } from './http/server-options.js'
import accountsPlugin from './plugins/app/accounts.js'
import authPlugin from './plugins/app/auth.js'
import dbPlugin from './plugins/app/db.js'
import metricsPlugin from './plugins/app/metrics.js'
import productsPlugin from './plugins/app/products.js'
import externalLoginsPlugin from './plugins/app/external-logins.js'
import firstAdminPlugin from './plugins/app/first-admin.js'
import lifecyclePlugin from './plugins/app/lifecycle.js'
import mailerPlugin from './plugins/app/mailer.js'
import rateLimitPlugin from './plugins/app/rate-limit.js'
import redisPlugin from './plugins/app/redis.js'
import revocationsPlugin from './plugins/app/revocations.js'
import secondFactorsPlugin from './plugins/app/second-factors.js'
import securityEventsPlugin from './plugins/app/security-events.js'
import sessionsPlugin from './plugins/app/sessions.js'
import corsPlugin from './plugins/external/cors.js'
import helmetPlugin from './plugins/external/helmet.js'
import swaggerPlugin from './plugins/external/swagger.js'
import accountPageRoutes from './routes/account/account-page.js'
import changePasswordRoutes from './routes/account/change-password.js'
import recoveryRoutes from './routes/account/recovery.js'
import verificationRoutes from './routes/account/verification.js'
import auditRoutes from './routes/audit/index.js'
import authRoutes from './routes/auth/index.js'
import docsRoutes from './routes/docs/index.js'
import externalLoginRoutes from './routes/external-logins/index.js'
import healthRoutes from './routes/health/index.js'
import homeRoutes from './routes/home/index.js'
import identityRoutes from './routes/identities/index.js'
import keyRoutes from './routes/keys/index.js'
import mfaRoutes from './routes/mfa/index.js'
import metricsRoutes from './routes/metrics/index.js'
import passkeyRoutes from './routes/passkeys/index.js'
import productsRoutes from './routes/products/index.js'
import sessionsRoutes from './routes/sessions/index.js'
import usersRoutes from './routes/users/index.js'
import { Problem } from './schemas/problem.js'
import { systemClock, type Clock } from './services/clock.js'

/** Named schemas: shared by validation, serialization and the OpenAPI components. */
const SHARED_SCHEMAS = [Problem]

export interface BuildOptions extends ServerOptionsInput {
  /** An already opened database (the caller then owns it); by default config.databaseUrl is opened. */
  database?: DatabaseHandle
  /** Apply pending migrations at start (default true). */
  migrate?: boolean
  /** The time every rule reads (default: the system clock); tests move a clock of their own. */
  clock?: Clock
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The time every rule reads (services/clock.ts). */
    clock: Clock
  }
}

/** The application: the same function builds it for the server, the CLI and the tests. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  // For the whole process, as libuv's thread pool the hashes run on is.
  limitHashing(config.passwordHashingConcurrency)
  const app = Fastify(serverOptions(config, options)).withTypeProvider<TypeBoxTypeProvider>()
  const database =
    options.database ??
    openDatabase(parseDatabaseUrl(config.databaseUrl), {
      ...config.database,
      // An idle connection that fails is replaced on the next query; during an outage every one
      // of them fails, which the database monitor says once.
      onPoolError: (error) => app.dbMonitor?.failed(error),
    })

  try {
    await assemble(app, config, options, database)
  } catch (error) {
    // A start that failed halfway (a plugin refusing the configuration, a database that does not
    // answer) leaves nothing open behind it: the process, or a test, can then end.
    await app.close().catch(() => undefined)
    if (options.database === undefined) await database.db.destroy().catch(() => undefined)
    throw error
  }
  return app
}

/** Everything the application is made of, registered in tiers. */
async function assemble(
  app: FastifyInstance,
  config: Config,
  options: BuildOptions,
  database: DatabaseHandle,
): Promise<void> {
  app.decorate('clock', options.clock ?? systemClock)
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema)
  // JSON bodies only (and the OAuth2 form on /login): a text/plain body is a 415, not a guess.
  app.removeContentTypeParser('text/plain')
  app.addHook('onRoute', requireDecimalIntegers)
  app.addHook('onRoute', declareBodyRefusals)
  app.addHook('onRoute', declareValidationRefusal)
  app.setErrorHandler(handleError)
  app.setNotFoundHandler(answerUnrouted(app))
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onRequestAbort', logAbortedRequest)

  // Tier 1: third-party plugins. Tier 2: our services. Tier 3: routes.
  await app.register(helmetPlugin, { config })
  // After helmet's hook, so that these refusals carry its headers like every other answer.
  app.server.on('checkExpectation', (request, response) => {
    unmetExpectations.add(request)
    app.routing(request, response)
  })
  app.addHook('onRequest', refuseWhatNodeWouldRefuse)
  await app.register(corsPlugin, { config })
  // Before anything that does work for a request: a late one is refused first (shutdown).
  await app.register(lifecyclePlugin)
  await app.register(swaggerPlugin, { config })
  await app.register(metricsPlugin, { database })
  await app.register(dbPlugin, {
    database,
    migrate: options.migrate ?? true,
    closeOnShutdown: options.database === undefined,
  })
  await app.register(securityEventsPlugin)
  await app.register(redisPlugin, { config })
  await app.register(rateLimitPlugin, { config })
  await app.register(revocationsPlugin, { config })
  await app.register(authPlugin, { config })
  await app.register(sessionsPlugin, { config })
  await app.register(mailerPlugin, { config })
  await app.register(secondFactorsPlugin, { config })
  await app.register(externalLoginsPlugin, { config })
  await app.register(accountsPlugin, { config })
  await app.register(firstAdminPlugin, { config })
  await app.register(productsPlugin, { config })

  await registerRoutes(app, config)
}

/** Tier 3: the routes, over the services the plugins above decorated the app with. */
async function registerRoutes(app: FastifyInstance, config: Config) {
  await app.register(homeRoutes)
  await app.register(healthRoutes, { config })
  await app.register(metricsRoutes, { config })
  await app.register(docsRoutes, { config })
  await app.register(authRoutes, { config })
  await app.register(keyRoutes, { config })
  await app.register(mfaRoutes, { config })
  await app.register(passkeyRoutes, { config })
  await app.register(externalLoginRoutes, { config })
  await app.register(authenticated(identityRoutes))
  await app.register(authenticated(sessionsRoutes))
  await app.register(changePasswordRoutes, { config })
  await app.register(recoveryRoutes, { config })
  await app.register(verificationRoutes)
  await app.register(accountPageRoutes)
  await app.register(usersRoutes, { config })
  await app.register(auditRoutes, { config })
  await app.register(authenticated(productsRoutes))
}
