import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../../config.js'
import { invalidInput } from '../../services/errors.js'
import { createKeysetPaging } from '../../services/pagination.js'
import { bearerSecurity } from '../../http/openapi.js'
import type {
  AuditEventFilters,
  AuditEventPosition,
  AuditEventRecord,
} from '../../repositories/audit-events.js'
import { AuditEventListQuery, AuditEventPage, type AuditEventPublic } from '../../schemas/audit.js'
import { problemResponses } from '../../schemas/problem.js'

/** A date-time the schema accepted that JavaScript cannot represent (e.g. a leap second) is a 422. */
function instant(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined
  const date = new Date(value)
  if (Number.isNaN(date.getTime()))
    throw invalidInput('The request is not valid: see errors.', [
      { in: 'query', field, message: 'is not a date-time this server can read' },
    ])
  return date
}

/** The stored details are JSON written by the application; anything else is shown as none. */
function parseDetails(text: string | null): AuditEventPublic['details'] {
  if (text === null) return {}
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as AuditEventPublic['details'])
      : {}
  } catch {
    return {}
  }
}

const toPublic = (row: AuditEventRecord) => ({
  ...row,
  id: Number(row.id),
  details: parseDetails(row.details),
})

/** The audit trail of security events, for admins. */
const auditRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const paging = createKeysetPaging(config.secretKey, 'audit-events')

  app.get(
    '/audit-events',
    {
      onRequest: [app.authenticate],
      preHandler: [app.requireRole('admin')],
      schema: {
        tags: ['audit'],
        summary: 'List security events (admin)',
        description:
          'Newest first: logins and their failures, logouts, refresh token reuse, password changes and resets, ' +
          'role changes, deactivations and deletions — with who, when, IP and user agent. Filter by account, ' +
          'event, outcome and time (`since` inclusive, `until` exclusive); pass `next_cursor` back as `cursor` ' +
          'with the same filters for the next page.',
        security: bearerSecurity,
        querystring: AuditEventListQuery,
        response: { 200: AuditEventPage, ...problemResponses(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const { limit = 20, cursor, user_id: userId, event, outcome } = request.query
      const filters: AuditEventFilters = {
        userId,
        event,
        outcome,
        since: instant(request.query.since, 'since'),
        until: instant(request.query.until, 'until'),
      }
      if (filters.since && filters.until && filters.since > filters.until)
        throw invalidInput('since is after until.', [
          { in: 'query', field: 'since', message: 'must not be after until' },
        ])
      const after = paging.start(cursor, filters, (position): AuditEventPosition | undefined => {
        const createdAt = typeof position.t === 'string' ? new Date(position.t) : undefined
        if (!createdAt || Number.isNaN(createdAt.getTime())) return undefined
        if (typeof position.i !== 'number' || !Number.isSafeInteger(position.i)) return undefined
        return { createdAt, id: position.i }
      })
      const rows = await app.repos.auditEvents.list({ filters, after, limit: limit + 1 })
      reply.header('cache-control', 'no-store')
      const page = paging.page(rows, limit, filters, (event) => ({
        t: event.created_at.toISOString(),
        i: Number(event.id),
      }))
      return { ...page, items: page.items.map(toPublic) }
    },
  )
}

export default auditRoutes
