import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { contextOf } from '../../http/context.js'
import type { Repositories } from '../../repositories/index.js'
import { createAuditService, type AuditService, type SecurityEvent } from '../../services/audit.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit trail of security events (services/audit.ts). */
    audit: AuditService
    /** `audit.record` for a request: its caller, address and log (see AuditService.record). */
    recordSecurityEvent(request: FastifyRequest, event: SecurityEvent, repos?: Repositories): Promise<void>
  }
}

export default fp(
  async (app) => {
    const audit = createAuditService({
      repos: app.repos,
      count: (event) => app.metrics.authEvent(event),
      clock: app.clock,
    })
    app.decorate('audit', audit)
    app.decorate(
      'recordSecurityEvent',
      (request: FastifyRequest, event: SecurityEvent, repos?: Repositories) =>
        audit.record(contextOf(request), event, repos),
    )
  },
  { name: 'security-events', dependencies: ['db', 'metrics'] },
)
