import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { buildApp } from '../../../src/app.js'
import { assertProblem, bearer, describeEachEngine, login, register, uniqueUser } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import type { AssertionOverrides, SoftwareAuthenticator } from '../../support/software-authenticator.js'
import { amrOf, challenge, UA, userWithToken } from '../mfa/support.js'
import {
  accountState,
  addPasskey,
  auditOf,
  authenticatorFor,
  CHALLENGE_LIFETIME_MS,
  challengeRows,
  deletePasskey,
  lastEvent,
  mfaPasskeyOptions,
  passkeyLogin,
  passkeyLoginOptions,
  passkeyRows,
  postPasskey,
  postPasskeyLogin,
  registerPasskey,
  registrationOptions,
  RP_ID,
  sessionRows,
  unknownChallenge,
  userWithPasskey,
  withClientData,
  type TokenPairBody,
} from './support.js'

const clock = new TestClock()
const NOT_ACCEPTED = /^The passkey was not accepted: /
/** What a refusal for one of these reasons says after "The passkey was not accepted: ". */
const REFUSAL_DETAILS: Record<string, string> = {
  challenge: 'it does not answer a current login challenge (unknown, used or expired); ask for new options.',
  credential: 'no account has this passkey (it may have been removed).',
  user_handle: 'it does not belong to the account it names.',
  inactive: 'the account is not active.',
}

