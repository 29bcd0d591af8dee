/**
 * Several instances, one system: two real server processes
 * (`node --import tsx src/server.ts`) on different ports, on one database and one Redis, behave
 * as one. A token from one works on the other; a logout or a refresh-token replay on one is
 * refused by the other on the very next request; a rate limit counts the requests sent to both;
 * and killing one instance under load leaves the other serving without a single failed request.
 *
 * Every request goes over real HTTP. The instances trust 127.0.0.1 as their load balancer
 * (TRUST_PROXY), so that each test speaks for clients of its own through X-Forwarded-For: one
 * test's requests never use up another test's rate limit.
 *
 * This file: tokens, sessions and data are the same on both instances. The rate limits across
 * instances are in instances-rate-limits.test.ts, an instance killed under load in
 * instances-kill.test.ts; what they share is in instances-support.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, test } from 'node:test'
import { uniqueSku } from '../support/app.js'
import {
  describeEachDeployment,
  expectAccepted,
  expectRefused,
  expectStatus,
  loginOn,
  missing,
  newClient,
  refresh,
  refreshOk,
  registerOn,
  send,
  showingServerOutput,
  startLimitedPair,
  type Instance,
} from './instances-support.js'

if (missing.length > 0 && process.env.CI)
  test('CI gives this test PostgreSQL and Redis', () =>
    assert.fail(`${missing.join(' and ')} must be set in CI: two instances need a shared database and Redis`))

describeEachDeployment((deployment) => {
  let a: Instance
  let b: Instance

  before(
    showingServerOutput(async () => {
      ;[a, b] = await startLimitedPair(deployment)
    }),
  )

  test(
    'a token from A works on B: the user, products, retries and list cursors are the same on both',
    showingServerOutput(async () => {
      const client = newClient()
      const user = await registerOn(a, client)
      const { access_token: token } = await loginOn(a, client, user)

      await expectAccepted(b, client, token, user.id, 'a token from A, on B')

      const product = { product_id: uniqueSku(), name: 'Made on B', price: 1250 }
      const idempotency = { 'idempotency-key': `instances-${randomBytes(8).toString('hex')}` }
      const created = expectStatus(
        await send(b, 'POST', '/product/', { client, token, json: product, headers: idempotency }),
        201,
        'create on B',
      )
      assert.equal(created.body.owner_id, user.id)
      const read = expectStatus(
        await send(a, 'GET', `/product/${created.body.id}`, { client, token }),
        200,
        'read on A',
      )
      assert.deepEqual(read.body, created.body)
      assert.equal(read.headers.get('etag'), created.headers.get('etag'))

      // The client's retry reaches the other instance: the same answer, no second product.
      const retried = expectStatus(
        await send(a, 'POST', '/product/', { client, token, json: product, headers: idempotency }),
        201,
        'the same request retried on A',
      )
      assert.deepEqual(retried.body, created.body)

      // A cursor from A continues the list on B (cursors are signed with the shared SECRET_KEY).
      const second = { product_id: uniqueSku(), name: 'Made on A', price: 1300 }
      expectStatus(await send(a, 'POST', '/product/', { client, token, json: second }), 201, 'create on A')
      const filter = `owner_id=${user.id}&sort=price&limit=1`
      const first = expectStatus(
        await send(a, 'GET', `/product/?${filter}`, { client, token }),
        200,
        'page 1 on A',
      )
      assert.deepEqual(
        first.body.items.map((item: { product_id: string }) => item.product_id),
        [product.product_id],
      )
      const cursor = encodeURIComponent(first.body.next_cursor as string)
      const next = expectStatus(
        await send(b, 'GET', `/product/?${filter}&cursor=${cursor}`, { client, token }),
        200,
        'page 2 on B',
      )
      assert.deepEqual(
        next.body.items.map((item: { product_id: string }) => item.product_id),
        [second.product_id],
      )
    }),
  )

  test(
    'a logout on A is refused by B on the very next request, for the access and the refresh token',
    showingServerOutput(async () => {
      const client = newClient()
      const user = await registerOn(a, client)
      const session = await loginOn(a, client, user)
      const other = await loginOn(b, client, user)
      await expectAccepted(b, client, session.access_token, user.id, 'before the logout, on B')

      expectStatus(
        await send(a, 'POST', '/logout', { client, token: session.access_token }),
        204,
        'logout on A',
      )

      await expectRefused(b, client, session.access_token, 'the logged-out access token, on B')
      expectStatus(await refresh(b, client, session.refresh_token), 401, 'the logged-out refresh token, on B')
      await expectRefused(a, client, session.access_token, 'the logged-out access token, on A')
      // Only that session ended: the user's other session goes on, on both.
      await expectAccepted(b, client, other.access_token, user.id, 'the other session, on B')
      await expectAccepted(a, client, other.access_token, user.id, 'the other session, on A')
    }),
  )

  test(
    'a refresh token replayed on B after the session moved on ends the session on A and B at once',
    showingServerOutput(async () => {
      const client = newClient()
      const user = await registerOn(a, client)
      const first = await loginOn(a, client, user)
      const bystander = await loginOn(a, client, user)

      const second = await refreshOk(a, client, first.refresh_token)
      await expectAccepted(b, client, second.access_token, user.id, 'the rotated pair, on B')
      // The session moves on (its newest token is used): the first token coming back now is a
      // replay, not a duplicate of the rotation that used it (those are forgiven for 10 s).
      const third = await refreshOk(b, client, second.refresh_token)
      await expectAccepted(a, client, third.access_token, user.id, 'the newest pair, on A')

      expectStatus(await refresh(b, client, first.refresh_token), 401, 'the replayed refresh token, on B')

      await expectRefused(a, client, third.access_token, 'the newest access token after the replay, on A')
      await expectRefused(b, client, third.access_token, 'the newest access token after the replay, on B')
      expectStatus(await refresh(a, client, third.refresh_token), 401, 'the newest refresh token, on A')
      // The user's other session was not touched.
      await expectAccepted(b, client, bystander.access_token, user.id, 'another session, on B')
    }),
  )
})
