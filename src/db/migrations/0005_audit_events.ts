import { sql, type Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // The audit trail: one row per security event (who, what, when, from where, how it ended).
  // Append-only and possibly long-lived, so its id is 64-bit (SQLite's integer key already is).
  // user_id and actor_id have no foreign key on purpose: the trail of a deleted user must stay
  // whole, with the ids it had, rather than be cascaded away or blanked.
  await db.schema
    .createTable('audit_events')
    .addColumn(
      'id',
      engine === 'postgres' ? 'bigserial' : engine === 'mysql' ? 'bigint' : types.id,
      types.primaryKey,
    )
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('event', 'varchar(64)', (col) => col.notNull())
    .addColumn('outcome', 'varchar(16)', (col) => col.notNull())
    // The subject: whose account the event concerns (null when no account is known).
    .addColumn('user_id', 'integer')
    // Who did it, when authenticated (an admin changing another user's role, or the user themself).
    .addColumn('actor_id', 'integer')
    .addColumn('ip', 'varchar(45)')
    .addColumn('user_agent', 'varchar(512)')
    // A small JSON object written by the application (reason codes, ids); never a secret.
    .addColumn('details', types.text)
    .addCheckConstraint('audit_events_outcome_check', sql`outcome in ('success', 'failure', 'blocked')`)
    .modifyEnd(tableOptions(engine))
    .execute()

  // One index per listing: everything newest first, one user's events, one kind of event.
  await db.schema
    .createIndex('audit_events_created_at_id_idx')
    .on('audit_events')
    .columns(['created_at', 'id'])
    .execute()
  await db.schema
    .createIndex('audit_events_user_id_idx')
    .on('audit_events')
    .columns(['user_id', 'created_at', 'id'])
    .execute()
  await db.schema
    .createIndex('audit_events_event_idx')
    .on('audit_events')
    .columns(['event', 'created_at', 'id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_events').execute()
}
