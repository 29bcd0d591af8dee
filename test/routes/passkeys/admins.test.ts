import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, bearer, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { enrolTotp, loginRequest, UA } from '../mfa/support.js'
import {
  accountState,
  addPasskey,
  authenticatorFor,
  deletePasskey,
  passkeyLogin,
  registerPasskey,
  userWithPasskey,
  type PasskeyBody,
  type TokenPairBody,
} from './support.js'

const clock = new TestClock()

describeEachEngine(
  'admins who must keep a second factor (REQUIRE_MFA_FOR_ADMINS)',
  (ctx) => {
    const status = async (headers: Record<string, string>) =>
      (await ctx.app.inject({ method: 'GET', url: '/mfa', headers })).json<Record<string, unknown>>()

    /** An admin without a second factor, logged in with the password, who then registers a passkey. */
    async function adminWithPasskey() {
      clock.set(Date.now())
      const admin = await register(ctx.app, uniqueUser())
      await ctx.app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', admin.id).execute()
      const login = await loginRequest(ctx.app, admin.email, admin.password)
      assert.equal(login.statusCode, 200, login.body)
      const user = {
        ...admin,
        token: '',
        headers: { ...bearer(login.json<TokenPairBody>().access_token), 'user-agent': UA },
      }
      assert.equal((await status(user.headers)).enrolment_required, true)
      const authenticator = authenticatorFor()
      const registered = await registerPasskey(ctx.app, user.headers, authenticator)
      assert.equal(registered.statusCode, 201, registered.body)
      assert.equal((await status(user.headers)).enrolment_required, false)
      return { user, authenticator, passkey: registered.json<{ passkey: PasskeyBody }>().passkey }
    }

    test('an admin’s only passkey cannot be removed: 409 with the password, and with a recent second factor; it stays with the codes', async () => {
      const { user, authenticator, passkey } = await adminWithPasskey()
      const before = await accountState(ctx.app, user.id)
      const refused = assertProblem(
        await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password }),
        409,
      )
      assert.match(refused.detail, /admins must keep one/)
      const viaPasskey = await passkeyLogin(ctx.app, authenticator)
      const recentHeaders = bearer(viaPasskey.json<TokenPairBody>().access_token)
      assertProblem(await deletePasskey(ctx.app, recentHeaders, passkey.id), 409)
      const after = await accountState(ctx.app, user.id)
      assert.deepEqual(
        after.passkeys.map((row) => row.id),
        before.passkeys.map((row) => row.id),
      )
      assert.deepEqual(after.recoveryCodes, before.recoveryCodes)
      assert.deepEqual(after.mfaTokens, before.mfaTokens)
    })

    test('an admin with another factor may remove a passkey: one of two, or the last one while TOTP stays', async () => {
      const { user, passkey } = await adminWithPasskey()
      const second = await addPasskey(ctx.app, user)
      assert.equal((await deletePasskey(ctx.app, user.headers, passkey.id)).statusCode, 204)
      await enrolTotp(ctx.app, user, clock)
      const removed = await deletePasskey(ctx.app, user.headers, second.passkey.id, {
        password: user.password,
      })
      assert.equal(removed.statusCode, 204, removed.body)
      assert.deepEqual((await status(user.headers)).factors, ['totp', 'recovery_code'])
    })

    test('the rule is for admins only: a user’s last passkey goes with the password', async () => {
      clock.set(Date.now())
      const { user, passkey } = await userWithPasskey(ctx.app)
      assert.equal((await status(user.headers)).enrolment_required, false)
      const response = await deletePasskey(ctx.app, user.headers, passkey.id, { password: user.password })
      assert.equal(response.statusCode, 204, response.body)
    })
  },
  { build: { clock }, env: { REQUIRE_MFA_FOR_ADMINS: 'true' } },
)
