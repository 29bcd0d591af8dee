import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'

const PROBE_ID = 1

export function createReadinessProbeRepository(db: Kysely<Database>) {
  return {
    /** The cheapest query: whether the database answers at all. */
    async ping(): Promise<void> {
      await sql`select 1`.execute(db)
    },

    /**
     * Rewrites the probe row. It commits a real change, so it fails where a read would not: on a
     * full disk, a read-only file, a server that refuses writes.
     */
    async write(now: Date): Promise<void> {
      await db.updateTable('readiness_probe').set({ checked_at: now }).where('id', '=', PROBE_ID).execute()
    },
  }
}

export type ReadinessProbeRepository = ReturnType<typeof createReadinessProbeRepository>
