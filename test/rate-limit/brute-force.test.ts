/**
 * Rate limits against brute force on /login, on every engine: one account from one address and
 * from many (127.0.0.2…), failures counted and successes not, one address spraying many accounts,
 * the limit checked before any lookup,
 * spoofed forwarding headers, rotation through an IPv6 /64, and a block that ends by itself.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../support/app.js'
import {
  LIMITS_ON,
  WINDOW_SECONDS,
  assertTooMany,
  attemptLogin,
  createUser,
  freshAddress,
  integerHeader,
  metric,
  nextAddressNumber,
  until,
} from './support.js'

// ------------------------------------------------------------------ login: brute force

const PER_ACCOUNT = 5
const PER_IP = 8

describeEachEngine(
  'rate limits: brute force on /login',
  (ctx) => {
    test('one address, one account: 429 after the limit, with Retry-After and RateLimit headers', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const hitsBefore = await metric(ctx.app, 'rate_limit_hits_total', { route: '/login' })
      const eventsBefore = await metric(ctx.app, 'auth_events_total', { event: 'rate_limited' })
      const lockoutsBefore = await metric(ctx.app, 'auth_events_total', { event: 'lockout' })
      // The same account however its name is written: trimmed, any case.
      const spellings = [user.email, user.email.toUpperCase(), ` ${user.email} `]
      for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1) {
        const response = await attemptLogin(ctx.app, spellings[attempt % 3]!, 'wrong password', address)
        assertProblem(response, 401)
        assert.equal(integerHeader(response, 'ratelimit-limit'), PER_ACCOUNT)
        assert.equal(integerHeader(response, 'ratelimit-remaining'), PER_ACCOUNT - attempt)
      }
      const blocked = await attemptLogin(ctx.app, user.email, 'wrong password', address)
      assertTooMany(blocked, PER_ACCOUNT, WINDOW_SECONDS)

      // No oracle: the right password gets the same refusal, and no tokens.
      const right = await attemptLogin(ctx.app, user.email, user.password, address)
      const problem = assertTooMany(right, PER_ACCOUNT, WINDOW_SECONDS)
      const { detail: _detail, ...shape } = problem
      const { detail: _other, ...blockedShape } = blocked.json<Record<string, unknown>>()
      assert.deepEqual(shape, blockedShape)

      assert.equal(await metric(ctx.app, 'rate_limit_hits_total', { route: '/login' }), hitsBefore + 2)
      assert.equal(await metric(ctx.app, 'auth_events_total', { event: 'rate_limited' }), eventsBefore + 2)
      assert.equal(await metric(ctx.app, 'auth_events_total', { event: 'lockout' }), lockoutsBefore + 1)
    })

    test("failures only: successes never count, and a success clears the account's failures", async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      // Twice the limit of successful logins in a row (a developer following the README): all 200.
      for (let attempt = 1; attempt <= 2 * PER_ACCOUNT; attempt += 1) {
        const response = await attemptLogin(ctx.app, user.email, user.password, address)
        assert.equal(response.statusCode, 200, `login ${attempt}: ${response.body}`)
      }
      // Mistakes, then the right password, then as many mistakes again: the success cleared them.
      for (let round = 1; round <= 2; round += 1) {
        for (let attempt = 1; attempt < PER_ACCOUNT; attempt += 1)
          assertProblem(await attemptLogin(ctx.app, user.name, 'wrong password', freshAddress()), 401)
        const right = await attemptLogin(ctx.app, user.name, user.password, freshAddress())
        assert.equal(right.statusCode, 200, right.body)
      }
      // Failures alone still lock it: the limit's worth of them, then 429 naming the account.
      for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1)
        assertProblem(await attemptLogin(ctx.app, user.name, 'wrong password', freshAddress()), 401)
      const problem = assertTooMany(
        await attemptLogin(ctx.app, user.name, user.password, freshAddress()),
        PER_ACCOUNT,
        WINDOW_SECONDS,
      )
      assert.match(
        String(problem.detail),
        /^Too many failed login attempts for this account; try again in \d+ seconds\.$/,
      )
    })

    test('the right password of a deactivated account is a failure: it counts and clears nothing', async () => {
      const user = await createUser(ctx.app)
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
      for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1)
        assertProblem(await attemptLogin(ctx.app, user.email, user.password, freshAddress()), 401)
      assertTooMany(
        await attemptLogin(ctx.app, user.email, user.password, freshAddress()),
        PER_ACCOUNT,
        WINDOW_SECONDS,
      )
    })

    test('one account attacked from many addresses (127.0.0.2…127.0.0.20) is stopped by the per-account limit', async () => {
      const user = await createUser(ctx.app)
      const other = await createUser(ctx.app)
      const statuses: number[] = []
      for (let host = 2; host <= 20; host += 1) {
        const response = await attemptLogin(ctx.app, user.name, 'wrong password', `127.0.0.${host}`)
        statuses.push(response.statusCode)
        if (host - 1 > PER_ACCOUNT) assertTooMany(response, PER_ACCOUNT, WINDOW_SECONDS)
      }
      assert.deepEqual(statuses, [...Array(PER_ACCOUNT).fill(401), ...Array(19 - PER_ACCOUNT).fill(429)])
      // The right password from yet another address: still refused while the block lasts.
      assertTooMany(
        await attemptLogin(ctx.app, user.name, user.password, '127.0.0.21'),
        PER_ACCOUNT,
        WINDOW_SECONDS,
      )
      // The addresses themselves are not blocked: another account logs in from one of them.
      const response = await attemptLogin(ctx.app, other.email, other.password, '127.0.0.20')
      assert.equal(response.statusCode, 200, response.body)
    })

    test('one address spraying many accounts is stopped by the per-IP limit', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const response = await attemptLogin(ctx.app, `nobody-${attempt}-${user.name}`, 'guess', address)
        assertProblem(response, 401)
        assert.equal(
          integerHeader(response, 'ratelimit-remaining'),
          Math.min(PER_ACCOUNT - 1, PER_IP - attempt),
        )
      }
      // A real account with its right password, from the sprayer: refused, naming the address.
      const problem = assertTooMany(
        await attemptLogin(ctx.app, user.email, user.password, address),
        PER_IP,
        WINDOW_SECONDS,
      )
      assert.match(
        String(problem.detail),
        /^Too many login attempts from this address; try again in \d+ seconds\.$/,
      )
      // The account itself is not blocked: its owner logs in from elsewhere.
      const response = await attemptLogin(ctx.app, user.email, user.password, freshAddress())
      assert.equal(response.statusCode, 200, response.body)
    })

    test('the limit is checked before the account is looked up or any password hashed', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const users = ctx.app.repos.users
      const original = users.findCredentialsByLogin
      let lookups = 0
      users.findCredentialsByLogin = (async (...args: Parameters<typeof original>) => {
        lookups += 1
        return original.apply(users, args)
      }) as typeof original
      try {
        for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1)
          assertProblem(await attemptLogin(ctx.app, user.email, 'wrong password', address), 401)
        assert.equal(lookups, PER_ACCOUNT)
        for (const password of ['wrong password', user.password, 'another guess'])
          assertTooMany(
            await attemptLogin(ctx.app, user.email, password, address),
            PER_ACCOUNT,
            WINDOW_SECONDS,
          )
        assert.equal(lookups, PER_ACCOUNT, 'a refused attempt reached the account lookup')
      } finally {
        users.findCredentialsByLogin = original
      }
    })

    test('spoofed X-Forwarded-For / X-Real-IP / Forwarded neither reset nor dodge the counter', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const spoof = (attempt: number) => ({
        'x-forwarded-for': `203.0.113.${attempt}`,
        'x-real-ip': `203.0.113.${attempt + 100}`,
        forwarded: `for=203.0.113.${attempt + 200}`,
      })
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const response = await attemptLogin(
          ctx.app,
          `nobody-${attempt}-${user.name}`,
          'guess',
          address,
          spoof(attempt),
        )
        assertProblem(response, 401)
        // One counter, whatever the headers say: it only goes down. (The headers tell the tighter
        // limit: each account is fresh, so the account's until the address has fewer left.)
        assert.equal(
          integerHeader(response, 'ratelimit-remaining'),
          Math.min(PER_ACCOUNT - 1, PER_IP - attempt),
        )
      }
      for (const headers of [spoof(50), spoof(51), {}, { 'x-forwarded-for': address }] as Record<
        string,
        string
      >[])
        assertTooMany(
          await attemptLogin(ctx.app, user.email, user.password, address, headers),
          PER_IP,
          WINDOW_SECONDS,
        )
    })

    test('rotating through the addresses of one IPv6 /64 does not dodge the per-IP limit', async () => {
      const user = await createUser(ctx.app)
      const network = `2001:db8:${nextAddressNumber().toString(16)}:7`
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const address = `${network}::${attempt.toString(16)}`
        assertProblem(await attemptLogin(ctx.app, `nobody-${attempt}-${user.name}`, 'guess', address), 401)
      }
      assertTooMany(
        await attemptLogin(ctx.app, user.email, user.password, `${network}:ffff:ffff:ffff:ffff`),
        PER_IP,
        WINDOW_SECONDS,
      )
      // The next /64 is someone else.
      const response = await attemptLogin(ctx.app, user.email, user.password, `${network.slice(0, -1)}8::1`)
      assert.equal(response.statusCode, 200, response.body)
    })
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
      RATE_LIMIT_ATTEMPTS_PER_IP: String(PER_IP),
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  },
)

// ------------------------------------------------------------------ the block ends by itself

const SHORT_WINDOW = 2

describeEachEngine(
  'rate limits: a block ends by itself',
  (ctx) => {
    test(
      'after the window, the right password works again (bounded polling)',
      { timeout: 30_000 },
      async () => {
        const user = await createUser(ctx.app)
        const address = freshAddress()
        // Fast enough to fill the window before it ends; polled, so a slow machine only waits longer.
        await until(
          async () => (await attemptLogin(ctx.app, user.email, 'wrong password', address)).statusCode === 429,
          'the account is blocked',
        )
        const blocked = await attemptLogin(ctx.app, user.email, user.password, address)
        assertTooMany(blocked, 2, SHORT_WINDOW)
        await until(async () => {
          const response = await attemptLogin(ctx.app, user.email, user.password, address)
          if (response.statusCode !== 429) assert.equal(response.statusCode, 200, response.body)
          return response.statusCode === 200
        }, 'the block to lift')
      },
    )
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: '2',
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(SHORT_WINDOW),
    },
  },
)
