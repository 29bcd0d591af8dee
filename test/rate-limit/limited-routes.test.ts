/**
 * Rate limits on the other limited routes, on every engine: registration, refresh, password
 * recovery, reset, email verification and its resend, each per address and (where there is one)
 * per account.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, bearer, describeEachEngine, uniqueUser } from '../support/app.js'
import {
  LIMITS_ON,
  WINDOW_SECONDS,
  assertTooMany,
  createUser,
  freshAddress,
  loginPair,
  neverIssued,
} from './support.js'

// ------------------------------------------------------------------ the other limited routes

const ROUTE_LIMIT = 3

describeEachEngine(
  'rate limits: registration, refresh, recovery, reset, verification, resend',
  (ctx) => {
    test('registration: one email from many addresses, and many emails from one address', async () => {
      const user = uniqueUser()
      const statuses: number[] = []
      for (let attempt = 1; attempt <= ROUTE_LIMIT + 1; attempt += 1) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/users/',
          remoteAddress: freshAddress(),
          payload: { ...uniqueUser(), email: attempt % 2 ? user.email : user.email.toUpperCase() },
        })
        statuses.push(response.statusCode)
        if (attempt > ROUTE_LIMIT) assertTooMany(response, ROUTE_LIMIT, WINDOW_SECONDS)
      }
      assert.deepEqual(statuses, [201, 409, 409, 429])

      const address = freshAddress()
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/users/',
          remoteAddress: address,
          payload: uniqueUser(),
        })
        assert.equal(response.statusCode, 201, response.body)
      }
      const refused = uniqueUser()
      assertTooMany(
        await ctx.app.inject({ method: 'POST', url: '/users/', remoteAddress: address, payload: refused }),
        ROUTE_LIMIT,
        WINDOW_SECONDS,
      )
      // Refused before anything was created: the same registration works from elsewhere.
      const elsewhere = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        remoteAddress: freshAddress(),
        payload: refused,
      })
      assert.equal(elsewhere.statusCode, 201, elsewhere.body)
    })

    test('refresh: guessing tokens from one address is stopped, and a real token gets 429 too', async () => {
      const pair = await loginPair(ctx.app, await createUser(ctx.app))
      const address = freshAddress()
      const refresh = (token: string, remoteAddress: string) =>
        ctx.app.inject({
          method: 'POST',
          url: '/token/refresh',
          remoteAddress,
          payload: { refresh_token: token },
        })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assertProblem(await refresh(neverIssued(), address), 401)
      assertTooMany(await refresh(pair.refresh_token, address), ROUTE_LIMIT, WINDOW_SECONDS)
      // The refused request did not spend the token.
      const response = await refresh(pair.refresh_token, freshAddress())
      assert.equal(response.statusCode, 200, response.body)
    })

    test('password recovery: one email from many addresses, and one address for many emails', async () => {
      const user = await createUser(ctx.app)
      const recover = (email: string, remoteAddress: string) =>
        ctx.app.inject({ method: 'POST', url: '/password-recovery', remoteAddress, payload: { email } })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assert.equal((await recover(user.email, freshAddress())).statusCode, 202)
      assertTooMany(await recover(user.email.toUpperCase(), freshAddress()), ROUTE_LIMIT, WINDOW_SECONDS)

      const address = freshAddress()
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assert.equal((await recover(uniqueUser().email, address)).statusCode, 202)
      assertTooMany(await recover(uniqueUser().email, address), ROUTE_LIMIT, WINDOW_SECONDS)
    })

    test('reset-password and verify-email: guessing tokens from one address is stopped', async () => {
      const routes = [
        {
          url: '/reset-password',
          payload: () => ({ token: neverIssued(), new_password: 'a new long passphrase' }),
        },
        { url: '/verify-email', payload: () => ({ token: neverIssued() }) },
      ]
      for (const { url, payload } of routes) {
        const address = freshAddress()
        for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
          const response = await ctx.app.inject({
            method: 'POST',
            url,
            remoteAddress: address,
            payload: payload(),
          })
          assertProblem(response, 400)
        }
        const response = await ctx.app.inject({
          method: 'POST',
          url,
          remoteAddress: address,
          payload: payload(),
        })
        assertTooMany(response, ROUTE_LIMIT, WINDOW_SECONDS)
        // Another address is not affected.
        const other = await ctx.app.inject({
          method: 'POST',
          url,
          remoteAddress: freshAddress(),
          payload: payload(),
        })
        assertProblem(other, 400)
      }
    })

    test('verify-email/resend: limited per account, whatever the address', async () => {
      const user = await createUser(ctx.app)
      const { access_token: token } = await loginPair(ctx.app, user)
      const resend = () =>
        ctx.app.inject({
          method: 'POST',
          url: '/verify-email/resend',
          remoteAddress: freshAddress(),
          headers: bearer(token),
        })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
        const response = await resend()
        assert.equal(response.statusCode, 202, response.body)
      }
      assertTooMany(await resend(), ROUTE_LIMIT, WINDOW_SECONDS)
      // Someone else is not affected.
      const other = await loginPair(ctx.app, await createUser(ctx.app))
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/verify-email/resend',
        remoteAddress: freshAddress(),
        headers: bearer(other.access_token),
      })
      assert.equal(response.statusCode, 202, response.body)
    })
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(ROUTE_LIMIT),
      RATE_LIMIT_ATTEMPTS_PER_IP: String(ROUTE_LIMIT),
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  },
)
