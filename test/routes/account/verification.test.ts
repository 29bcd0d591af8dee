import assert from 'node:assert/strict'
import { test } from 'node:test'
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
  currentUser,
  verifyEmail,
  buildAppOn,
} from './support.js'

// ------------------------------------------------------------------ email verification

describeEachEngine(
  'email verification',
  (ctx) => {
    test('registration mails a link built from PUBLIC_URL, from MAIL_FROM; the link verifies the email, once', async () => {
      const user = await registerAndLogin(ctx.app)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        false,
      )

      const token = await waitForToken(user.email, 'verify-email')
      const [mail] = mailsTo(user.email)
      assert.match(mail!.raw, /^From: Example Accounts <accounts@example\.test>\r?$/m)
      assert.match(mail!.raw, /^Subject: Verify your email address\r?$/m)
      assert.match(mail!.raw, /^Content-Type: text\/html/m, 'an HTML alternative is included')

      const verified = await verifyEmail(ctx.app, token)
      assert.equal(verified.statusCode, 204, verified.body)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )

      const again = assertProblem(await verifyEmail(ctx.app, token), 400)
      assert.match(again.detail, /not valid/)
    })

    test('a token for a previous email does not verify the email the account has changed to', async () => {
      const user = await registerAndLogin(ctx.app)
      const oldToken = await waitForToken(user.email, 'verify-email')
      const newEmail = uniqueUser().email
      const changed = await ctx.app.inject({
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers: user.headers,
        payload: { email: newEmail, current_password: user.password },
      })
      assert.equal(changed.statusCode, 200, changed.body)
      const newToken = await waitForToken(newEmail, 'verify-email')

      assertProblem(await verifyEmail(ctx.app, oldToken), 400)
      const me = (await currentUser(ctx.app, user.token)).json<{ email: string; email_verified: boolean }>()
      assert.deepEqual([me.email, me.email_verified], [newEmail, false])

      assert.equal((await verifyEmail(ctx.app, newToken)).statusCode, 204)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
    })

    test('resend mails a new link that works; once the email is verified, resend is a 409', async () => {
      const user = await registerAndLogin(ctx.app)
      const [first] = await waitForTokens(user.email, 'verify-email', 1)

      const resend = () =>
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers })
      const accepted = await resend()
      assert.equal(accepted.statusCode, 202, accepted.body)
      assert.match(accepted.json<{ detail: string }>().detail, new RegExp(user.email))
      const [, second] = await waitForTokens(user.email, 'verify-email', 2)
      assert.notEqual(second, first)

      assert.equal((await verifyEmail(ctx.app, second!)).statusCode, 204)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
      assert.match(assertProblem(await resend(), 409).detail, /already verified/)
    })

    test('resend needs an access token', async () => {
      assertProblem(await ctx.app.inject({ method: 'POST', url: '/verify-email/resend' }), 401)
    })

    test('with REQUIRE_EMAIL_VERIFICATION, login is a 403 with a clear detail until the email is verified', async () => {
      const strict = await buildAppOn(ctx, { ...MAIL_ENV, REQUIRE_EMAIL_VERIFICATION: 'true' })
      try {
        const user = await register(strict)
        const refused = assertProblem(await loginPair(strict, user.email, user.password), 403)
        assert.match(refused.detail, /not verified/)
        // A wrong password still says nothing about verification.
        assertProblem(await loginPair(strict, user.email, `${user.password}x`), 401)

        assert.equal(
          (await verifyEmail(strict, await waitForToken(user.email, 'verify-email'))).statusCode,
          204,
        )
        assert.equal((await loginPair(strict, user.email, user.password)).statusCode, 200)
      } finally {
        await strict.close()
      }
    })
  },
  { env: MAIL_ENV },
)
