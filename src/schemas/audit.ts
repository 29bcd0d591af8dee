import { Type, type Static } from 'typebox'
import { AUTH_EVENTS } from '../services/audit.js'
import { Id, NextCursor, PageCursor, PageLimit, Timestamp } from './common.js'

export const AuditOutcome = Type.Union(
  [Type.Literal('success'), Type.Literal('failure'), Type.Literal('blocked')],
  {
    description:
      'success: the action happened; failure: the attempt was refused (bad credentials, wrong password); ' +
      'blocked: a protection stopped it (rate limit, lockout, refresh token reuse).',
  },
)

export const AuditEventName = Type.Union(
  AUTH_EVENTS.map((event) => Type.Literal(event)),
  { description: 'The kind of security event.' },
)

/** One row of the audit trail, as an admin sees it. */
export const AuditEventPublic = Type.Object(
  {
    id: Type.Integer({ minimum: 1, examples: [1] }),
    created_at: Timestamp,
    event: Type.String({ examples: ['login_failed'] }),
    outcome: AuditOutcome,
    user_id: Type.Union([Id, Type.Null()], {
      description: 'Whose account the event concerns (kept after the account is deleted); null if unknown.',
    }),
    actor_id: Type.Union([Id, Type.Null()], {
      description: 'Who did it (e.g. the admin who changed a role); null for an anonymous request.',
    }),
    ip: Type.Union([Type.String(), Type.Null()], { examples: ['203.0.113.7'] }),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(
      Type.String(),
      Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
      {
        description:
          'Event-specific facts (a reason code, a session id, the old and new role); never a secret.',
        examples: [{ reason: 'wrong_password' }],
      },
    ),
  },
  { additionalProperties: false },
)
export type AuditEventPublic = Static<typeof AuditEventPublic>

const Instant = (description: string) =>
  Type.String({ format: 'date-time', maxLength: 64, description, examples: ['2026-01-31T12:00:00Z'] })

export const AuditEventListQuery = Type.Object(
  {
    limit: Type.Optional(PageLimit),
    cursor: Type.Optional(PageCursor),
    user_id: Type.Optional({ ...Id, description: 'Only the events of this account.' }),
    event: Type.Optional(AuditEventName),
    outcome: Type.Optional(AuditOutcome),
    since: Type.Optional(Instant('Only events at or after this instant (RFC 3339, with a time zone).')),
    until: Type.Optional(Instant('Only events before this instant (RFC 3339, with a time zone).')),
  },
  { additionalProperties: false },
)
export type AuditEventListQuery = Static<typeof AuditEventListQuery>

export const AuditEventPage = Type.Object(
  { items: Type.Array(AuditEventPublic), next_cursor: NextCursor },
  { additionalProperties: false },
)
