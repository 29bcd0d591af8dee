import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
// The pino Fastify uses (package.json declares a range Fastify accepts, so there is one copy):
// Fastify reads the serializers of the logger it is given through pino's own symbols.
import {
  pino,
  stdSerializers,
  type Bindings,
  type ChildLoggerOptions,
  type DestinationStream,
  type Logger,
  type LoggerOptions,
} from 'pino'

/**
 * An incoming X-Request-Id is kept only when it is a plain token: letters, digits and `. _ : -`,
 * 1 to 128 characters. Anything else (empty, too long, spaces, quotes, control characters, several
 * values) is replaced by a fresh UUID, so a client can correlate its calls but cannot write
 * arbitrary text into every log line of its request.
 */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function requestId(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/** Fields whose values are secrets wherever they appear in a logged object (up to three levels deep). */
export const SECRET_FIELDS = [
  'password',
  'new_password',
  'current_password',
  'password_hash',
  'token',
  'access_token',
  'refresh_token',
  'client_secret',
  'secret',
  'authorization',
  'cookie',
]

/** Headers that carry credentials, in the places pino meets them (request and response objects). */
const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key']

/** The logged objects whose `headers` (besides a top-level `headers`) lose their credential headers. */
const HEADER_HOLDERS = new Set(['req', 'res', 'request'])

export const CENSOR = '[Redacted]'

const SECRET_FIELD_NAMES = new Set(SECRET_FIELDS)

type LoggedObject = Record<string, unknown>

const isObject = (value: unknown): value is LoggedObject => typeof value === 'object' && value !== null

/** A shallow copy that serializes as the original (same prototype, same own enumerable fields). */
function shallowCopy(value: LoggedObject): LoggedObject {
  return Array.isArray(value)
    ? (value.slice() as unknown as LoggedObject)
    : Object.assign(Object.create(Object.getPrototypeOf(value) as object | null) as LoggedObject, value)
}

/** `value` with its own fields of these names censored: a copy if any, else `value` itself. */
function censorFields(value: LoggedObject, names: readonly string[]): LoggedObject {
  let result = value
  for (const name of names) {
    if (!Object.hasOwn(value, name)) continue
    if (result === value) result = shallowCopy(value)
    result[name] = CENSOR
  }
  return result
}

/**
 * Redacts below one top-level field of a log line: a secret field one or two levels down
 * (`body.password`, `body.nested.token`), and the credential headers of `headers`, `req.headers`,
 * `res.headers` and `request.headers`. What is logged is never changed: a copy is made, and only
 * when something is redacted, which is rare (the common line has no secret at all).
 */
function redactBelow(field: string, value: unknown): unknown {
  if (!isObject(value)) return value
  let result = censorFields(value, SECRET_FIELDS)
  if (field === 'headers') result = censorFields(result, SECRET_HEADERS)
  for (const key of Object.keys(result)) {
    const child = result[key]
    if (!isObject(child)) continue
    let redacted = censorFields(child, SECRET_FIELDS)
    if (key === 'headers' && HEADER_HOLDERS.has(field)) redacted = censorFields(redacted, SECRET_HEADERS)
    if (redacted === child) continue
    if (result === value) result = shallowCopy(value)
    result[key] = redacted
  }
  return result
}

/** Redacts the fields of a log line (or of a child logger's bindings) that no serializer owns. */
function redactFields(object: LoggedObject, serialized: ReadonlySet<string>): LoggedObject {
  let result = object
  for (const key of Object.keys(object)) {
    const value = object[key]
    if (value === undefined || serialized.has(key)) continue
    const redacted = SECRET_FIELD_NAMES.has(key) ? CENSOR : redactBelow(key, value)
    if (redacted === value) continue
    if (result === object) result = { ...object }
    result[key] = redacted
  }
  return result
}

type MakeChild = (this: Logger, bindings: Bindings, options?: ChildLoggerOptions) => Logger

/**
 * Every child logger (`log.child({ … })`: Fastify's logger of each request, a component's) is made
 * with a bindings formatter that redacts its bindings like a log line: pino gives a child the
 * parent's serializers and `log` formatter, but not its `bindings` formatter. The children of a
 * child are made the same way. The request id and a component name, all the app binds, hold no
 * secret, so nothing is copied per request.
 */
function redactChildBindings(root: Logger, serialized: ReadonlySet<string>): Logger {
  const makeChild = root.child as unknown as MakeChild
  const redact = (bindings: Bindings) => redactFields(bindings, serialized)
  const redacting = { bindings: redact }
  const child: MakeChild = function (bindings, options) {
    const own = options?.formatters
    const formatters = own
      ? {
          ...own,
          bindings: own.bindings ? (given: Bindings) => redact(own.bindings!(given) as Bindings) : redact,
        }
      : redacting
    const made = makeChild.call(this, bindings, { ...options, formatters })
    if ((made.child as unknown) !== child) made.child = child as unknown as Logger['child']
    return made
  }
  root.child = child as unknown as Logger['child']
  return root
}

/** Fastify's serializer of `res` (in its default logger options): the status code alone. */
const serializeReply = (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode })

