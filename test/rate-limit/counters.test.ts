/**
 * The counters and the attempt limits on a clock the test moves: windows end to the millisecond,
 * verdicts name the tighter limit, and a Redis that fails hands over to this instance's counters
 * (each branch without a Redis).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  createFallbackCounterStore,
  createMemoryCounterStore,
  type CounterStore,
} from '../../src/rate-limit/counters.js'
import { attemptRefused, createAttemptLimits } from '../../src/services/attempts.js'
import { MINUTE, SECOND, TestClock } from '../support/clock.js'

const WINDOW = MINUTE
const silentLog = { debug() {}, info() {}, warn() {}, error() {} }

test('memory counters: one window per key, from its first hit to the millisecond', async () => {
  const clock = new TestClock()
  const counters = createMemoryCounterStore(clock.now)
  const start = clock.now()
  assert.deepEqual(await counters.hit('a', WINDOW), { count: 1, resetMs: WINDOW })
  clock.set(start + WINDOW - 1)
  assert.deepEqual(await counters.hit('a', WINDOW), { count: 2, resetMs: 1 })
  assert.deepEqual(await counters.hit('b', WINDOW), { count: 1, resetMs: WINDOW }, 'another key')
  clock.set(start + WINDOW)
  assert.deepEqual(await counters.hit('a', WINDOW), { count: 1, resetMs: WINDOW }, 'a new window')
  await counters.close()
})

function failingStore(): CounterStore & { calls: number } {
  const store = {
    kind: 'redis' as const,
    calls: 0,
    hit: () => fail(),
    takeBack: () => fail(),
    reset: () => fail(),
    async close() {},
  }
  const fail = async (): Promise<never> => {
    store.calls += 1
    throw new Error('redis: connection reset')
  }
  return store
}

test('fallback: a failing Redis store hands the hit to the memory counters and tells the monitor', async () => {
  const clock = new TestClock()
  const primary = failingStore()
  const told: unknown[] = []
  const monitor = { available: true, failed: (error: unknown) => told.push(error) }
  const store = createFallbackCounterStore(primary, createMemoryCounterStore(clock.now), monitor)
  assert.equal(store.kind, 'redis')
  assert.equal((await store.hit('k', WINDOW)).count, 1)
  assert.equal((await store.hit('k', WINDOW)).count, 2, 'counted, never "no limit"')
  assert.equal(primary.calls, 2)
  assert.equal(told.length, 2)
  // Once the monitor says Redis is down, hits go straight to the fallback.
  monitor.available = false
  assert.equal((await store.hit('k', WINDOW)).count, 3)
  assert.equal(primary.calls, 2)
  await store.close()
})

function attemptLimits(clock: TestClock, limits = { attemptsPerIp: 5, attemptsPerAccount: 3 }) {
  const lockouts: string[] = []
  const attempts = createAttemptLimits({
    limits: { enabled: true, attemptWindowMs: WINDOW, ...limits },
    counters: createMemoryCounterStore(clock.now),
    count: (event) => lockouts.push(event),
  })
  return { attempts, lockouts, context: (ip: string) => ({ ip, log: silentLog }) }
}

test('attempts: the account limit refuses past its count until the window ends, whatever the address', async () => {
  const clock = new TestClock()
  const start = clock.now()
  const { attempts, lockouts, context } = attemptLimits(clock)
  const verdicts = []
  for (let i = 0; i < 5; i++)
    verdicts.push(await attempts.count(context(`192.0.2.${i}`), 'login', 'victim@example.com'))
  assert.deepEqual(
    verdicts.map((verdict) => [verdict!.limit, verdict!.remaining, verdict!.refused, verdict!.firstRefusal]),
    [
      [3, 2, false, false],
      [3, 1, false, false],
      [3, 0, false, false],
      [3, -1, true, true],
      [3, -2, true, false],
    ],
  )
  assert.deepEqual(lockouts, ['lockout'], 'one lockout per window')
  clock.set(start + WINDOW - SECOND)
  const last = await attempts.count(context('192.0.2.99'), 'login', 'victim@example.com')
  assert.equal(last!.refused, true)
  assert.equal(last!.resetSeconds, 1)
  clock.set(start + WINDOW)
  const fresh = await attempts.count(context('192.0.2.99'), 'login', 'victim@example.com')
  assert.deepEqual([fresh!.refused, fresh!.remaining, fresh!.resetSeconds], [false, 2, 60])
})

test('attempts: each kind and each account counts apart; the address limit covers every account', async () => {
  const clock = new TestClock()
  const { attempts, lockouts, context } = attemptLimits(clock)
  const ip = '198.51.100.7'
  for (let i = 0; i < 3; i++) await attempts.count(context(ip), 'login', `user${i}@example.com`)
  const other = await attempts.count(context(ip), 'password_reset', 'user0@example.com')
  assert.equal(other!.remaining, 2, 'another kind has its own counters')
  const fourth = await attempts.count(context(ip), 'login', 'user3@example.com')
  assert.deepEqual([fourth!.limit, fourth!.remaining], [5, 1], 'the address limit is now the tighter')
  await attempts.count(context(ip), 'login', 'user4@example.com')
  const sixth = await attempts.count(context(ip), 'login', 'user5@example.com')
  assert.deepEqual([sixth!.limit, sixth!.refused, sixth!.firstRefusal], [5, true, true])
  assert.deepEqual(lockouts, [], 'an address refused is no account lockout')
  const anonymous = await attempts.count(context('203.0.113.1'), 'register', undefined)
  assert.deepEqual([anonymous!.limit, anonymous!.remaining], [5, 4], 'no account: the address alone')
  const empty = await attempts.count(context('203.0.113.2'), 'login', '')
  assert.deepEqual([empty!.limit, empty!.remaining], [5, 4], 'an empty name is no account')
})

test('attempts: IPv6 addresses of one /64 share a counter; limits off answer nothing', async () => {
  const clock = new TestClock()
  const { attempts, context } = attemptLimits(clock, { attemptsPerIp: 2, attemptsPerAccount: 10 })
  await attempts.count(context('2001:db8:1:2::1'), 'register', undefined)
  const second = await attempts.count(context('2001:db8:1:2:ffff::9'), 'register', undefined)
  assert.equal(second!.remaining, 0)
  const off = createAttemptLimits({
    limits: { enabled: false, attemptWindowMs: WINDOW, attemptsPerIp: 1, attemptsPerAccount: 1 },
    counters: createMemoryCounterStore(clock.now),
    count: () => {},
  })
  assert.equal(await off.count(context('192.0.2.1'), 'login', 'x'), undefined)
})

test('memory counters: a hit taken back leaves the window, never below zero; a reset starts it again', async () => {
  const clock = new TestClock()
  const counters = createMemoryCounterStore(clock.now)
  const start = clock.now()
  await counters.hit('a', WINDOW)
  await counters.hit('a', WINDOW)
  await counters.takeBack('a')
  clock.set(start + 10 * SECOND)
  assert.deepEqual(
    await counters.hit('a', WINDOW),
    { count: 2, resetMs: WINDOW - 10 * SECOND },
    'same window',
  )
  await counters.takeBack('a')
  await counters.takeBack('a')
  await counters.takeBack('a')
  assert.deepEqual(
    await counters.hit('a', WINDOW),
    { count: 1, resetMs: WINDOW - 10 * SECOND },
    'not below zero',
  )
  await counters.takeBack('never hit')
  assert.deepEqual(await counters.hit('never hit', WINDOW), { count: 1, resetMs: WINDOW })
  // A window that has ended is left alone: the next hit opens a new one.
  await counters.hit('b', WINDOW)
  clock.set(start + 10 * SECOND + WINDOW)
  await counters.takeBack('a')
  assert.deepEqual(await counters.hit('a', WINDOW), { count: 1, resetMs: WINDOW })
  await counters.hit('b', WINDOW)
  await counters.reset('b')
  assert.deepEqual(await counters.hit('b', WINDOW), { count: 1, resetMs: WINDOW }, 'reset: a new window')
  await counters.close()
})

test('fallback: taking back and resetting go to the memory counters while Redis fails', async () => {
  const clock = new TestClock()
  const primary = failingStore()
  const told: unknown[] = []
  const monitor = { available: true, failed: (error: unknown) => told.push(error) }
  const store = createFallbackCounterStore(primary, createMemoryCounterStore(clock.now), monitor)
  await store.hit('k', WINDOW)
  await store.hit('k', WINDOW)
  await store.takeBack('k')
  assert.equal((await store.hit('k', WINDOW)).count, 2)
  await store.reset('k')
  assert.equal((await store.hit('k', WINDOW)).count, 1)
  assert.deepEqual([primary.calls, told.length], [6, 6])
  monitor.available = false
  await store.takeBack('k')
  await store.reset('k')
  assert.equal(primary.calls, 6, 'straight to the fallback once Redis is known down')
  assert.equal((await store.hit('k', WINDOW)).count, 1)
})

test('attempts: a login that succeeds is forgiven: taken back from the address, the account cleared', async () => {
  const clock = new TestClock()
  const { attempts, lockouts, context } = attemptLimits(clock, { attemptsPerIp: 6, attemptsPerAccount: 3 })
  const ip = context('192.0.2.50')
  // Two failures, then a success: the account starts again from zero; the address keeps its two.
  await attempts.count(ip, 'login', 'carol')
  await attempts.count(ip, 'login', 'carol')
  await attempts.count(ip, 'login', 'carol')
  await attempts.succeeded(ip, 'login', 'carol')
  const next = await attempts.count(ip, 'login', 'carol')
  assert.deepEqual([next!.scope, next!.limit, next!.remaining], ['account', 3, 2])
  await attempts.succeeded(ip, 'login', 'carol')
  // Any number of successes: never refused.
  for (let i = 0; i < 10; i++) {
    const verdict = await attempts.count(ip, 'login', 'carol')
    assert.equal(verdict!.refused, false, `success ${i + 1}`)
    await attempts.succeeded(ip, 'login', 'carol')
  }
  // The address's two failures stay: four more and the next is refused, naming the address.
  for (const name of ['dave', 'erin', 'grace', 'heidi'])
    assert.equal((await attempts.count(ip, 'login', name))!.refused, false, name)
  const refused = await attempts.count(ip, 'login', 'ivan')
  assert.deepEqual([refused!.scope, refused!.limit, refused!.refused], ['ip', 6, true])
  assert.deepEqual(lockouts, [])
})

test('attempts: other kinds count every attempt, successes too; limits off count nothing', async () => {
  const clock = new TestClock()
  const { attempts, context } = attemptLimits(clock, { attemptsPerIp: 10, attemptsPerAccount: 2 })
  const ip = context('192.0.2.60')
  for (const kind of ['second_factor', 'password_reset', 'reauthenticate'] as const) {
    await attempts.count(ip, kind, 7)
    await attempts.succeeded(ip, kind, 7)
    await attempts.count(ip, kind, 7)
    await attempts.succeeded(ip, kind, 7)
    const third = await attempts.count(ip, kind, 7)
    assert.deepEqual([third!.scope, third!.refused], ['account', true], kind)
  }
  const off = createAttemptLimits({
    limits: { enabled: false, attemptWindowMs: WINDOW, attemptsPerIp: 1, attemptsPerAccount: 1 },
    counters: {
      kind: 'memory',
      hit: () => assert.fail('hit'),
      takeBack: () => assert.fail('takeBack'),
      reset: () => assert.fail('reset'),
      close: async () => {},
    },
    count: () => {},
  })
  await off.succeeded(ip, 'login', 'carol')
})

test('attempts: the refusal names the limit that was reached, and what kind of attempt', async () => {
  const clock = new TestClock()
  const { attempts, context } = attemptLimits(clock, { attemptsPerIp: 2, attemptsPerAccount: 2 })
  const ip = context('192.0.2.70')
  await attempts.count(ip, 'login', 'frank')
  await attempts.count(ip, 'login', 'frank')
  // A tie (both limits spent together): the address is named.
  const tie = await attempts.count(ip, 'login', 'frank')
  assert.equal(tie!.scope, 'ip')
  const detail = (kind: Parameters<typeof attemptRefused>[0], scope: 'ip' | 'account') =>
    attemptRefused(kind, { scope, resetSeconds: 42 }).detail
  assert.equal(
    detail('login', 'account'),
    'Too many failed login attempts for this account; try again in 42 seconds.',
  )
  assert.equal(detail('login', 'ip'), 'Too many login attempts from this address; try again in 42 seconds.')
  assert.equal(
    detail('register', 'ip'),
    'Too many registration attempts from this address; try again in 42 seconds.',
  )
  assert.equal(
    detail('password_recovery', 'account'),
    'Too many password recovery attempts for this account; try again in 42 seconds.',
  )
  const error = attemptRefused('refresh', { scope: 'ip', resetSeconds: 42 })
  assert.deepEqual([error.kind, error.facts.retryAfterSeconds], ['too_many_attempts', 42])
})
