import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import Fastify, {
  type FastifyError,
  type FastifyHttpOptions,
  type FastifyInstance,
  type FastifyServerOptions,
  type onRequestHookHandler,
  type preValidationHookHandler,
  type RouteOptions,
} from 'fastify'
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js'
import type { Config } from './config.js'
import { isDatabaseTimeout, isDatabaseUnavailable, isStorageError } from './db/errors.js'
import { openDatabase, type DatabaseHandle } from './db/open.js'
import { parseDatabaseUrl } from './db/target.js'
import { HttpProblem, problemBody, unprocessable, validationIssues } from './errors.js'
import { createLogger, requestId } from './logging.js'
import authPlugin from './plugins/app/auth.js'
import dbPlugin from './plugins/app/db.js'
import metricsPlugin from './plugins/app/metrics.js'
import firstAdminPlugin from './plugins/app/first-admin.js'
import lifecyclePlugin from './plugins/app/lifecycle.js'
import mailerPlugin from './plugins/app/mailer.js'
import rateLimitPlugin from './plugins/app/rate-limit.js'
import redisPlugin from './plugins/app/redis.js'
import revocationsPlugin from './plugins/app/revocations.js'
import securityEventsPlugin from './plugins/app/security-events.js'
import sessionsPlugin from './plugins/app/sessions.js'
import corsPlugin from './plugins/external/cors.js'
import helmetPlugin, { securityHeaders } from './plugins/external/helmet.js'
import swaggerPlugin from './plugins/external/swagger.js'
import changePasswordRoutes from './routes/account/change-password.js'
import recoveryRoutes from './routes/account/recovery.js'
import verificationRoutes from './routes/account/verification.js'
import auditRoutes from './routes/audit/index.js'
import authRoutes from './routes/auth/index.js'
import docsRoutes from './routes/docs/index.js'
import healthRoutes from './routes/health/index.js'
import metricsRoutes from './routes/metrics/index.js'
import productsRoutes from './routes/products/index.js'
import sessionsRoutes from './routes/sessions/index.js'
import usersRoutes from './routes/users/index.js'
import { Problem, problemResponses } from './schemas/problem.js'

/** Named schemas: shared by validation, serialization and the OpenAPI components. */
const SHARED_SCHEMAS = [Problem]

export interface BuildOptions {
  /** pino options, or false for no log (the default follows config.logLevel). */
  logger?: FastifyServerOptions['logger']
  /** An already opened database (the caller then owns it); by default config.databaseUrl is opened. */
  database?: DatabaseHandle
  /** Apply pending migrations at start (default true). */
  migrate?: boolean
}

/**
 * Request bodies are validated strictly: nothing is coerced and unknown fields are an error,
 * never silently dropped. Path and query parameters arrive as text, so they are coerced.
 */
function createValidators(externalSchemas: Record<string, unknown>) {
  // verbose: errors carry their schema, so a failed pattern can be explained by its description.
  const common: AjvOptions = {
    allErrors: true,
    verbose: true,
    strict: false,
    removeAdditional: false,
    useDefaults: true,
  }
  const body = new Ajv({ ...common, coerceTypes: false })
  const params = new Ajv({ ...common, coerceTypes: 'array' })
  for (const ajv of [body, params]) {
    addFormats.default(ajv, ['email', 'date-time', 'uri', 'uuid'])
    for (const schema of Object.values(externalSchemas)) ajv.addSchema(schema as object)
  }
  return { body, params }
}

export function serverOptions(config: Config, options: BuildOptions = {}): FastifyHttpOptions<Server> {
  // Fastify asks for a validator compiler in every plugin context that declares routes; two Ajv
  // instances cost ~10 ms to create, a dozen times over at start (docs/performance.md). Contexts
  // with the same shared schemas share one pair.
  const validatorsBySchemas = new Map<string, ReturnType<typeof createValidators>>()
  const refusalHeaders = headersOfRefusals(config)
  return {
    loggerInstance: createLogger(config.logLevel, options.logger),
    bodyLimit: config.bodyLimitBytes,
    // Finite timeouts: a client that sends slowly (or not at all) is cut off, never held forever.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: 2 * config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // A request that arrives while the server closes is refused by the lifecycle plugin, through
    // the error handler (problem+json, Retry-After); Fastify's own refusal is plain JSON.
    return503OnClosing: false,
    http: {
      headersTimeout: Math.min(config.requestTimeoutMs, 10_000),
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.min(1_000, config.requestTimeoutMs),
      // Node would answer a missing Host itself, bare: refuseWhatNodeWouldRefuse answers it.
      requireHostHeader: false,
    },
    // Kept at Fastify's default, stated here because it matters: a body with a `__proto__` or
    // `constructor.prototype` key is a 400, never parsed.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A hop count is given to Fastify as a function: trust that many proxies nearest to us.
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (_address: string, hop: number) => hop < (config.trustProxy as number)
        : config.trustProxy,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 100 },
    // A sane incoming X-Request-Id is kept (see logging.ts), else a UUID; it is on every log line.
    genReqId: requestId,
    // The router's own refusals (a badly percent-encoded path, an over-long path parameter) are
    // answered before any route, hook or error handler runs: without this they would be plain JSON.
    frameworkErrors: (error, request, reply) => answerFrameworkError(error, request, reply, refusalHeaders),
    // Requests Node's HTTP parser refuses (headers or URL too large, malformed, too slow).
    clientErrorHandler: (error, socket) => answerClientError(error, socket, refusalHeaders),
    schemaController: {
      compilersFactory: {
        buildValidator: ((externalSchemas: Record<string, unknown>) => {
          const key = JSON.stringify(externalSchemas)
          let validators = validatorsBySchemas.get(key)
          if (!validators) {
            validators = createValidators(externalSchemas)
            validatorsBySchemas.set(key, validators)
          }
          return ({ schema, httpPart }: FastifyRouteSchemaDef<unknown>) => {
            const ajv = httpPart === 'body' ? validators.body : validators.params
            // A named schema is compiled once, when it is added; routes reuse that validator.
            const id = (schema as { $id?: string }).$id
            return (id && ajv.getSchema(id)) || ajv.compile(schema as object)
          }
        }) as unknown as NonNullable<
          NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
        >['buildValidator'],
      },
    },
  }
}