/** Query parameters whose values are never logged (the account pages receive `?token=`). */
const SECRET_QUERY_PARAMETERS = new Set(SECRET_FIELDS)

/** The request URL as logged: the values of secret query parameters are replaced by [Redacted]. */
export function redactUrl(url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const query = url
    .slice(start + 1)
    .split('&')
    .map((part) => {
      const equals = part.indexOf('=')
      const rawName = equals === -1 ? part : part.slice(0, equals)
      let name: string
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '))
      } catch {
        name = rawName
      }
      return SECRET_QUERY_PARAMETERS.has(name.toLowerCase()) ? `${rawName}=${CENSOR}` : part
    })
    .join('&')
  return `${url.slice(0, start + 1)}${query}`
}

interface LoggedRequest {
  method?: string
  url?: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}

type Serializer = (value: never) => unknown

/** What BuildOptions.logger may give: pino options, and the stream to write to (tests read it). */
type LoggerSettings = FastifyServerOptions['logger']

type GivenOptions = Omit<LoggerOptions, 'formatters'> & {
  stream?: DestinationStream
  formatters?: { log?: (object: LoggedObject) => LoggedObject; bindings?: (bindings: Bindings) => Bindings }
}

/**
 * The server's logger: JSON lines (which escape control characters, so user input cannot forge a
 * line), secrets redacted, and request URLs without secret query values. Given logger options (a
 * level, a stream for tests) are kept; redaction is always added. Undefined when nothing is logged.
 *
 * Redaction: a secret field (SECRET_FIELDS) is replaced by "[Redacted]" at the top of a log line
 * and one or two levels below it, and the credential headers (SECRET_HEADERS) below `headers`,
 * `req.headers`, `res.headers` and `request.headers` — what pino's `redact` option did with the
 * paths `password`, `*.password`, `*.*.password`, `req.headers["set-cookie"]`… Done here instead,
 * on each field once serialized, because pino's own redaction re-read its ~50 paths on every field
 * of every line: it was a quarter of the CPU time of a one-row read (docs/performance.md). Fields
 * with a serializer are redacted after it runs (as pino did); the others by the `log` and
 * `bindings` formatters, a child logger's by its own (redactChildBindings). (pino's `redact` also
 * covered objects interpolated into a message with `%o` or `%j`; nothing here logs that way.)
 */
export function createLogger(level: string, given?: LoggerSettings): Logger | undefined {
  if (given === false || (given === undefined && level === 'silent')) return undefined
  const { stream, ...base } = (
    typeof given === 'object' && given !== null ? given : { level }
  ) as GivenOptions
  const serializers: Record<string, Serializer> = {
    res: serializeReply,
    err: stdSerializers.err,
    ...base.serializers,
    req: (request: LoggedRequest) => ({
      method: request.method,
      url: request.url === undefined ? undefined : redactUrl(request.url),
      host: request.host,
      remoteAddress: request.ip,
      remotePort: request.socket?.remotePort,
    }),
  }
  const serialized = new Set(Object.keys(serializers))
  const formatters = base.formatters ?? {}
  const logger = pino(
    {
      level: 'info',
      ...base,
      serializers: Object.fromEntries(
        Object.entries(serializers).map(([key, serialize]) => [
          key,
          SECRET_FIELD_NAMES.has(key) ? () => CENSOR : (value: never) => redactBelow(key, serialize(value)),
        ]),
      ) as LoggerOptions['serializers'],
      formatters: {
        ...formatters,
        log: (object: LoggedObject) => redactFields(formatters.log?.(object) ?? object, serialized),
        bindings: (bindings: Bindings) =>
          redactFields(formatters.bindings?.(bindings) ?? bindings, serialized),
      },
    },
    stream as DestinationStream,
  )
  return redactChildBindings(logger, serialized)
}

/**
 * One log line per request, written when it ends: "request completed" (or "request errored")
 * with the request (`req`: method, URL without secret query values, host, client address and
 * port), the status (`res`) and `responseTime` in milliseconds, under the request id. Fastify
 * writes two by default ("incoming request" with `req`, then the completion without it): the same
 * fields, at twice the cost of a line per request (docs/performance.md). "incoming request" is
 * still written at `debug`, to follow a request as it runs; one the client gives up on before its
 * answer ends with "request aborted" (logAbortedRequest), so no request goes unlogged.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(request: FastifyRequest) {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    if (error)
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      )
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

/** The `onRequestAbort` hook: a request whose client went away before its answer is logged once. */
export function logAbortedRequest(request: FastifyRequest, done: () => void) {
  request.log.info({ req: request }, 'request aborted')
  done()
}
