import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { HOUR, MINUTE, TestClock } from '../../support/clock.js'
import { challenge, eventsOf, mfaLogin, userWithToken } from '../mfa/support.js'
import {
  authenticatorFor,
  challengeRows,
  mfaPasskeyOptions,
  passkeyLoginOptions,
  postPasskeyLogin,
  registrationOptions,
  sessionRows,
  userWithPasskey,
} from './support.js'

const clock = new TestClock()
const PER_ACCOUNT = 3
const PER_IP = 5
const WINDOW_MS = 15 * MINUTE

let addresses = 0
/** A client address of its own (TEST-NET-3), so that one test's attempts never count in another's. */
const freshAddress = () => `203.0.113.${++addresses}`

describeEachEngine(
  'passkey logins against the attempt limits',
  (ctx) => {
    /** A new window for every counter: the users each test creates come from 127.0.0.1. */
    const freshWindow = () => clock.advance(HOUR)

    test('failed passkey logins from one address reach its limit: then 429 with Retry-After, even for a good answer, which spends nothing', async () => {
      freshWindow()
      const { user, authenticator } = await userWithPasskey(ctx.app)
      // Passkeys no account has: only the address is counted.
      const stray = authenticatorFor()
      await stray.register(await registrationOptions(ctx.app, (await userWithToken(ctx.app)).headers))
      const address = freshAddress()
      for (let attempt = 0; attempt < PER_IP; attempt++) {
        const answer = await stray.authenticate(await passkeyLoginOptions(ctx.app))
        assertProblem(await postPasskeyLogin(ctx.app, answer, { remoteAddress: address }), 401)
      }
      const good = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const pending = (await challengeRows(ctx.app, null)).length
      const sessions = await sessionRows(ctx.app, user.id)
      const refused = await postPasskeyLogin(ctx.app, good, { remoteAddress: address })
      assert.match(
        assertProblem(refused, 429).detail,
        /^Too many passkey login attempts from this address; try again in \d+ seconds\.$/,
      )
      assert.ok(Number(refused.headers['retry-after']) >= 1, String(refused.headers['retry-after']))
      assert.equal((await challengeRows(ctx.app, null)).length, pending, 'the challenge is not spent')
      assert.deepEqual(await sessionRows(ctx.app, user.id), sessions)
      // The same answer from another address is within both limits.
      const elsewhere = await postPasskeyLogin(ctx.app, good, { remoteAddress: freshAddress() })
      assert.equal(elsewhere.statusCode, 200, elsewhere.body)
    })

    test('failed logins with one passkey from many addresses reach the account’s limit: 429 from anywhere; other accounts log in', async () => {
      freshWindow()
      const { user, authenticator } = await userWithPasskey(ctx.app)
      const other = await userWithPasskey(ctx.app)
      for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) {
        const answer = await authenticator.authenticate(await passkeyLoginOptions(ctx.app), {
          origin: 'https://evil.example',
        })
        assertProblem(await postPasskeyLogin(ctx.app, answer, { remoteAddress: freshAddress() }), 401)
      }
      const sessions = await sessionRows(ctx.app, user.id)
      const good = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const address = freshAddress()
      const refused = await postPasskeyLogin(ctx.app, good, { remoteAddress: address })
      assert.match(
        assertProblem(refused, 429).detail,
        /^Too many passkey login attempts for this account; try again in \d+ seconds\.$/,
      )
      assert.ok(refused.headers['retry-after'])
      assert.deepEqual(await sessionRows(ctx.app, user.id), sessions)
      const theirs = await other.authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      assert.equal((await postPasskeyLogin(ctx.app, theirs, { remoteAddress: address })).statusCode, 200)
      // The block lifts with its window.
      clock.advance(WINDOW_MS)
      const later = await authenticator.authenticate(await passkeyLoginOptions(ctx.app))
      const response = await postPasskeyLogin(ctx.app, later, { remoteAddress: address })
      assert.equal(response.statusCode, 200, response.body)
    })

    test('refused passkey answers at /login/mfa count against the account’s second-factor limit', async () => {
      freshWindow()
      const { user, authenticator } = await userWithPasskey(ctx.app)
      const { mfa_token } = await challenge(ctx.app, user)
      for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) {
        const answer = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfa_token), {
          rpId: 'example.com',
        })
        assertProblem(await mfaLogin(ctx.app, { mfa_token, passkey: answer }), 401)
      }
      const good = await authenticator.authenticate(await mfaPasskeyOptions(ctx.app, mfa_token))
      const refused = await mfaLogin(ctx.app, { mfa_token, passkey: good })
      assertProblem(refused, 429)
      assert.equal(
        (await challengeRows(ctx.app, user.id)).length,
        1,
        'the good answer’s challenge is not spent',
      )
      const failed = (await eventsOf(ctx.app, user.id)).filter((row) => row.event === 'mfa_code_failed')
      assert.equal(failed.length, PER_ACCOUNT)
    })
  },
  {
    build: { clock },
    env: {
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
      RATE_LIMIT_ATTEMPTS_PER_IP: String(PER_IP),
      RATE_LIMIT_PER_MINUTE: '100000',
    },
  },
)
