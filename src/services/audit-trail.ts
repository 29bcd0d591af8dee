import type { AuditEventFilters, AuditEventPosition, AuditEventRecord } from '../repositories/audit-events.js'
import type { Repositories } from '../repositories/index.js'
import { invalidInput } from './errors.js'
import { createKeysetPaging, type Page } from './pagination.js'

export interface AuditEventQuery {
  limit: number
  cursor?: string
  filters: AuditEventFilters
}

/** Reading the audit trail (services/audit.ts writes it): for admins, newest first. */
export interface AuditTrail {
  list(query: AuditEventQuery): Promise<Page<AuditEventRecord>>
}

export function createAuditTrail(deps: { repos: Repositories; secretKey: string }): AuditTrail {
  const paging = createKeysetPaging(deps.secretKey, 'audit-events')
  return {
    async list({ limit, cursor, filters }) {
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
      const rows = await deps.repos.auditEvents.list({ filters, after, limit: limit + 1 })
      return paging.page(rows, limit, filters, (event) => ({
        t: event.created_at.toISOString(),
        i: Number(event.id),
      }))
    },
  }
}