describeEachEngine(
  'password-less login with a passkey',
  (ctx) => {
    /** 401 as a refused credential, with the reason recorded against the account (if one is known). */
    async function assertRefused(
      response: Awaited<ReturnType<typeof postPasskeyLogin>>,
      reason: string,
      userId: number | null,
    ) {
      const problem = assertProblem(response, 401)
      assert.match(problem.detail, NOT_ACCEPTED)
      const said = REFUSAL_DETAILS[reason]
      if (said !== undefined) assert.equal(problem.detail, `The passkey was not accepted: ${said}`)
      assert.match(String(response.headers['www-authenticate']), /^Bearer realm="api", error="invalid_token"/)
      assert.equal(response.json<Record<string, unknown>>().access_token, undefined)
      assert.deepEqual(await lastEvent(ctx.app, 'passkey_login_failed'), {
        event: 'passkey_login_failed',
        outcome: 'failure',
        user_id: userId,
        details: { reason },
      })
    }

    /** A user whose passkey has logged in once already: its stored counter is 1. */
    async function usedPasskey(authenticator?: SoftwareAuthenticator) {
      clock.set(Date.now())
      const owner = await userWithPasskey(ctx.app, { authenticator })
      const first = await passkeyLogin(ctx.app, owner.authenticator)
      assert.equal(first.statusCode, 200, first.body)
      return owner
    }

    test('options: a challenge of no account, no allowCredentials, user verification required, no-store; stored as a hash for 5 minutes', async () => {
      clock.set(Date.now())
      const before = await challengeRows(ctx.app, null)
      const response = await ctx.app.inject({ method: 'POST', url: '/login/passkey/options' })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const options = response.json<Record<string, unknown>>()
      assert.deepEqual(Object.keys(options).sort(), ['challenge', 'rpId', 'timeout', 'userVerification'])
      assert.match(String(options.challenge), /^[A-Za-z0-9_-]{43}$/)
      assert.equal(options.rpId, RP_ID)
      assert.equal(options.timeout, CHALLENGE_LIFETIME_MS)
      assert.equal(options.userVerification, 'required')
      const added = (await challengeRows(ctx.app, null)).filter(
        (row) => !before.some((old) => old.challenge_hash === row.challenge_hash),
      )
      assert.equal(added.length, 1)
      assert.equal(added[0]!.purpose, 'passkey_login')
      assert.equal(added[0]!.user_handle, null)
      assert.ok(!JSON.stringify(added).includes(String(options.challenge)), 'stored as a hash only')
      assert.equal(added[0]!.expires_at.getTime() - added[0]!.created_at.getTime(), CHALLENGE_LIFETIME_MS)
    })

    test('a passkey alone logs in: the token pair (no-store), amr hwk+user+mfa kept after refresh, sessions.amr, the counter and last use recorded, audit', async () => {
      clock.set(Date.now())
      const { user, authenticator, passkey } = await userWithPasskey(ctx.app)
      clock.advance(60_000)
      const sessionsBefore = await sessionRows(ctx.app, user.id)
      const challengesBefore = (await challengeRows(ctx.app, null)).length
      const options = await passkeyLoginOptions(ctx.app)
      assert.equal((await challengeRows(ctx.app, null)).length, challengesBefore + 1)
      const response = await postPasskeyLogin(ctx.app, await authenticator.authenticate(options))
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const pair = response.json<TokenPairBody>()
      assert.equal(pair.token_type, 'bearer')
      assert.deepEqual(amrOf(pair.access_token), ['hwk', 'user', 'mfa'])
      assert.equal((await challengeRows(ctx.app, null)).length, challengesBefore, 'the challenge is spent')

      const me = await ctx.app.inject({
        method: 'GET',
        url: '/current-user',
        headers: { authorization: `Bearer ${pair.access_token}` },
      })
      assert.equal(me.json<{ id: number }>().id, user.id)
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: pair.refresh_token },
      })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
      assert.deepEqual(amrOf(refreshed.json<TokenPairBody>().access_token), ['hwk', 'user', 'mfa'])

      const started = (await sessionRows(ctx.app, user.id)).filter(
        (row) => !sessionsBefore.some((old) => old.id === row.id),
      )
      assert.equal(started.length, 1)
      const session = started[0]!
      assert.equal(session.amr, 'hwk user mfa')
      assert.equal(session.factor_verified_at?.getTime(), clock.now())
      const [row] = await passkeyRows(ctx.app, user.id)
      assert.equal(row!.sign_count, 1)
      assert.equal(row!.last_used_at?.getTime(), clock.now())
      const listed = await ctx.app.inject({ method: 'GET', url: '/passkeys', headers: user.headers })
      assert.equal(
        listed.json<{ items: { last_used_at: string }[] }>().items[0]!.last_used_at,
        new Date(clock.now()).toISOString(),
      )
      assert.deepEqual((await auditOf(ctx.app, user.id)).at(-1), {
        event: 'passkey_login_succeeded',
        outcome: 'success',
        details: { passkey_id: passkey.id },
      })
    })

    test('a synced passkey (its counter stays 0) logs in again and again', async () => {
      clock.set(Date.now())
      const { user, authenticator } = await userWithPasskey(ctx.app, {
        authenticator: authenticatorFor({ synced: true }),
      })
      for (let round = 0; round < 3; round++) {
        const response = await passkeyLogin(ctx.app, authenticator)
        assert.equal(response.statusCode, 200, response.body)
      }
      assert.equal((await passkeyRows(ctx.app, user.id))[0]!.sign_count, 0)
    })

    test('refused with 401, the reason recorded and the account unchanged: wrong origin, wrong RP ID, no user verification, no user presence, counter not increasing, user handle not the passkey’s, signed by another passkey', async () => {
      const { user, authenticator } = await usedPasskey()
      const second = await addPasskey(ctx.app, user)
      const stranger = await userWithPasskey(ctx.app)
      const strangersHandle = stranger.authenticator.credentials[0]!.userHandle
      const cases: [string, AssertionOverrides, ((answer: AuthenticationResponseJSON) => void)?][] = [
        ['origin', { origin: 'https://evil.example' }],
        ['origin', { origin: 'http://localhost:8001' }],
        ['rp_id', { rpId: 'example.com' }],
        ['user_verification', { userVerified: false }],
        ['user_presence', { userPresent: false }],
        ['counter', { counter: 1 }],
        ['counter', { counter: 0 }],
        ['user_handle', {}, (answer) => (answer.response.userHandle = strangersHandle)],
        ['user_handle', {}, (answer) => delete answer.response.userHandle],
        ['signature', { responseId: second.authenticator.credentials[0]!.id }],
      ]
      for (const [reason, overrides, tamper] of cases) {
        const before = await accountState(ctx.app, user.id)
        const answer = await authenticator.authenticate(await passkeyLoginOptions(ctx.app), overrides)
        tamper?.(answer)
        await assertRefused(await postPasskeyLogin(ctx.app, answer), reason, user.id)
        assert.deepEqual(
          await accountState(ctx.app, user.id),
          before,
          `${reason} ${JSON.stringify(overrides)}`,
        )
      }
      assert.equal(
        (await sessionRows(ctx.app, stranger.user.id)).length,
        1,
        'the account a borrowed handle names gets no session (its one is its password login)',
      )
      const ok = await passkeyLogin(ctx.app, authenticator)
      assert.equal(ok.statusCode, 200, 'the passkey still works')
    })

    test('an answer to no current login challenge is 401 (challenge): unknown, already used, expired, or a challenge of another ceremony', async () => {
      const { user, authenticator } = await usedPasskey()
      const unknown = await authenticator.authenticate(await passkeyLoginOptions(ctx.app), {
        challenge: unknownChallenge(),
      })
      let before = await accountState(ctx.app, user.id)
      await assertRefused(await postPasskeyLogin(ctx.app, unknown), 'challenge', user.id)
      // Nor a passkey the server knows: the challenge is refused first, naming no account.
      const nobodys = await authenticator.authenticate(await passkeyLoginOptions(ctx.app), {
        challenge: unknownChallenge(),
        responseId: unknownChallenge(),
      })
      await assertRefused(await postPasskeyLogin(ctx.app, nobodys), 'challenge', null)
      // Nor anything shaped otherwise than an issued challenge.
      const unshaped = withClientData(await authenticator.authenticate(await passkeyLoginOptions(ctx.app)), {
        challenge: 'not-a-challenge',
      })
      await assertRefused(await postPasskeyLogin(ctx.app, unshaped), 'challenge', user.id)

      const used = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      assert.equal((await postPasskeyLogin(ctx.app, used)).statusCode, 200)
      before = await accountState(ctx.app, user.id)
      await assertRefused(await postPasskeyLogin(ctx.app, used), 'challenge', user.id)
      assert.deepEqual(await accountState(ctx.app, user.id), before, 'a replay starts no session')

      // A registration's challenge and a second factor's, each signed as a login.
      const registration = (await registrationOptions(ctx.app, user.headers)).challenge
      const { mfa_token } = await challenge(ctx.app, user)
      const secondFactor = (await mfaPasskeyOptions(ctx.app, mfa_token)).challenge
      before = await accountState(ctx.app, user.id)
      for (const foreign of [registration, secondFactor]) {
        const answer = await authenticator.authenticate(await passkeyLoginOptions(ctx.app), {
          challenge: foreign,
        })
        await assertRefused(await postPasskeyLogin(ctx.app, answer), 'challenge', user.id)
      }
      assert.deepEqual(await accountState(ctx.app, user.id), before)
      assert.equal((await challengeRows(ctx.app, user.id)).length, 2, 'neither was spent')
    })

    test('the challenge lives 5 minutes: 1 ms before, logged in; at 5:00, refused; new options sweep the expired ones', async () => {
      const { user, authenticator } = await usedPasskey()
      const inTime = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      clock.advance(CHALLENGE_LIFETIME_MS - 1)
      assert.equal((await postPasskeyLogin(ctx.app, inTime)).statusCode, 200)

      clock.advance(1)
      const late = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const countBefore = (await challengeRows(ctx.app, null)).length
      clock.advance(CHALLENGE_LIFETIME_MS)
      const before = await accountState(ctx.app, user.id)
      await assertRefused(await postPasskeyLogin(ctx.app, late), 'challenge', user.id)
      assert.deepEqual(await accountState(ctx.app, user.id), before)
      assert.equal((await challengeRows(ctx.app, null)).length, countBefore, 'expired, not yet swept')
      await passkeyLoginOptions(ctx.app)
      const left = await challengeRows(ctx.app, null)
      assert.deepEqual(
        left.map((row) => row.created_at.getTime()),
        [clock.now()],
        'only the new challenge is left',
      )
    })

    test('a passkey the server does not know is 401 (credential), naming no account: never registered, or removed', async () => {
      clock.set(Date.now())
      const stray = authenticatorFor()
      const someone = await userWithToken(ctx.app)
      await stray.register(await registrationOptions(ctx.app, someone.headers))
      await assertRefused(await passkeyLogin(ctx.app, stray), 'credential', null)

      const { user, authenticator, passkey } = await usedPasskey()
      const removed = await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password })
      assert.equal(removed.statusCode, 204, removed.body)
      const sessions = await sessionRows(ctx.app, user.id)
      await assertRefused(await passkeyLogin(ctx.app, authenticator), 'credential', null)
      assert.deepEqual(await sessionRows(ctx.app, user.id), sessions)
    })

    test('a deactivated account’s passkey is 401 (inactive): no session, and its last use is not recorded', async () => {
      const { user, authenticator } = await usedPasskey()
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
      clock.advance(60_000)
      const before = await accountState(ctx.app, user.id)
      await assertRefused(await passkeyLogin(ctx.app, authenticator), 'inactive', user.id)
      const after = await accountState(ctx.app, user.id)
      assert.deepEqual(after.sessions, before.sessions)
      // A refused login is no use of the passkey: the owner's list must not show one.
      assert.deepEqual(
        after.passkeys.map((row) => row.last_used_at),
        before.passkeys.map((row) => row.last_used_at),
      )
    })

    test('the same answer sent twice at once: exactly one 200, one session', async () => {
      const { user, authenticator } = await usedPasskey()
      const sessions = (await sessionRows(ctx.app, user.id)).length
      const answer = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const results = await Promise.all([
        postPasskeyLogin(ctx.app, answer),
        postPasskeyLogin(ctx.app, answer),
      ])
      assert.deepEqual(
        results.map((response) => response.statusCode).sort(),
        [200, 401],
        results.map((response) => response.body).join('\n'),
      )
      assert.equal((await sessionRows(ctx.app, user.id)).length, sessions + 1)
      assert.equal((await passkeyRows(ctx.app, user.id))[0]!.sign_count, 2)
      const events = (await auditOf(ctx.app, user.id))
        .slice(-2)
        .map((event) => event.event)
        .sort()
      assert.deepEqual(events, ['passkey_login_failed', 'passkey_login_succeeded'])
    })

    test('challenges live in the database: options from one instance, the answer to another (registration and login)', async () => {
      clock.set(Date.now())
      const other = await buildApp(ctx.config, { logger: false, clock })
      try {
        await other.ready()
        const user = await userWithToken(ctx.app)
        const authenticator = authenticatorFor()
        const creation = await registrationOptions(ctx.app, user.headers)
        const registered = await postPasskey(other, user.headers, await authenticator.register(creation))
        assert.equal(registered.statusCode, 201, registered.body)
        const request = await passkeyLoginOptions(other)
        const login = await postPasskeyLogin(ctx.app, await authenticator.authenticate(request))
        assert.equal(login.statusCode, 200, login.body)
        assert.deepEqual(await challengeRows(ctx.app, user.id), [])
      } finally {
        await other.close()
      }
    })

    test('bad bodies are 422 and spend nothing: the answer then still logs in', async () => {
      const { authenticator } = await usedPasskey()
      const answer = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const bodies: unknown[] = [
        {},
        { response: answer, extra: true },
        { response: { ...answer, type: 'x' } },
        { response: { ...answer, response: { ...answer.response, signature: '' } } },
        { response: { ...answer, response: { ...answer.response, signature: 'a'.repeat(2049) } } },
        { response: { ...answer, response: { ...answer.response, attestationObject: 'AAAA' } } },
      ]
      for (const payload of bodies) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/login/passkey',
          payload: payload as object,
        })
        assertProblem(response, 422)
      }
      const form = await ctx.app.inject({
        method: 'POST',
        url: '/login/passkey',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'response=x',
      })
      assertProblem(form, 415)
      assert.equal((await postPasskeyLogin(ctx.app, answer)).statusCode, 200)
    })
  },
  { build: { clock } },
)

