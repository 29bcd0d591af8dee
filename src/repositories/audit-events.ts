import type { Kysely } from 'kysely'
import type { AuditEventRow, AuditOutcome, Database, NewAuditEventRow } from '../db/database.js'
import { alone } from './savepoint.js'

const AUDIT_EVENT_COLUMNS = [
  'id',
  'created_at',
  'event',
  'outcome',
  'user_id',
  'actor_id',
  'ip',
  'user_agent',
  'details',
] as const

export type AuditEventRecord = Pick<AuditEventRow, (typeof AUDIT_EVENT_COLUMNS)[number]>

export interface AuditEventFilters {
  userId?: number
  event?: string
  outcome?: AuditOutcome
  /** Inclusive lower bound of created_at. */
  since?: Date
  /** Exclusive upper bound of created_at. */
  until?: Date
}

/** Where the previous page ended (newest first): its last row's created_at and id. */
export interface AuditEventPosition {
  createdAt: Date
  id: number
}

export function createAuditEventsRepository(db: Kysely<Database>) {
  return {
    /**
     * Appends one event. Inside a transaction the insert runs under a savepoint: if it fails, only
     * the insert is undone and the caller's transaction can still commit (PostgreSQL would
     * otherwise refuse every later statement of the transaction). The error is still thrown.
     */
    async insert(row: NewAuditEventRow): Promise<void> {
      await alone(db, 'audit_event', () => db.insertInto('audit_events').values(row).execute())
    },

    /**
     * One page, newest first, after `after`. Keyset pagination on (created_at, id), written as
     * `created_at <= t AND (created_at < t OR id < i)` so that every engine uses a range scan of the
     * index that starts with the filtered column.
     */
    list(options: {
      filters: AuditEventFilters
      after?: AuditEventPosition
      limit: number
    }): Promise<AuditEventRecord[]> {
      const { filters, after, limit } = options
      return db
        .selectFrom('audit_events')
        .select(AUDIT_EVENT_COLUMNS)
        .$if(filters.userId !== undefined, (qb) => qb.where('user_id', '=', filters.userId!))
        .$if(filters.event !== undefined, (qb) => qb.where('event', '=', filters.event!))
        .$if(filters.outcome !== undefined, (qb) => qb.where('outcome', '=', filters.outcome!))
        .$if(filters.since !== undefined, (qb) => qb.where('created_at', '>=', filters.since!))
        .$if(filters.until !== undefined, (qb) => qb.where('created_at', '<', filters.until!))
        .$if(after !== undefined, (qb) =>
          qb
            .where('created_at', '<=', after!.createdAt)
            .where((eb) => eb.or([eb('created_at', '<', after!.createdAt), eb('id', '<', after!.id)])),
        )
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute()
    },
  }
}

export type AuditEventsRepository = ReturnType<typeof createAuditEventsRepository>
