import type { preValidationHookHandler, RouteOptions } from 'fastify'
import { problemResponses } from '../schemas/problem.js'
import { invalidInput } from '../services/errors.js'

/**
 * What every route's contract gets without writing it: checks that run before validation, and the
 * statuses the document must list because the framework (not the route) may answer them.
 */

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * A route that can be sent a body can be refused before its handler runs: 400 (the body is not
 * valid JSON or form data), 413 (larger than BODY_LIMIT_BYTES), 415 (a media type it does not
 * take). Each such route declares them, so that the document lists every status it can answer.
 */
export function declareBodyRefusals(route: RouteOptions) {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response
  if (!response || !methods.some((method) => BODY_METHODS.has(method))) return
  for (const [status, entry] of Object.entries(problemResponses(400, 413, 415)))
    if (!(status in response)) response[status] = entry
}

/** A route whose request has a schema answers 422 (naming each bad field) when the request breaks it. */
export function declareValidationRefusal(route: RouteOptions) {
  const schema = route.schema as Record<string, unknown> | undefined
  const response = schema?.response as Record<string, unknown> | undefined
  const validated = ['body', 'querystring', 'params', 'headers'].some((part) => schema?.[part] !== undefined)
  if (response && validated && !('422' in response)) Object.assign(response, problemResponses(422))
}

const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/

/**
 * Ajv's coercion turns "0x10", "1e3", " 5" or "1.0" into numbers, so that one resource would
 * answer at many URLs. Integer path and query parameters must be written in plain decimal.
 */
export function requireDecimalIntegers(route: RouteOptions) {
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
    if (issues.length > 0) throw invalidInput('The request is not valid: see errors.', issues)
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
