import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyServerOptions } from 'fastify'

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

export const REDACT_PATHS = [
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
  ...SECRET_HEADERS.flatMap((header) =>
    ['req.headers', 'res.headers', 'headers', 'request.headers'].map((at) => `${at}["${header}"]`),
  ),
]

export const CENSOR = '[Redacted]'

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

/**
 * pino options for the server: JSON lines (which escape control characters, so user input cannot
 * forge a line), secrets redacted, and request URLs without secret query values. Given logger
 * options (a level, a stream for tests) are kept; redaction is always added.
 */
export function loggerOptions(
  level: string,
  given?: FastifyServerOptions['logger'],
): FastifyServerOptions['logger'] {
  if (given === false || (given === undefined && level === 'silent')) return false
  const base = typeof given === 'object' && given !== null ? given : { level }
  return {
    ...base,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    serializers: {
      ...(base as { serializers?: Record<string, unknown> }).serializers,
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: request.url === undefined ? undefined : redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  } as FastifyServerOptions['logger']
}
