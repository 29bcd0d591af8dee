import type { FastifyError, FastifyInstance } from 'fastify'
import { isDatabaseTimeout, isDatabaseUnavailable, isStorageError } from '../db/errors.js'
import { DomainError } from '../services/errors.js'
import { HttpProblem, problemBody, problemOf, validationIssues } from './problems.js'

/** What a 415 says: the media types the route takes (JSON unless its schema says otherwise). */
function mediaTypeAdvice(consumes: readonly string[] | undefined): string {
  const types = consumes?.length ? consumes : ['application/json']
  return types.length === 1
    ? `This route takes ${types[0]}: send the body with that Content-Type.`
    : `This route takes ${types.join(' or ')}: send the body with one of them as its Content-Type.`
}

/** Every error becomes application/problem+json; a 5xx never shows its cause to the client. */
export function handleError(
  this: FastifyInstance,
  thrown: FastifyError | HttpProblem | DomainError,
  request: Parameters<FastifyInstance['errorHandler']>[1],
  reply: Parameters<FastifyInstance['errorHandler']>[2],
) {
  // What a rule said no to becomes its problem here, the one place that maps domain errors.
  const error = thrown instanceof DomainError ? problemOf(thrown) : thrown
  let status: number
  let body
  if (error instanceof HttpProblem) {
    status = error.status
    body = error.toBody()
    for (const [name, value] of Object.entries(error.options.headers ?? {})) reply.header(name, value)
  } else if (error.validation) {
    status = 422
    body = problemBody(422, 'The request is not valid: see errors.', validationIssues(error))
  } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    status = 415
    body = problemBody(415, mediaTypeAdvice(request.routeOptions.schema?.consumes))
  } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    // Fastify's own client errors (bad JSON, body too large): safe to show.
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
