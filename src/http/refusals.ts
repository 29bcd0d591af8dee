import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify'
import type { Config } from '../config.js'
import { securityHeaders } from './security-headers.js'
import { HttpProblem, problemBody } from './problems.js'

/**
 * The answers given before a route runs, or instead of one: an unknown path (404) or method
 * (405), what the router refuses, what Node's HTTP parser refuses (written straight to the socket,
 * with the headers every other answer carries), and what Node would otherwise answer bare.
 */

/** The methods a 405 may name in its Allow header (OPTIONS is only answered as a CORS preflight). */
const ROUTABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** 404 for an unknown path, 405 naming the methods for a known path with another method. */
export function answerUnrouted(app: FastifyInstance) {
  return (request: FastifyRequest, reply: FastifyReply) => {
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
  }
}

const FRAMEWORK_ERROR_DETAILS: Record<string, string> = {
  FST_ERR_BAD_URL: 'The path is not valid: a part of it is not correctly percent-encoded.',
  FST_ERR_MAX_PARAM_LENGTH: 'A part of the path is too long.',
}

/**
 * The headers of a refusal no hook sees (helmet's hook sets them on every other answer): the same
 * security headers, from the same options, and no caching.
 */
export function headersOfRefusals(config: Config): [name: string, value: string][] {
  return [...securityHeaders(config), ['Cache-Control', 'no-store']]
}

/** Errors Fastify meets while routing, before the hooks or the error handler can see them. */
export function answerFrameworkError(
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
export function answerClientError(
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
export const unmetExpectations = new WeakSet<IncomingMessage>()

/**
 * What Node answers by itself, with a bare, empty response, unless told otherwise: an HTTP/1.1
 * request without Host (RFC 9112 §3.2 requires a 400) and an expectation it cannot meet (417).
 * Node is told to hand both over, so that they are answered here like every other refusal.
 */
export const refuseWhatNodeWouldRefuse: onRequestHookHandler = (request, _reply, done) => {
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

/** Another instance can take the request at once. */
const RETRY_AFTER_SECONDS = '1'

/** A 503 for a request this instance will not serve because it is shutting down. */
export const shuttingDown = (detail: string) =>
  new HttpProblem(503, detail, { headers: { 'retry-after': RETRY_AFTER_SECONDS } })
