import type { Server } from 'node:http'
import { Ajv, type Options as AjvOptions } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyHttpOptions, FastifyServerOptions } from 'fastify'
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js'
import type { Config } from '../config.js'
import { createLogger, OneLinePerRequest, requestId } from './logging.js'
import { answerClientError, answerFrameworkError, headersOfRefusals } from './refusals.js'

export interface ServerOptionsInput {
  /** pino options, or false for no log (the default follows config.logLevel). */
  logger?: FastifyServerOptions['logger']
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

export function serverOptions(config: Config, options: ServerOptionsInput = {}): FastifyHttpOptions<Server> {
  // Fastify asks for a validator compiler in every plugin context that declares routes; two Ajv
  // instances cost ~10 ms to create, a dozen times over at start (docs/performance.md). Contexts
  // with the same shared schemas share one pair.
  const validatorsBySchemas = new Map<string, ReturnType<typeof createValidators>>()
  const refusalHeaders = headersOfRefusals(config)
  return {
    loggerInstance: createLogger(config.logLevel, options.logger),
    logController: new OneLinePerRequest(),
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