/** The application: the same function builds it for the server, the CLI and the tests. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config, options)).withTypeProvider<TypeBoxTypeProvider>()
  const database =
    options.database ??
    openDatabase(parseDatabaseUrl(config.databaseUrl), {
      ...config.database,
      // An idle connection that fails is replaced on the next query; during an outage every one
      // of them fails, which the database monitor says once.
      onPoolError: (error) => app.dbMonitor?.failed(error),
    })

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema)
  // JSON bodies only (and the OAuth2 form on /login): a text/plain body is a 415, not a guess.
  app.removeContentTypeParser('text/plain')
  app.addHook('onRoute', requireDecimalIntegers)
  app.addHook('onRoute', declareBodyRefusals)
  app.setErrorHandler(handleError)
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!
    const method = request.method as (typeof ROUTABLE_METHODS)[number]
    // A path served for other methods is a 405 naming them; an unknown path a 404.
    const allowed = ROUTABLE_METHODS.filter((method) => app.findRoute({ method, url: path }) !== null)
    if (allowed.length > 0 && !allowed.includes(method))
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .type('application/problem+json')
        .send(problemBody(405, `${request.method} is not allowed on ${path}; use ${allowed.join(', ')}.`))
    return reply
      .code(404)
      .type('application/problem+json')
      .send(problemBody(404, `There is no route ${request.method} ${path}.`))
  })
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

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
  await app.register(firstAdminPlugin, { config })

  await app.register(healthRoutes, { config })
  await app.register(metricsRoutes, { config })
  await app.register(docsRoutes, { config })
  await app.register(authRoutes, { config })
  await app.register(sessionsRoutes)
  await app.register(changePasswordRoutes, { config })
  await app.register(recoveryRoutes, { config })
  await app.register(verificationRoutes)
  await app.register(usersRoutes, { config })
  await app.register(auditRoutes, { config })
  await app.register(productsRoutes, { config })
  return app
}

/** The methods a 405 may name in its Allow header (OPTIONS is only answered as a CORS preflight). */
const ROUTABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * A route that can be sent a body can be refused before its handler runs: 400 (the body is not
 * valid JSON or form data), 413 (larger than BODY_LIMIT_BYTES), 415 (a media type it does not
 * take). Each such route declares them, so that the document lists every status it can answer.
 */
function declareBodyRefusals(route: RouteOptions) {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response
  if (!response || !methods.some((method) => BODY_METHODS.has(method))) return
  for (const [status, entry] of Object.entries(problemResponses(400, 413, 415)))
    if (!(status in response)) response[status] = entry
}

const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/

/**
 * Ajv's coercion turns "0x10", "1e3", " 5" or "1.0" into numbers, so that one resource would
 * answer at many URLs. Integer path and query parameters must be written in plain decimal.
 */
function requireDecimalIntegers(route: RouteOptions) {
  const parts = [
    ['path', 'params', route.schema?.params],
    ['query', 'query', route.schema?.querystring],
  ] as const
  const checks = parts.flatMap(([where, key, schema]) =>
    Object.entries(
      (schema as { properties?: Record<string, { type?: string }> } | undefined)?.properties ?? {},
    )
      .filter(([, property]) => property.type === 'integer')
      .map(([field]) => ({ where, key, field })),
  )
  if (checks.length === 0) return
  const check: preValidationHookHandler = async (request) => {
    const issues = checks
      .filter(({ key, field }) => {
        const raw = (request[key] as Record<string, unknown> | undefined)?.[field]
        return typeof raw === 'string' && !DECIMAL_INTEGER.test(raw)
      })
      .map(({ where, field }) => ({ in: where, field, message: 'must be a whole number in decimal digits' }))
    if (issues.length > 0) throw unprocessable('The request is not valid: see errors.', issues)
  }
  route.preValidation = [
    ...(Array.isArray(route.preValidation)
      ? route.preValidation
      : route.preValidation
        ? [route.preValidation]
        : []),
    check,
  ]
}

