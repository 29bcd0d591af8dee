/**
 * The idempotent creation on its own, over a stand-in key store: the fingerprint's exact form
 * (keys stored before an upgrade must keep matching their retries), and each way a claimed key
 * answers a retry — replayed, still in progress, another body, expired, contended — including the
 * paths only a race reaches.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import type { Repositories } from '../../src/repositories/index.js'
import type { StoredResponse } from '../../src/repositories/idempotency-keys.js'
import { DomainError } from '../../src/services/errors.js'
import {
  IDEMPOTENCY_KEY_LIFETIME_MS,
  requestFingerprint,
  runIdempotently,
} from '../../src/services/idempotency.js'

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

test('the fingerprint is the SHA-256 of the operation and the body as canonical JSON, keys sorted at every depth', () => {
  const body = { price: 1, name: 'x', tags: [2, null, { b: 1, a: [true, 'z'] }], note: null }
  assert.equal(
    requestFingerprint('POST /product/', body),
    sha256('POST /product/\n{"name":"x","note":null,"price":1,"tags":[2,null,{"a":[true,"z"],"b":1}]}'),
  )
  // The order a client wrote its keys in does not matter; the order of a list does.
  assert.equal(
    requestFingerprint('op', { a: 1, b: { d: 2, c: 3 } }),
    requestFingerprint('op', { b: { c: 3, d: 2 }, a: 1 }),
  )
  assert.notEqual(requestFingerprint('op', { a: [1, 2] }), requestFingerprint('op', { a: [2, 1] }))
  assert.notEqual(requestFingerprint('op', { a: 1 }), requestFingerprint('other op', { a: 1 }))
})

const NOW = new Date('2026-01-02T03:04:05.000Z')
const FINGERPRINT = 'fingerprint'
const uniqueViolation = () => Object.assign(new Error('duplicate key'), { code: '23505' })

/**
 * runIdempotently over a key store where the key's claim always fails as taken (unless `claims`
 * says otherwise) and `find` answers `stored`; every call is recorded.
 */
function attempt(options: {
  stored?: (call: number) => StoredResponse | undefined
  claimFails?: () => Error | undefined
  create?: () => Promise<{ status: number; body: unknown }>
}) {
  const calls: string[] = []
  let finds = 0
  const keys = {
    claim: async (_user: number, _key: string, _hash: string, now: Date, expiresAt: Date) => {
      calls.push(`claim ${expiresAt.getTime() - now.getTime()}`)
      const failure = options.claimFails ? options.claimFails() : uniqueViolation()
      if (failure) throw failure
    },
    complete: async (_user: number, _key: string, status: number, body: string) => {
      calls.push(`complete ${status} ${body}`)
    },
    find: async () => {
      calls.push('find')
      // A loop that never ends would hang the test: stop it with a failure instead.
      if (++finds > 10) throw new Error('the retries do not stop')
      return options.stored?.(finds)
    },
    deleteExpired: async () => {
      calls.push('deleteExpired')
    },
  }
  const repos = { idempotencyKeys: keys } as unknown as Repositories
  const outcome = runIdempotently({
    transaction: async (work) => work(repos),
    repos,
    userId: 7,
    key: 'key',
    fingerprint: FINGERPRINT,
    create: options.create ?? (async () => ({ status: 201, body: { id: 1 } })),
    now: () => NOW,
  })
  return { outcome, calls }
}

const stored = (changes: Partial<StoredResponse> = {}): StoredResponse => ({
  request_hash: FINGERPRINT,
  response_status: 201,
  response_body: '{"id":1}',
  expires_at: new Date(NOW.getTime() + 1),
  ...changes,
})

async function refused(promise: Promise<unknown>, kind: string, detail: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DomainError, String(error))
    assert.equal(error.kind, kind)
    assert.equal(error.detail, detail)
    return true
  })
  return (await promise.catch((error: unknown) => error)) as DomainError
}

test('a first request claims the key for its lifetime, creates, and stores the answer', async () => {
  const { outcome, calls } = attempt({ claimFails: () => undefined })
  assert.deepEqual(await outcome, { replayed: false, status: 201, body: { id: 1 } })
  assert.deepEqual(calls, [`claim ${IDEMPOTENCY_KEY_LIFETIME_MS}`, 'complete 201 {"id":1}'])
})

test('a retry of a completed request replays the stored answer', async () => {
  const { outcome } = attempt({ stored: () => stored() })
  assert.deepEqual(await outcome, { replayed: true, status: 201, body: { id: 1 } })
})

test('a retry while the first request is still in progress: 409 saying to retry shortly, for either missing half', async () => {
  for (const changes of [{ response_status: null }, { response_body: null }]) {
    const { outcome } = attempt({ stored: () => stored(changes) })
    const error = await refused(
      outcome,
      'conflict',
      'A request with this Idempotency-Key is still being processed; retry shortly.',
    )
    assert.equal(error.facts.retryAfterSeconds, 1)
  }
})

test('the key used with another body: 422 naming the header, word for word', async () => {
  const { outcome } = attempt({ stored: () => stored({ request_hash: 'another fingerprint' }) })
  const error = await refused(
    outcome,
    'invalid_input',
    'This Idempotency-Key was used with a different request body.',
  )
  assert.deepEqual(error.facts.issues, [
    { in: 'header', field: 'idempotency-key', message: 'was already used for another request' },
  ])
})

test('a key that expires at this very moment is expired: deleted and claimed again', async () => {
  const { outcome, calls } = attempt({
    stored: (call) => (call === 1 ? stored({ expires_at: NOW }) : stored()),
  })
  assert.deepEqual(await outcome, { replayed: true, status: 201, body: { id: 1 } })
  assert.deepEqual(
    calls.filter((call) => !call.startsWith('claim')),
    ['find', 'deleteExpired', 'find'],
  )
})

test('a key that stays expired and taken through three tries: 409 "contended", after exactly three claims', async () => {
  const { outcome, calls } = attempt({ stored: () => stored({ expires_at: NOW }) })
  const error = await refused(outcome, 'conflict', 'This Idempotency-Key is contended; retry shortly.')
  assert.equal(error.facts.retryAfterSeconds, 1)
  assert.equal(calls.filter((call) => call.startsWith('claim')).length, 3)
})

test('a failure that is not a taken key is the failure itself, without reading the key', async () => {
  const failure = new Error('the database is gone')
  const { outcome, calls } = attempt({ claimFails: () => failure })
  await assert.rejects(outcome, (error) => error === failure)
  assert.deepEqual(calls, [`claim ${IDEMPOTENCY_KEY_LIFETIME_MS}`])
})

test('a unique violation of the creation itself (the key is free) is that violation, not an idempotency answer', async () => {
  const taken = uniqueViolation()
  const { outcome, calls } = attempt({
    claimFails: () => undefined,
    create: async () => Promise.reject(taken),
    stored: () => undefined,
  })
  await assert.rejects(outcome, (error) => error === taken)
  assert.deepEqual(calls, [`claim ${IDEMPOTENCY_KEY_LIFETIME_MS}`, 'find'])
})
