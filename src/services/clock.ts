/**
 * The time, as every rule that depends on it reads it: token and session expiry, revocation
 * lifetimes, attempt windows, reset and verification link lifetimes. The server runs on the
 * system clock; a test gives the app a clock it moves itself (test/support/clock.ts), so that a
 * boundary is tested to the millisecond instead of with hour-wide margins.
 */
export interface Clock {
  /** Milliseconds since the epoch, as Date.now() counts them. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** The clock's time as a Date (what the repositories store and compare). */
export const dateOf = (clock: Clock): Date => new Date(clock.now())