const FRAMEWORK_ERROR_DETAILS: Record<string, string> = {
  FST_ERR_BAD_URL: 'The path is not valid: a part of it is not correctly percent-encoded.',
  FST_ERR_MAX_PARAM_LENGTH: 'A part of the path is too long.',
}

/**
 * The headers of a refusal no hook sees (helmet's hook sets them on every other answer): the same
 * security headers, from the same options, and no caching.
 */
function headersOfRefusals(config: Config): [name: string, value: string][] {
  return [...securityHeaders(config), ['Cache-Control', 'no-store']]
}

/** Errors Fastify meets while routing, before the hooks or the error handler can see them. */
function answerFrameworkError(
  error: FastifyError,
  request: Parameters<FastifyInstance['errorHandler']>[1],
  reply: Parameters<FastifyInstance['errorHandler']>[2],
  headers: [name: string, value: string][],
) {
  const detail = FRAMEWORK_ERROR_DETAILS[error.code]
  const status = detail && error.statusCode ? error.statusCode : 500
  if (status >= 500) request.log.error({ err: error }, 'request failed')
  else request.log.info({ status, code: error.code }, 'request rejected')
  for (const [name, value] of headers) reply.header(name, value)
  return reply
    .header('x-request-id', request.id)
    .code(status)
    .type('application/problem+json')
    .send(problemBody(status, detail ?? 'Something went wrong on our side; it has been logged.'))
}

const CLIENT_ERROR_DETAILS: Record<number, string> = {
  400: 'The request is not valid HTTP.',
  408: 'The request took too long to arrive.',
  431: 'The request headers (with the URL) are too large.',
}

/**
 * As Fastify's default, but the body is problem+json and the headers are those of every other
 * answer: there is no request yet, so no hook runs.
 */
function answerClientError(
  error: Error & { code?: string },
  socket: Socket,
  headers: [name: string, value: string][],
) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const status =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
  const body = JSON.stringify(problemBody(status, CLIENT_ERROR_DETAILS[status]!))
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        headers.map(([name, value]) => `${name}: ${value}\r\n`).join('') +
        `Content-Type: application/problem+json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  socket.destroy(error)
}

/** Requests whose Expect header Node cannot meet (anything but 100-continue). */
const unmetExpectations = new WeakSet<IncomingMessage>()

/**
 * What Node answers by itself, with a bare, empty response, unless told otherwise: an HTTP/1.1
 * request without Host (RFC 9112 §3.2 requires a 400) and an expectation it cannot meet (417).
 * Node is told to hand both over, so that they are answered here like every other refusal.
 */
const refuseWhatNodeWouldRefuse: onRequestHookHandler = (request, _reply, done) => {
  // A callback, not an async function: this runs on every request.
  if (request.raw.httpVersion === '1.1' && request.headers.host === undefined)
    done(new HttpProblem(400, 'An HTTP/1.1 request needs a Host header.'))
  else if (unmetExpectations.has(request.raw))
    done(
      new HttpProblem(
        417,
        'The Expect header asks for something this server does not do (only 100-continue).',
      ),
    )
  else done()
}

/** Every error becomes application/problem+json; a 5xx never shows its cause to the client. */
function handleError(
  this: FastifyInstance,
  error: FastifyError | HttpProblem,
  request: Parameters<FastifyInstance['errorHandler']>[1],
  reply: Parameters<FastifyInstance['errorHandler']>[2],
) {
  let status: number
  let body
  if (error instanceof HttpProblem) {
    status = error.status
    body = error.toBody()
    for (const [name, value] of Object.entries(error.options.headers ?? {})) reply.header(name, value)
  } else if (error.validation) {
    status = 422
    body = problemBody(422, 'The request is not valid: see errors.', validationIssues(error))
  } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large): safe to show.
    status = error.statusCode
    body = problemBody(status, error.message)
  } else if (isDatabaseUnavailable(error)) {
    status = 503
    body = problemBody(
      503,
      isStorageError(error)
        ? // A full disk, an I/O error, a read-only file or server: the change was refused and
          // rolled back; the same request may succeed once the storage takes writes again.
          'The database cannot store data right now; try again shortly.'
        : isDatabaseTimeout(error)
          ? 'The database did not answer in time; try again shortly.'
          : 'The database does not answer; try again shortly.',
    )
    reply.header('retry-after', '5')
    // Said once per outage by the monitor, not once per request (with a stack trace each).
    this.dbMonitor.failed(error)
    request.log.debug({ err: error }, 'request failed: the database is unavailable')
    return reply.code(status).type('application/problem+json').send(body)
  } else {
    status = 500
    body = problemBody(500, 'Something went wrong on our side; it has been logged.')
  }
  // A 5xx we chose to answer (not ready, shutting down) is an answer, not a failure: only an
  // unexpected error is logged as one, with its stack.
  if (status >= 500 && !(error instanceof HttpProblem)) request.log.error({ err: error }, 'request failed')
  else request.log.info({ status, detail: body.detail }, 'request rejected')
  return reply.code(status).type('application/problem+json').send(body)
}
