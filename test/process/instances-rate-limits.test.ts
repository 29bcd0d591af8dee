/**
 * Several instances, one system: the rate limits count the requests sent to two real server
 * processes on one database and one Redis together, per client address and per account. Every
 * request goes over real HTTP, each test speaking for clients of its own through X-Forwarded-For.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  PER_ACCOUNT,
  PER_MINUTE,
  describeEachDeployment,
  expectStatus,
  newClient,
  registerOn,
  send,
  showingServerOutput,
  startLimitedPair,
  type Instance,
} from './instances-support.js'

describeEachDeployment((deployment) => {
  let a: Instance
  let b: Instance

  before(
    showingServerOutput(async () => {
      ;[a, b] = await startLimitedPair(deployment)
    }),
  )

  test(
    'the per-client limit counts the requests sent to A and to B together, with consistent RateLimit headers',
    showingServerOutput(async () => {
      const client = newClient()
      let lastReset = Infinity
      for (let request = 1; request <= PER_MINUTE; request += 1) {
        const instance = request % 2 ? a : b
        const answer = expectStatus(
          await send(instance, 'GET', '/healthz', { client }),
          200,
          `request ${request}, on ${instance.name}`,
        )
        assert.equal(answer.headers.get('ratelimit-limit'), String(PER_MINUTE), `request ${request}`)
        // One count for both: the remaining allowance goes down by one whichever instance answers.
        assert.equal(
          answer.headers.get('ratelimit-remaining'),
          String(PER_MINUTE - request),
          `request ${request}`,
        )
        const reset = Number(answer.headers.get('ratelimit-reset'))
        assert.ok(
          reset >= 1 && reset <= 60 && reset <= lastReset,
          `ratelimit-reset ${reset} after ${lastReset}`,
        )
        lastReset = reset
      }
      for (const instance of [a, b]) {
        const answer = expectStatus(
          await send(instance, 'GET', '/healthz', { client }),
          429,
          `past the limit, on ${instance.name}`,
        )
        assert.equal(answer.headers.get('ratelimit-limit'), String(PER_MINUTE))
        assert.equal(answer.headers.get('ratelimit-remaining'), '0')
        const retryAfter = Number(answer.headers.get('retry-after'))
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`)
      }
      // Another client behind the same balancer is not held back.
      expectStatus(await send(b, 'GET', '/healthz', { client: newClient() }), 200, 'another client')
    }),
  )

  test(
    'login attempts on one account count together on A and B, whatever address they come from',
    showingServerOutput(async () => {
      const user = await registerOn(a, newClient())
      const statuses: number[] = []
      for (let attempt = 1; attempt <= PER_ACCOUNT + 2; attempt += 1) {
        const form = { username: user.email, password: 'not the password at all' }
        const answer = await send(attempt % 2 ? a : b, 'POST', '/login', { client: newClient(), form })
        statuses.push(answer.status)
      }
      assert.deepEqual(statuses, [...Array<number>(PER_ACCOUNT).fill(401), 429, 429])
      // Now even the right password is held back, on both.
      for (const instance of [a, b]) {
        const form = { username: user.email, password: user.password }
        const answer = expectStatus(
          await send(instance, 'POST', '/login', { client: newClient(), form }),
          429,
          `the right password, on ${instance.name}`,
        )
        assert.equal(answer.headers.get('ratelimit-limit'), String(PER_ACCOUNT))
        assert.equal(answer.headers.get('ratelimit-remaining'), '0')
        assert.ok(Number(answer.headers.get('retry-after')) >= 1)
      }
    }),
  )
})
