import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../../config.js'
import { authenticated } from '../../http/authenticated.js'
import type { AuditEventRecord } from '../../repositories/audit-events.js'
import { createAuditTrail } from '../../services/audit-trail.js'
import { invalidInput } from '../../services/errors.js'
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

/** The audit trail of security events, for admins; registered authenticated (below). */
const auditEventsRoute: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const trail = createAuditTrail({ repos: app.repos, secretKey: config.secretKey })

  app.get(
    '/audit-events',
    {
      preHandler: [app.requireRole('admin')],
      schema: {
        tags: ['audit'],
        summary: 'List security events (admin)',
        description:
          'Newest first: logins and their failures, logouts, refresh token reuse, password changes and resets, ' +
          'role changes, deactivations and deletions — with who, when, IP and user agent. Filter by account, ' +
          'event, outcome and time (`since` inclusive, `until` exclusive); pass `next_cursor` back as `cursor` ' +
          'with the same filters for the next page.',
        querystring: AuditEventListQuery,
        response: { 200: AuditEventPage, ...problemResponses(403, 422) },
      },
    },
    async (request, reply) => {
      const { limit = 20, cursor, user_id: userId, event, outcome, since, until } = request.query
      const page = await trail.list({
        limit,
        cursor,
        filters: {
          userId,
          event,
          outcome,
          since: instant(since, 'since'),
          until: instant(until, 'until'),
        },
      })
      reply.header('cache-control', 'no-store')
      return { ...page, items: page.items.map(toPublic) }
    },
  )
}

const auditRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  await app.register(authenticated(auditEventsRoute), { config })
}

export default auditRoutes
