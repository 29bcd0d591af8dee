/**
 * Signing in with an OpenID Connect provider: a real provider (oidc-provider) on 127.0.0.1, our
 * API through inject, on every engine. Which account a provider's person gets: a new one, their
 * linked one, or the account of the same email only when both sides say that email is verified.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { decodeJwt } from 'jose'
import { bearer, describeEachEngine, login, register, uniqueUser } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { startTestIdentityProvider } from '../../support/oidc-provider.js'
import { eventsOf, enrolTotp, userWithToken } from '../mfa/support.js'
import { callbackOf, identityRows, PROVIDER, PUBLIC_URL, signInAs, userByEmail } from './support.js'

const idp = await startTestIdentityProvider({ redirectUris: [callbackOf(PROVIDER)] })
after(() => idp.close())

const clock = new TestClock()
const env = { PUBLIC_URL, OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER, 'Test SSO')]) }

describeEachEngine(
  'sign-in with an OpenID Connect provider',
  (ctx) => {
    test('the providers are listed for sign-in buttons', async () => {
      const response = await ctx.app.inject({ method: 'GET', url: '/login/providers' })
      assert.equal(response.statusCode, 200)
      assert.deepEqual(response.json(), {
        providers: [{ id: PROVIDER, name: 'Test SSO', login_url: `/login/${PROVIDER}` }],
      })
    })

    test('a person no account has gets a new one, without a password, and a working token pair', async () => {
      const person = idp.addPerson({ preferred_username: 'Ada Lovelace' })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const pair = response.json<{ access_token: string; refresh_token: string; token_type: string }>()
      assert.equal(pair.token_type, 'bearer')
      assert.deepEqual(decodeJwt(pair.access_token).amr, ['fed'])

      const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(pair.access_token) })
      assert.equal(me.statusCode, 200)
      assert.equal(me.json().email, person.email)
      assert.equal(me.json().name, 'Ada Lovelace')
      assert.equal(me.json().email_verified, true)

      const user = (await userByEmail(ctx.app, person.email!))!
      assert.equal(user.password_hash, '!', 'no password: nothing verifies against it')
      const identities = await identityRows(ctx.app, user.id)
      assert.deepEqual(
        identities.map(({ provider, subject, email }) => ({ provider, subject, email })),
        [{ provider: PROVIDER, subject: person.sub, email: person.email }],
      )
      const events = await eventsOf(ctx.app, user.id, '')
      assert.ok(events.some((row) => row.event === 'user_registered'))
      assert.ok(events.some((row) => row.event === 'external_login_succeeded'))

      // The refresh token works as any other.
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: pair.refresh_token },
      })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
    })

    test('an account made by a provider cannot be logged in to with any password', async () => {
      const person = idp.addPerson()
      assert.equal((await signInAs(ctx.app, idp, person.sub)).statusCode, 200)
      for (const password of ['!', '', 'correct horse battery staple']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/login',
          payload: { username: person.email, password: password || 'x' },
        })
        assert.equal(response.statusCode, 401, response.body)
        assert.equal(response.json().detail, 'Incorrect username or password.')
      }
    })

    test('the next sign-in of the same person is the same account; the name a new account gets is free', async () => {
      const person = idp.addPerson()
      const first = await signInAs(ctx.app, idp, person.sub)
      const second = await signInAs(ctx.app, idp, person.sub)
      assert.equal(second.statusCode, 200, second.body)
      assert.equal(decodeJwt(first.json().access_token).sub, decodeJwt(second.json().access_token).sub)
      assert.equal((await identityRows(ctx.app)).filter((row) => row.subject === person.sub).length, 1)

      // Another person with the same display name gets a suffixed name.
      const namesake = idp.addPerson({ preferred_username: person.preferred_username })
      const response = await signInAs(ctx.app, idp, namesake.sub)
      assert.equal(response.statusCode, 200, response.body)
      const user = (await userByEmail(ctx.app, namesake.email!))!
      assert.match(user.name, new RegExp(`^${person.preferred_username}-\\d{5}$`))
    })

    test('a verified email at both sides links the identity to the existing account', async () => {
      const user = await register(ctx.app, uniqueUser())
      await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
      const person = idp.addPerson({ email: user.email.toUpperCase(), email_verified: true })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(decodeJwt(response.json().access_token).sub, String(user.id))
      assert.equal((await identityRows(ctx.app, user.id)).length, 1)
      // The password still works: linking took nothing away.
      await login(ctx.app, user.email, user.password)
    })

    test('an existing account whose email we never verified is not linked (pre-hijacking): 409, nothing linked', async () => {
      // Someone registered the address here first, without proving it is theirs.
      const squatter = await register(ctx.app, uniqueUser())
      const person = idp.addPerson({ email: squatter.email, email_verified: true })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 409, response.body)
      assert.match(response.json().detail, /log in to that account another way, then link/)
      assert.deepEqual(await identityRows(ctx.app, squatter.id), [])
      const refused = (await eventsOf(ctx.app, squatter.id, 'external_login_failed')).at(-1)
      assert.deepEqual(JSON.parse(String(refused?.details)), {
        provider: PROVIDER,
        reason: 'unverified_email',
      })
    })

    test('email_verified false from the provider on an existing email is refused: 409, nothing linked', async () => {
      const owner = await register(ctx.app, uniqueUser())
      await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', owner.id).execute()
      const person = idp.addPerson({ email: owner.email, email_verified: false })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 409, response.body)
      assert.deepEqual(await identityRows(ctx.app, owner.id), [])
      // And the owner's sessions are what they were: only their own password logins.
      assert.equal(
        (await ctx.app.db.selectFrom('sessions').select('id').where('user_id', '=', owner.id).execute())
          .length,
        0,
      )
    })

    test('email_verified false from the provider for a new email makes no account: 403', async () => {
      const person = idp.addPerson({ email_verified: false })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 403, response.body)
      assert.match(response.json().detail, /has not verified your email address/)
      assert.equal(await userByEmail(ctx.app, person.email!), undefined)
      assert.deepEqual(
        (await identityRows(ctx.app)).filter((row) => row.subject === person.sub),
        [],
      )
    })

    test('a person without an email at the provider makes no account: 403', async () => {
      const person = idp.addPerson({ email: undefined, email_verified: undefined })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 403, response.body)
      assert.match(response.json().detail, /did not give an email address/)
    })

    test('a deactivated account is refused: 403, no session', async () => {
      const person = idp.addPerson()
      const first = await signInAs(ctx.app, idp, person.sub)
      const user = (await userByEmail(ctx.app, person.email!))!
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
      const sessionsBefore = await ctx.app.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', user.id)
        .execute()
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 403, response.body)
      assert.equal(first.statusCode, 200)
      const sessionsAfter = await ctx.app.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', user.id)
        .execute()
      assert.equal(sessionsAfter.length, sessionsBefore.length)
    })

    test('an account with a second factor is not signed in to by a provider alone: 403', async () => {
      const user = await userWithToken(ctx.app)
      await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
      await enrolTotp(ctx.app, user, clock)
      const person = idp.addPerson({ email: user.email })
      const response = await signInAs(ctx.app, idp, person.sub)
      assert.equal(response.statusCode, 403, response.body)
      assert.match(response.json().detail, /second factor/)
    })
  },
  { env, build: { clock } },
)
