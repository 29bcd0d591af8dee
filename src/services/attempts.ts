import { createHash } from 'node:crypto'
import type { Config } from '../config.js'
import { clientKey } from '../rate-limit/client-key.js'
import type { CounterStore } from '../rate-limit/counters.js'
import type { RequestContext } from './context.js'
import { tooManyAttempts } from './errors.js'

/** The attempt-limited actions: each has its own counters, per client IP and per account. */
export type AttemptKind =
  | 'login'
  | 'register'
  | 'refresh'
  | 'password_recovery'
  | 'password_reset'
  | 'verify_email'
  | 'verify_email_resend'
  /** A TOTP or recovery code, at login or to confirm an enrolment; counted per user id. */
  | 'second_factor'
  /** The password given again to change second factors; counted per user id. */
  | 'reauthenticate'
  /** A password-less login with a passkey: counted per client IP, and per account once known. */
  | 'passkey_login'
  /** A one-time code of a sign-in with an identity provider, exchanged for tokens: per client IP. */
  | 'external_login'

/** What an attempt is called in the answer that refuses it ("Too many login attempts…"). */
const ATTEMPT_NAMES: Record<AttemptKind, string> = {
  login: 'login',
  register: 'registration',
  refresh: 'token refresh',
  password_recovery: 'password recovery',
  password_reset: 'password reset',
  verify_email: 'email verification',
  verify_email_resend: 'verification email',
  second_factor: 'second-factor',
  reauthenticate: 're-authentication',
  passkey_login: 'passkey login',
  external_login: 'sign-in code',
}

/**
 * The kinds whose per-account limit counts failures only: a success is taken back from the
 * client's address and clears the account's failures (as Keycloak's brute-force detection does),
 * so that people who log in often are never locked out by their own successes.
 */
const FORGIVEN_ON_SUCCESS: ReadonlySet<AttemptKind> = new Set(['login'])

/** What counting one attempt says, by the tighter of the limits that apply to it. */
export interface AttemptVerdict {
  /** Which limit that is: the client's address or the account. */
  scope: 'ip' | 'account'
  limit: number
  /** Attempts left in the window; negative past the limit. */
  remaining: number
  /** Seconds until that limit's window ends (at least 1). */
  resetSeconds: number
  /** Past a limit: the attempt is refused, whatever its credentials. */
  refused: boolean
  /** The first refused attempt of its window on some limit: worth saying once, not for each of a flood. */
  firstRefusal: boolean
}

export interface AttemptLimits {
  /**
   * Counts an attempt per client IP and per account (the value that names it, e.g. the login
   * name; none for an anonymous action) and says whether it stays within both limits. Undefined
   * when attempt limits are off.
   */
  count(
    context: Pick<RequestContext, 'ip' | 'log'>,
    kind: AttemptKind,
    account: string | number | undefined,
  ): Promise<AttemptVerdict | undefined>
  /**
   * An attempt counted by `count` succeeded. For a kind whose account limit counts failures only
   * (a login), it stops counting against the address and the account's failures are cleared;
   * for the others every attempt keeps counting, so this does nothing.
   */
  succeeded(
    context: Pick<RequestContext, 'ip'>,
    kind: AttemptKind,
    account: string | number | undefined,
  ): Promise<void>
}

/** The 429 of an attempt past a limit, saying which limit and when to try again. */
export function attemptRefused(kind: AttemptKind, verdict: Pick<AttemptVerdict, 'scope' | 'resetSeconds'>) {
  const name = ATTEMPT_NAMES[kind]
  const what =
    verdict.scope === 'ip'
      ? `Too many ${name} attempts from this address`
      : FORGIVEN_ON_SUCCESS.has(kind)
        ? `Too many failed ${name} attempts for this account`
        : `Too many ${name} attempts for this account`
  return tooManyAttempts(`${what}; try again in ${verdict.resetSeconds} seconds.`, verdict.resetSeconds)
}

export interface AttemptLimitsDependencies {
  limits: Pick<Config['rateLimit'], 'enabled' | 'attemptsPerIp' | 'attemptsPerAccount' | 'attemptWindowMs'>
  counters: CounterStore
  /** Counts a security event (the auth_events_total metric). */
  count(event: 'lockout'): void
}

/** Accounts are counted under a digest: no email addresses or user names in Redis keys. */
const accountKey = (account: string | number) =>
  createHash('sha256').update(String(account)).digest('base64url').slice(0, 32)

interface Check {
  scope: AttemptVerdict['scope']
  key: string
  limit: number
  /** Past this limit, the account is locked out (reported once per window); an address is not. */
  locksAccount: boolean
}

export function createAttemptLimits({ limits, counters, count }: AttemptLimitsDependencies): AttemptLimits {
  const checksOf = (ip: string, kind: AttemptKind, account: string | number | undefined) => {
    const checks: Check[] = [
      {
        scope: 'ip',
        key: `attempt:${kind}:ip:${clientKey(ip)}`,
        limit: limits.attemptsPerIp,
        locksAccount: false,
      },
    ]
    if (account !== undefined && account !== '')
      checks.push({
        scope: 'account',
        key: `attempt:${kind}:account:${accountKey(account)}`,
        limit: limits.attemptsPerAccount,
        locksAccount: true,
      })
    return checks
  }

  return {
    async count(context, kind, account) {
      if (!limits.enabled) return undefined
      const checks = checksOf(context.ip, kind, account)
      // Every attempt counts when it is made, allowed or not (a login that succeeds is taken back
      // by `succeeded`): a block lasts until its window ends.
      const results = await Promise.all(checks.map(({ key }) => counters.hit(key, limits.attemptWindowMs)))
      let tightest = { scope: 'ip' as Check['scope'], limit: Infinity, remaining: Infinity, resetMs: 0 }
      for (const [index, result] of results.entries()) {
        const { scope, limit, locksAccount } = checks[index]!
        // On a tie both limits leave as many attempts: the address's (the first) is named.
        if (limit - result.count < tightest.remaining)
          tightest = { scope, limit, remaining: limit - result.count, resetMs: result.resetMs }
        if (locksAccount && result.count === limit + 1) {
          // The first refused attempt on this account in this window: a lockout, said once.
          count('lockout')
          context.log.warn({ event: 'lockout', kind }, 'too many attempts on one account')
        }
      }
      return {
        scope: tightest.scope,
        limit: tightest.limit,
        remaining: tightest.remaining,
        resetSeconds: Math.max(1, Math.ceil(tightest.resetMs / 1000)),
        refused: tightest.remaining < 0,
        firstRefusal: results.some((result, index) => result.count === checks[index]!.limit + 1),
      }
    },
    async succeeded(context, kind, account) {
      if (!limits.enabled || !FORGIVEN_ON_SUCCESS.has(kind)) return
      const [address, accountCheck] = checksOf(context.ip, kind, account)
      await Promise.all([
        counters.takeBack(address!.key),
        accountCheck ? counters.reset(accountCheck.key) : undefined,
      ])
    },
  }
}

/**
 * For a rule that learns the account only once it has read something (the user of an mfa_token):
 * counts the attempt as the routes' limitAttempts preHandler does, before any code or password is
 * checked, and refuses it past either limit. A right code past the limit is refused too.
 */
export async function limitAttempt(
  attempts: AttemptLimits,
  context: Pick<RequestContext, 'ip' | 'log'>,
  kind: AttemptKind,
  /** Undefined while no account is known: the client's address alone is counted. */
  account: number | undefined,
): Promise<void> {
  const verdict = await attempts.count(context, kind, account)
  if (verdict?.refused) throw attemptRefused(kind, verdict)
}
