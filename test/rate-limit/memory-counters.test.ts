/** The memory counters keep only windows that have not ended: swept at a hit, every 30 s of their clock. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMemoryCounterStore, SWEEP_INTERVAL_MS } from '../../src/rate-limit/counters.js'
import { SECOND, TestClock } from '../support/clock.js'

test('ended windows are dropped at the first hit a sweep interval after the last sweep, live ones kept', async () => {
  const clock = new TestClock()
  const start = clock.now()
  const counters = createMemoryCounterStore(clock.now)
  await counters.hit('short', SECOND)
  await counters.hit('long', 10 * SWEEP_INTERVAL_MS)
  await counters.hit('exact', SWEEP_INTERVAL_MS) // ends exactly when the next sweep runs
  assert.equal(counters.size, 3)
  clock.set(start + SWEEP_INTERVAL_MS - 1)
  await counters.hit('other', SECOND)
  assert.equal(counters.size, 4, 'no sweep yet: "short" has ended but is still held')
  clock.set(start + SWEEP_INTERVAL_MS)
  await counters.hit('another', SECOND)
  assert.equal(
    counters.size,
    3,
    '"short" and "exact" ended and were dropped; "long", "other" and "another" are live',
  )
  assert.equal((await counters.hit('long', 10 * SWEEP_INTERVAL_MS)).count, 2, 'a live window keeps its count')
  // The next sweep is an interval after this one, not after the first.
  clock.set(start + 2 * SWEEP_INTERVAL_MS - 1)
  await counters.hit('x', SECOND)
  assert.equal(counters.size, 4)
  clock.set(start + 2 * SWEEP_INTERVAL_MS)
  await counters.hit('y', SECOND)
  assert.equal(counters.size, 3, '"other" and "another" dropped; "long", "x" and "y" live')
  await counters.close()
  assert.equal(counters.size, 0)
})
