/**
 * A signed-in user links a provider explicitly (after proving it is them), lists and unlinks their
 * identities; on every engine, against the real test provider. The link is finished by the client
 * that started it (its verifier and its account), and an account keeps at least one way in.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { bearer, describeEachEngine } from '../../support/app.js'
import { startTestIdentityProvider } from '../../support/oidc-provider.js'
import { eventsOf, userWithToken, type TestUser } from '../mfa/support.js'
import {
  callbackOf,
  identityRows,
  pkcePair,
  PROVIDER,
  PUBLIC_URL,
  returnAfter,
  signInAs,
  userByEmail,
  storeIdentity,
} from './support.js'

const SECOND_PROVIDER = 'second'
const idp = await startTestIdentityProvider({
  redirectUris: [callbackOf(PROVIDER), callbackOf(SECOND_PROVIDER)],
})
after(() => idp.close())

const env = {
  PUBLIC_URL,
  OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER, 'Test SSO'), idp.entry(SECOND_PROVIDER, 'Second SSO')]),
}

type Headers = Record<string, string>

function startLink(
  app: FastifyInstance,
  headers: Headers,
  body: Record<string, unknown>,
  provider = PROVIDER,
) {
  return app.inject({
    method: 'POST',
    url: `/users/me/identities/${provider}/authorization`,
    headers,
    payload: body,
  })
}

/** Starts a link with the password, signs in at the provider as `sub`: the one-time code and verifier. */
async function linkCode(app: FastifyInstance, user: TestUser, sub: string, provider = PROVIDER) {
  const { verifier, challenge } = pkcePair()
  const started = await startLink(
    app,
    user.headers,
    { code_challenge: challenge, password: user.password },
    provider,
  )
  assert.equal(started.statusCode, 200, started.body)
  const back = await returnAfter(app, await idp.signIn(started.json().authorization_url, sub))
  const code = back.searchParams.get('code')
  assert.ok(code, back.href)
  return { code, verifier }
}

const finishLink = (
  app: FastifyInstance,
  headers: Headers,
  body: Record<string, unknown>,
  provider = PROVIDER,
) => app.inject({ method: 'POST', url: `/users/me/identities/${provider}`, headers, payload: body })

const listOf = async (app: FastifyInstance, headers: Headers) => {
  const response = await app.inject({ method: 'GET', url: '/users/me/identities', headers })
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ items: { provider: string; provider_name: string; email: string | null }[] }>().items
}

