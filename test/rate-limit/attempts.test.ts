/**
 * The attempt limits' keys and events: accounts are counted under a digest (no email address in
 * Redis), and a lockout is reported on the first refused attempt, not before.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import {
  createFallbackCounterStore,
  createMemoryCounterStore,
  type CounterStore,
} from '../../src/rate-limit/counters.js'
import {
  attemptRefused,
  createAttemptLimits,
  limitAttempt,
  type AttemptKind,
} from '../../src/services/attempts.js'
import { DomainError } from '../../src/services/errors.js'
import { MINUTE, TestClock } from '../support/clock.js'

const silentLog = { debug() {}, info() {}, warn() {}, error() {} }

function recordingCounters(clock: TestClock) {
  const keys: string[] = []
  /** What was taken back and reset, in order: `takeBack <key>`, `reset <key>`. */
  const undone: string[] = []
  const memory = createMemoryCounterStore(clock.now)
  const store: CounterStore = {
    kind: 'memory',
    hit: (key, windowMs) => {
      keys.push(key)
      return memory.hit(key, windowMs)
    },
    takeBack: (key) => {
      undone.push(`takeBack ${key}`)
      return memory.takeBack(key)
    },
    reset: (key) => {
      undone.push(`reset ${key}`)
      return memory.reset(key)
    },
    close: () => memory.close(),
  }
  return { store, keys, undone }
}

test('an account is counted under the first 32 characters of its SHA-256, never under its name', async () => {
  const { store, keys } = recordingCounters(new TestClock())
  const attempts = createAttemptLimits({
    limits: { enabled: true, attemptWindowMs: MINUTE, attemptsPerIp: 10, attemptsPerAccount: 5 },
    counters: store,
    count: () => {},
  })
  await attempts.count({ ip: '192.0.2.1', log: silentLog }, 'login', 'Carol@Example.com')
  const digest = createHash('sha256').update('Carol@Example.com', 'utf8').digest('base64url').slice(0, 32)
  assert.deepEqual(keys, ['attempt:login:ip:192.0.2.1', `attempt:login:account:${digest}`])
  assert.ok(!keys.join().includes('Carol'), 'no login name in a key')
  await attempts.count({ ip: '192.0.2.1', log: silentLog }, 'login', 42)
  assert.equal(
    keys.at(-1),
    `attempt:login:account:${createHash('sha256').update('42').digest('base64url').slice(0, 32)}`,
  )
})

test('a lockout is counted once, on the first attempt past the account limit', async () => {
  const lockouts: number[] = []
  const warnings: unknown[] = []
  const log = { ...silentLog, warn: (object: unknown) => warnings.push(object) }
  const attempts = createAttemptLimits({
    limits: { enabled: true, attemptWindowMs: MINUTE, attemptsPerIp: 100, attemptsPerAccount: 3 },
    counters: createMemoryCounterStore(new TestClock().now),
    count: () => lockouts.push(lockouts.length + 1),
  })
  const after: number[] = []
  for (let attempt = 1; attempt <= 5; attempt++) {
    await attempts.count({ ip: '192.0.2.1', log }, 'password_reset', 'victim')
    after.push(lockouts.length)
  }
  assert.deepEqual(after, [0, 0, 0, 1, 1])
  assert.deepEqual(warnings, [{ event: 'lockout', kind: 'password_reset' }])
})

test('closing the stores: memory forgets its windows; the fallback closes both of its stores', async () => {
  const clock = new TestClock()
  const memory = createMemoryCounterStore(clock.now)
  assert.equal(memory.kind, 'memory')
  await memory.hit('k', MINUTE)
  await memory.close()
  assert.equal((await memory.hit('k', MINUTE)).count, 1)
  await memory.close()

  const closed: string[] = []
  const named = (kind: 'memory' | 'redis'): CounterStore => ({
    kind,
    hit: async () => ({ count: 1, resetMs: MINUTE }),
    takeBack: async () => {},
    reset: async () => {},
    close: async () => {
      closed.push(kind)
    },
  })
  const fallback = createFallbackCounterStore(named('redis'), named('memory'), {
    available: true,
    failed() {},
  })
  await fallback.close()
  assert.deepEqual(closed.sort(), ['memory', 'redis'])
})

test('limitAttempt: with the limits off nothing is counted and nothing refused; past a limit, 429 saying when to retry', async () => {
  const { store, keys } = recordingCounters(new TestClock())
  const off = createAttemptLimits({
    limits: { enabled: false, attemptWindowMs: MINUTE, attemptsPerIp: 1, attemptsPerAccount: 1 },
    counters: store,
    count: () => {},
  })
  for (let i = 0; i < 3; i++) await limitAttempt(off, { ip: '192.0.2.1', log: silentLog }, 'second_factor', 7)
  assert.deepEqual(keys, [])

  const on = createAttemptLimits({
    limits: { enabled: true, attemptWindowMs: MINUTE, attemptsPerIp: 10, attemptsPerAccount: 1 },
    counters: store,
    count: () => {},
  })
  await limitAttempt(on, { ip: '192.0.2.1', log: silentLog }, 'second_factor', 7)
  await assert.rejects(
    limitAttempt(on, { ip: '192.0.2.1', log: silentLog }, 'second_factor', 7),
    (error: unknown) => {
      assert.ok(error instanceof DomainError)
      assert.deepEqual(
        [error.kind, error.detail, error.facts.retryAfterSeconds],
        [
          'too_many_attempts',
          'Too many second-factor attempts for this account; try again in 60 seconds.',
          60,
        ],
      )
      return true
    },
  )
})

test('each refusal names its attempt, and whether the address or the account reached its limit', () => {
  const names: [AttemptKind, string][] = [
    ['login', 'login'],
    ['register', 'registration'],
    ['refresh', 'token refresh'],
    ['password_recovery', 'password recovery'],
    ['password_reset', 'password reset'],
    ['verify_email', 'email verification'],
    ['verify_email_resend', 'verification email'],
    ['second_factor', 'second-factor'],
    ['reauthenticate', 're-authentication'],
    ['passkey_login', 'passkey login'],
    ['external_login', 'sign-in code'],
  ]
  for (const [kind, name] of names) {
    const fromAddress = attemptRefused(kind, { scope: 'ip', resetSeconds: 42 })
    assert.equal(fromAddress.detail, `Too many ${name} attempts from this address; try again in 42 seconds.`)
    assert.equal(fromAddress.facts.retryAfterSeconds, 42)
    // Only logins forgive a success, so only they count failures.
    const failed = kind === 'login' ? 'failed ' : ''
    assert.equal(
      attemptRefused(kind, { scope: 'account', resetSeconds: 7 }).detail,
      `Too many ${failed}${name} attempts for this account; try again in 7 seconds.`,
    )
  }
})
