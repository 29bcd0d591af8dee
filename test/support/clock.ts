import type { Clock } from '../../src/services/clock.js'

/**
 * A clock the test moves: the app reads it wherever a rule depends on the time (buildApp's
 * `clock` option), so a lifetime is tested at its exact end, not with an hour to spare. It starts
 * at the real time (the databases' own clocks and Redis TTLs are not moved with it) and only
 * moves when told.
 */
export class TestClock implements Clock {
  private time: number

  constructor(start = Date.now()) {
    this.time = start
  }

  now = (): number => this.time

  /** Moves the time forward (or back, with a negative amount). */
  advance(ms: number): void {
    this.time += ms
  }

  set(time: number | Date): void {
    this.time = typeof time === 'number' ? time : time.getTime()
  }

  /** The time in whole seconds, as JWT claims count it. */
  get seconds(): number {
    return Math.floor(this.time / 1000)
  }
}

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