describeEachEngine(
  'password-less login with a passkey where email addresses must be verified',
  (ctx) => {
    test('an account whose address is not verified is 403, audited, and starts no session nor records a use', async () => {
      clock.set(Date.now())
      const user = await register(ctx.app, uniqueUser())
      const verified = (value: boolean) =>
        ctx.app.db.updateTable('users').set({ email_verified: value }).where('id', '=', user.id).execute()
      // Verified while the passkey is added; then unverified, as after an email change.
      await verified(true)
      const token = await login(ctx.app, user.email, user.password)
      const authenticator = authenticatorFor()
      const added = await registerPasskey(ctx.app, { ...bearer(token), 'user-agent': UA }, authenticator)
      assert.equal(added.statusCode, 201, added.body)
      await verified(false)
      const before = await accountState(ctx.app, user.id)
      const refused = assertProblem(await passkeyLogin(ctx.app, authenticator), 403)
      assert.equal(
        refused.detail,
        'The email address of this account is not verified yet: follow the link in the email we sent.',
      )
      assert.deepEqual(await lastEvent(ctx.app, 'passkey_login_failed'), {
        event: 'passkey_login_failed',
        outcome: 'failure',
        user_id: user.id,
        details: { reason: 'email_not_verified' },
      })
      assert.deepEqual(await accountState(ctx.app, user.id), before)
      await verified(true)
      assert.equal((await passkeyLogin(ctx.app, authenticator)).statusCode, 200)
    })
  },
  { build: { clock }, env: { REQUIRE_EMAIL_VERIFICATION: 'true' } },
)