describeEachEngine(
  'linking identity providers to an account',
  (ctx) => {
    test('a user links a provider with their password, then signs in with it to the same account', async () => {
      const user = await userWithToken(ctx.app)
      // The provider's email need not be ours: the owner proved both sides.
      const person = idp.addPerson()
      const { code, verifier } = await linkCode(ctx.app, user, person.sub)
      const linked = await finishLink(ctx.app, user.headers, { code, code_verifier: verifier })
      assert.equal(linked.statusCode, 201, linked.body)
      assert.equal(linked.json().provider, PROVIDER)
      assert.equal(linked.json().provider_name, 'Test SSO')
      assert.equal(linked.json().email, person.email)
      assert.deepEqual(
        (await listOf(ctx.app, user.headers)).map((item) => [item.provider, item.email]),
        [[PROVIDER, person.email]],
      )
      const signedIn = await signInAs(ctx.app, idp, person.sub)
      assert.equal(signedIn.statusCode, 200, signedIn.body)
      const me = await ctx.app.inject({
        method: 'GET',
        url: '/users/me',
        headers: bearer(signedIn.json().access_token),
      })
      assert.equal(me.json().id, user.id)
      assert.ok((await eventsOf(ctx.app, user.id, 'external_identity_linked')).length === 1)
    })

    test('starting a link needs the password (or a recent second factor): 403 without, 422 wrong, nothing started', async () => {
      const user = await userWithToken(ctx.app)
      const { challenge } = pkcePair()
      const before = (await ctx.app.db.selectFrom('external_logins').select('state_hash').execute()).length
      const without = await startLink(ctx.app, user.headers, { code_challenge: challenge })
      assert.equal(without.statusCode, 403, without.body)
      assert.equal(without.json().error, 'reauthentication_required')
      const wrong = await startLink(ctx.app, user.headers, {
        code_challenge: challenge,
        password: 'not the password',
      })
      assert.equal(wrong.statusCode, 422, wrong.body)
      const after = (await ctx.app.db.selectFrom('external_logins').select('state_hash').execute()).length
      assert.equal(after, before)
      const anonymous = await startLink(ctx.app, {}, { code_challenge: challenge, password: user.password })
      assert.equal(anonymous.statusCode, 401)
    })

    test("a link's code is finished only by the user who started it, and not as a sign-in", async () => {
      const owner = await userWithToken(ctx.app)
      const intruder = await userWithToken(ctx.app)
      const person = idp.addPerson()
      const { code, verifier } = await linkCode(ctx.app, owner, person.sub)
      const byAnother = await finishLink(ctx.app, intruder.headers, { code, code_verifier: verifier })
      assert.equal(byAnother.statusCode, 400, byAnother.body)
      const asSignIn = await ctx.app.inject({
        method: 'POST',
        url: `/login/${PROVIDER}/token`,
        payload: { code, code_verifier: verifier },
      })
      assert.equal(asSignIn.statusCode, 400, asSignIn.body)
      assert.deepEqual(await identityRows(ctx.app, intruder.id), [])
      assert.equal(
        (await finishLink(ctx.app, owner.headers, { code, code_verifier: verifier })).statusCode,
        201,
      )
    })

    test('an identity linked to one account cannot be linked to another: 409', async () => {
      const person = idp.addPerson()
      assert.equal((await signInAs(ctx.app, idp, person.sub)).statusCode, 200)
      const other = await userWithToken(ctx.app)
      const { code, verifier } = await linkCode(ctx.app, other, person.sub)
      const response = await finishLink(ctx.app, other.headers, { code, code_verifier: verifier })
      assert.equal(response.statusCode, 409, response.body)
      assert.deepEqual(await identityRows(ctx.app, other.id), [])
    })

    test('one identity per provider: a second link of the same provider is a 409 until the first is unlinked', async () => {
      const user = await userWithToken(ctx.app)
      const { code, verifier } = await linkCode(ctx.app, user, idp.addPerson().sub)
      assert.equal(
        (await finishLink(ctx.app, user.headers, { code, code_verifier: verifier })).statusCode,
        201,
      )
      const again = await startLink(ctx.app, user.headers, {
        code_challenge: pkcePair().challenge,
        password: user.password,
      })
      assert.equal(again.statusCode, 409, again.body)
      const unlinked = await ctx.app.inject({
        method: 'DELETE',
        url: `/users/me/identities/${PROVIDER}`,
        headers: user.headers,
      })
      assert.equal(unlinked.statusCode, 204, unlinked.body)
      assert.deepEqual(await listOf(ctx.app, user.headers), [])
      assert.ok((await eventsOf(ctx.app, user.id, 'external_identity_unlinked')).length === 1)
    })

    test('the last way into an account cannot be unlinked: 409; with a second provider it can', async () => {
      const person = idp.addPerson()
      const signedIn = await signInAs(ctx.app, idp, person.sub)
      const user = (await userByEmail(ctx.app, person.email!))!
      const headers = bearer(signedIn.json().access_token)
      const refused = await ctx.app.inject({
        method: 'DELETE',
        url: `/users/me/identities/${PROVIDER}`,
        headers,
      })
      assert.equal(refused.statusCode, 409, refused.body)
      assert.match(refused.json().detail, /last way to log in/)
      assert.equal((await identityRows(ctx.app, user.id)).length, 1)

      // A second provider linked (an account without a password re-authenticates with nothing it has,
      // so the link is made here as a fresh sign-in of a second-factor-less account would: by the rows).
      await storeIdentity(ctx.app, {
        userId: user.id,
        provider: SECOND_PROVIDER,
        subject: `second-${person.sub}`,
      })
      const unlinked = await ctx.app.inject({
        method: 'DELETE',
        url: `/users/me/identities/${PROVIDER}`,
        headers,
      })
      assert.equal(unlinked.statusCode, 204, unlinked.body)
      assert.deepEqual(
        (await identityRows(ctx.app, user.id)).map((row) => row.provider),
        [SECOND_PROVIDER],
      )
    })

    test('unlinking a provider that is not linked is a 404; an unknown provider id a 422', async () => {
      const user = await userWithToken(ctx.app)
      const missing = await ctx.app.inject({
        method: 'DELETE',
        url: `/users/me/identities/${PROVIDER}`,
        headers: user.headers,
      })
      assert.equal(missing.statusCode, 404, missing.body)
      const bad = await ctx.app.inject({
        method: 'DELETE',
        url: '/users/me/identities/Not_An_Id',
        headers: user.headers,
      })
      assert.equal(bad.statusCode, 422, bad.body)
    })
  },
  { env },
)
