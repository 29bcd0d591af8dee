import { createHash } from 'node:crypto'
import { isUniqueViolation } from '../db/errors.js'
import { conflict, invalidInput } from './errors.js'
import type { Repositories } from '../repositories/index.js'

export const IDEMPOTENCY_KEY_LIFETIME_MS = 24 * 60 * 60 * 1000

/** JSON with object keys in a fixed order, so that the same body hashes alike however it was written. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`
  return JSON.stringify(value)
}

export function requestFingerprint(operation: string, body: unknown): string {
  return createHash('sha256')
    .update(`${operation}\n${canonicalJson(body)}`)
    .digest('hex')
}

export type IdempotentOutcome<T> =
  { replayed: false; status: number; body: T } | { replayed: true; status: number; body: unknown }

/**
 * Runs `create` at most once per (user, key): the key is claimed in the same transaction as the
 * creation, so a concurrent retry waits for it (PostgreSQL/MySQL lock the key's row; SQLite runs
 * one transaction at a time) and then replays the stored answer. Only successes are kept: a
 * refused request leaves no trace and can be retried with the same key.
 */
export async function runIdempotently<T>(options: {
  transaction: <R>(work: (repos: Repositories) => Promise<R>) => Promise<R>
  repos: Repositories
  userId: number
  key: string
  fingerprint: string
  create: (repos: Repositories) => Promise<{ status: number; body: T }>
  /** The time (the app's clock): a key expires IDEMPOTENCY_KEY_LIFETIME_MS after it. */
  now: () => Date
}): Promise<IdempotentOutcome<T>> {
  const { transaction, repos, userId, key, fingerprint, create } = options
  for (let attempt = 0; attempt < 3; attempt++) {
    const now = options.now()
    try {
      return await transaction(async (trx) => {
        await trx.idempotencyKeys.claim(
          userId,
          key,
          fingerprint,
          now,
          new Date(now.getTime() + IDEMPOTENCY_KEY_LIFETIME_MS),
        )
        const result = await create(trx)
        await trx.idempotencyKeys.complete(userId, key, result.status, JSON.stringify(result.body))
        return { replayed: false as const, ...result }
      })
    } catch (error) {
      if (!isUniqueViolation(error)) throw error
      const stored = await repos.idempotencyKeys.find(userId, key)
      // A unique violation of the creation itself (e.g. a taken SKU) and not of the key.
      if (!stored) throw error
      if (stored.expires_at <= now) {
        await repos.idempotencyKeys.deleteExpired(userId, key, now)
        continue
      }
      if (stored.request_hash !== fingerprint)
        throw invalidInput('This Idempotency-Key was used with a different request body.', [
          { in: 'header', field: 'idempotency-key', message: 'was already used for another request' },
        ])
      if (stored.response_status === null || stored.response_body === null)
        throw conflict('A request with this Idempotency-Key is still being processed; retry shortly.', 1)
      return {
        replayed: true,
        status: stored.response_status,
        body: JSON.parse(stored.response_body) as unknown,
      }
    }
  }
  throw conflict('This Idempotency-Key is contended; retry shortly.', 1)
}
