import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateOpaqueToken, hashOpaqueToken } from '../../../src/auth/opaque-tokens.js'
import {
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  uniqueUser,
} from '../../support/app.js'
import {
  MAIL_ENV,
  mailsTo,
  waitForTokens,
  waitForToken,
  loginPair,
  tokenPair,
  currentUser,
  verifyEmail,
  askForReset,
  resetPassword,
  resetTokenFor,
} from './support.js'
import { tokensIn } from '../../support/smtp-inbox.js'

// ------------------------------------------------------------------ password recovery and reset

describeEachEngine(
  'password recovery and reset',
  (ctx) => {
    test('recover → reset: the old password and every old session stop working, the new password works', async () => {
      const user = await register(ctx.app)
      const sessions = [
        await tokenPair(ctx.app, user.email, user.password),
        await tokenPair(ctx.app, user.name, user.password),
      ]
      // The address is matched as it is stored, whatever its case.
      const token = await resetTokenFor(ctx.app, user.email.toUpperCase())
      const [mail] = mailsTo(user.email).filter((received) =>
        /^Subject: Reset your password\r?$/m.test(received.raw),
      )
      assert.ok(mail, 'the reset email has its subject')

      const newPassword = 'a brand new passphrase'
      const reset = await resetPassword(ctx.app, token, newPassword)
      assert.equal(reset.statusCode, 204, reset.body)

      assertProblem(await loginPair(ctx.app, user.email, user.password), 401)
      const fresh = await tokenPair(ctx.app, user.email, newPassword)
      assert.equal((await currentUser(ctx.app, fresh.access_token)).statusCode, 200)
      for (const old of sessions) {
        assertProblem(await currentUser(ctx.app, old.access_token), 401)
        const refreshed = await ctx.app.inject({
          method: 'POST',
          url: '/token/refresh',
          payload: { refresh_token: old.refresh_token },
        })
        assertProblem(refreshed, 401)
      }
      // The link reached the account's address, which proves that address too.
      assert.equal(
        (await currentUser(ctx.app, fresh.access_token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
    })

    test('an unknown, a used and an expired reset token all get the same 400, and change nothing', async () => {
      const user = await register(ctx.app)
      const used = await resetTokenFor(ctx.app, user.email)
      assert.equal((await resetPassword(ctx.app, used, 'first new password')).statusCode, 204)

      const other = await register(ctx.app)
      const expired = await resetTokenFor(ctx.app, other.email)
      const aged = await ctx.app.db
        .updateTable('account_tokens')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('token_hash', '=', hashOpaqueToken(expired))
        .executeTakeFirst()
      assert.equal(Number(aged.numUpdatedRows), 1)

      const answers = [
        await resetPassword(ctx.app, generateOpaqueToken(), 'another new password'),
        await resetPassword(ctx.app, used, 'another new password'),
        await resetPassword(ctx.app, expired, 'another new password'),
      ]
      const bodies = answers.map((answer) => assertProblem(answer, 400))
      assert.match(bodies[0]!.detail, /expired|used/)
      assert.deepEqual(bodies[1], bodies[0])
      assert.deepEqual(bodies[2], bodies[0])

      assert.equal((await loginPair(ctx.app, user.email, 'first new password')).statusCode, 200)
      assert.equal((await loginPair(ctx.app, user.email, 'another new password')).statusCode, 401)
      assert.equal((await loginPair(ctx.app, other.email, other.password)).statusCode, 200)
    })

    test('a too-short new password is a 422 naming new_password; the password and the token stay as they were', async () => {
      const user = await register(ctx.app)
      const token = await resetTokenFor(ctx.app, user.email)
      const refused = assertProblem(await resetPassword(ctx.app, token, 'short'), 422)
      assert.deepEqual(
        refused.errors?.map((issue) => issue.field),
        ['new_password'],
      )
      assert.equal((await loginPair(ctx.app, user.email, user.password)).statusCode, 200)
      assert.equal((await resetPassword(ctx.app, token, 'long enough this time')).statusCode, 204)
    })

    test('a newer reset link replaces the older one', async () => {
      const user = await register(ctx.app)
      const older = await resetTokenFor(ctx.app, user.email)
      const newer = await resetTokenFor(ctx.app, user.email)
      assertProblem(await resetPassword(ctx.app, older, 'from the older link'), 400)
      assert.equal((await resetPassword(ctx.app, newer, 'from the newer link')).statusCode, 204)
    })

    test('two resets at once with one token: exactly one succeeds', async () => {
      const user = await register(ctx.app)
      const token = await resetTokenFor(ctx.app, user.email)
      const answers = await Promise.all([
        resetPassword(ctx.app, token, 'the first new password'),
        resetPassword(ctx.app, token, 'the second new password'),
      ])
      assert.deepEqual(answers.map((answer) => answer.statusCode).sort(), [204, 400])
      const winner = answers[0]!.statusCode === 204 ? 'the first new password' : 'the second new password'
      assert.equal((await loginPair(ctx.app, user.email, winner)).statusCode, 200)
    })

    test('links asked for at once for one account all arrive', async () => {
      const user = await registerAndLogin(ctx.app)
      const answers = await Promise.all([
        askForReset(ctx.app, user.email),
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers }),
        askForReset(ctx.app, user.email),
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers }),
      ])
      assert.deepEqual(
        answers.map((answer) => answer.statusCode),
        [202, 202, 202, 202],
      )
      await waitForTokens(user.email, 'reset-password', 2)
      // One from the registration, two resent.
      const verifications = await waitForTokens(user.email, 'verify-email', 3)
      assert.equal((await verifyEmail(ctx.app, verifications[0]!)).statusCode, 204)
    })

    test('recovery answers the same for an unknown email, and mails nothing to it nor to an inactive account', async () => {
      const known = await register(ctx.app)
      const inactive = await register(ctx.app)
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', inactive.id).execute()
      const unknownEmail = uniqueUser().email

      const answers = [
        await askForReset(ctx.app, unknownEmail),
        await askForReset(ctx.app, inactive.email),
        await askForReset(ctx.app, known.email),
      ]
      for (const answer of answers) {
        assert.equal(answer.statusCode, 202)
        assert.equal(answer.body, answers[2]!.body)
        assert.equal(answer.headers['content-type'], answers[2]!.headers['content-type'])
      }
      await waitForTokens(known.email, 'reset-password')
      // Everything the requests started has finished: what has not arrived now never will.
      assert.equal(await ctx.app.accountEmails.whenIdle(10_000), true)
      assert.equal(await ctx.app.mailer.whenIdle(10_000), true)
      assert.deepEqual(mailsTo(unknownEmail), [])
      assert.deepEqual(tokensIn(mailsTo(inactive.email), 'reset-password'), [])
    })

    test('reset and verification tokens are stored only as SHA-256 hashes', async () => {
      const user = await register(ctx.app)
      const verification = await waitForToken(user.email, 'verify-email')
      const reset = await resetTokenFor(ctx.app, user.email)
      const rows = await ctx.app.db
        .selectFrom('account_tokens')
        .selectAll()
        .where('user_id', '=', user.id)
        .execute()
      assert.deepEqual(
        rows.map((row) => row.token_hash).sort(),
        [hashOpaqueToken(verification), hashOpaqueToken(reset)].sort(),
      )
      const stored = JSON.stringify(rows)
      assert.equal(stored.includes(verification), false)
      assert.equal(stored.includes(reset), false)
    })
  },
  { env: MAIL_ENV },
)
