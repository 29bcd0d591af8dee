import type { FastifyRequest } from 'fastify'
import { unauthenticated } from '../services/errors.js'

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i

/** The bearer token of a request: undefined when there is no Authorization header at all. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = BEARER.exec(header)
  if (!match?.[1]) throw unauthenticated('The Authorization header must be "Bearer <access token>"', true)
  return match[1]
}
