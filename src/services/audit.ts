import type { AuditOutcome, NewAuditEventRow } from '../db/database.js'
import type { Repositories } from '../repositories/index.js'
import { dateOf, systemClock, type Clock } from './clock.js'
import type { RequestContext } from './context.js'

/**
 * The security events counted by `auth_events_total{event}`. A closed list, so that the label
 * cannot grow without bound; each starts at 0, so that rates and alerts work before the first one.
 */
export const AUTH_EVENTS = [
  'login_succeeded',
  'login_failed',
  'lockout',
  'logout',
  'refresh_token_reuse',
  'refresh_token_duplicate',
  'password_changed',
  'password_change_failed',
  'password_reset',
  'password_reset_requested',
  'email_verified',
  'session_revoked',
  'user_registered',
  'user_role_changed',
  'user_deactivated',
  'user_reactivated',
  'user_email_changed',
  'user_deleted',
  'rate_limited',
  'mfa_challenge_issued',
  'mfa_login_succeeded',
  'mfa_code_failed',
  'mfa_token_refused',
  'mfa_recovery_code_used',
  'mfa_totp_enrolment_started',
  'mfa_totp_enabled',
  'mfa_totp_disabled',
  'mfa_recovery_codes_regenerated',
  'mfa_reauthentication_failed',
  'mfa_reauthenticated',
  'passkey_registered',
  'passkey_registration_failed',
  'passkey_renamed',
  'passkey_removed',
  'passkey_login_succeeded',
  'passkey_login_failed',
  'mfa_factors_reset',
  'external_login_started',
  'external_login_succeeded',
  'external_login_failed',
  'external_identity_linked',
  'external_identity_unlinked',
] as const
export type AuthEvent = (typeof AUTH_EVENTS)[number]

/** Values of an event's details: small, written by the application, never a secret. */
export type SecurityEventDetails = Record<string, string | number | boolean | null>

export interface SecurityEvent {
  event: AuthEvent
  /**
   * success: the action happened; failure: the attempt was refused (bad credentials, wrong
   * password); blocked: a protection stopped it (rate limit, lockout, refresh token reuse).
   */
  outcome: AuditOutcome
  /** The subject: whose account the event concerns. Omit (or null) when no account is known. */
  userId?: number | null
  /** Who did it. Defaults to the authenticated caller (the context's actor), null when anonymous. */
  actorId?: number | null
  /** The session concerned, if any: logged as sessionId, stored in details as session_id. */
  sessionId?: string
  details?: SecurityEventDetails
}

/** Column sizes of audit_events (migration 0005), in characters. */
export const AUDIT_IP_MAX_LENGTH = 45
export const AUDIT_USER_AGENT_MAX_LENGTH = 512
/** Bounds of details: a few keys, short values. */
const DETAILS_MAX_KEYS = 16
const DETAILS_KEY_MAX_LENGTH = 64
const DETAILS_VALUE_MAX_LENGTH = 256

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * Text from a client as every engine can store it: as received, control characters included,
 * except NUL (PostgreSQL refuses it in text) and lone surrogates (each engine would replace them
 * differently), which become U+FFFD; cut to `maxLength` code points, the unit of varchar(n).
 */
export function storableText(text: string, maxLength: number): string {
  const clean = text.replace(/\0/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD')
  const codePoints = Array.from(clean)
  return codePoints.length > maxLength ? codePoints.slice(0, maxLength).join('') : clean
}

/** The details within bounds (a few keys, short values), or null when there are none. */
function boundedDetails(details: SecurityEventDetails): SecurityEventDetails | null {
  const entries = Object.entries(details)
    .filter(([, value]) => value !== undefined)
    .slice(0, DETAILS_MAX_KEYS)
    .map(([key, value]): [string, string | number | boolean | null] => [
      storableText(key, DETAILS_KEY_MAX_LENGTH),
      typeof value === 'string'
        ? storableText(value, DETAILS_VALUE_MAX_LENGTH)
        : typeof value === 'number' && !Number.isFinite(value)
          ? null
          : value,
    ])
  return entries.length > 0 ? Object.fromEntries(entries) : null
}

export interface AuditService {
  /**
   * Records a security event: one log line (info on success, warn otherwise), the event counter,
   * and a row of the audit trail (`audit_events`).
   *
   * With `repos` (the repositories of the caller's transaction) the row is written in that
   * transaction, and the log line and counter wait for its commit: a change that rolls back
   * leaves no trace of having happened. So record a failure outside the transaction that
   * the failure rolls back.
   *
   * Never throws: if the row cannot be written, the error is logged and the request goes on. An
   * audit trail that could refuse logins (a full disk, a lost table) would turn a storage problem
   * into an outage; the log line still records the event.
   */
  record(context: RequestContext, event: SecurityEvent, repos?: Repositories): Promise<void>
}

export function createAuditService(deps: {
  repos: Repositories
  /** Counts an event (the auth_events_total metric). */
  count(event: AuthEvent): void
  clock?: Clock
}): AuditService {
  const clock = deps.clock ?? systemClock
  return {
    async record(context, input, repos) {
      const { event, outcome, sessionId } = input
      const userId = input.userId ?? null
      const actorId = input.actorId !== undefined ? input.actorId : (context.actor?.id ?? null)
      const details = boundedDetails({
        ...input.details,
        ...(sessionId !== undefined ? { session_id: sessionId } : {}),
      })
      const row: NewAuditEventRow = {
        created_at: dateOf(clock),
        event,
        outcome,
        user_id: userId,
        actor_id: actorId,
        ip: context.ip ? storableText(context.ip, AUDIT_IP_MAX_LENGTH) : null,
        user_agent:
          context.userAgent !== undefined
            ? storableText(context.userAgent, AUDIT_USER_AGENT_MAX_LENGTH)
            : null,
        // JSON escapes every control character: the stored text is always one clean line.
        details: details && JSON.stringify(details),
      }
      const target = repos ?? deps.repos
      try {
        await target.auditEvents.insert(row)
      } catch (error) {
        context.log.error({ err: error, event }, 'the audit trail could not record a security event')
      }
      await target.afterCommit(async () => {
        // Fixed names and ids only: never a login name, password, token or hash.
        const line = {
          event,
          outcome,
          userId,
          actorId,
          ...(sessionId !== undefined ? { sessionId } : {}),
          ...(details ? { details } : {}),
        }
        if (outcome === 'success') context.log.info(line, `security event: ${event}`)
        else context.log.warn(line, `security event: ${event} (${outcome})`)
        deps.count(event)
      })
    },
  }
}
