import type { FastifyRequest } from 'fastify'
import type { RequestContext } from '../services/context.js'

/** What the rules may know of a request: its caller (when authenticated), address, user agent, log. */
export function contextOf(request: FastifyRequest): RequestContext {
  const userAgent = request.headers['user-agent']
  return {
    actor: request.actor ?? undefined,
    ip: request.ip,
    userAgent: typeof userAgent === 'string' ? userAgent : undefined,
    log: request.log,
  }
}
