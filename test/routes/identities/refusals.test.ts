/**
 * Attacks on a sign-in with a provider, each against the real provider on every engine: a state
 * that is missing, wrong or replayed; an ID token with another nonce, audience or issuer, expired,
 * or signed by a key the provider never published; a cancelled sign-in; the provider's code of
 * another client; our one-time code replayed, late, with another verifier or at another provider.
 * Each refusal leaves no session, no account and no link behind.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { describeEachEngine } from '../../support/app.js'
import { SECOND, TestClock } from '../../support/clock.js'
import { startTestIdentityProvider } from '../../support/oidc-provider.js'
import {
  callback,
  callbackOf,
  codeFor,
  exchange,
  identityRows,
  pkcePair,
  PROVIDER,
  PUBLIC_URL,
  returnAfter,
  startSignIn,
  userByEmail,
} from './support.js'

const OTHER = 'other'
const idp = await startTestIdentityProvider({ redirectUris: [callbackOf(PROVIDER), callbackOf(OTHER)] })
after(() => idp.close())

const clock = new TestClock()
const env = {
  PUBLIC_URL,
  OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER), idp.entry(OTHER)]),
  CORS_ORIGINS: 'https://app.example.com',
}

describeEachEngine(
  'refusals of a sign-in with a provider',
  (ctx) => {
    /** Nothing of `person` was made: no account, no identity. */
    async function nothingFor(email: string | undefined, sub: string) {
      assert.equal(await userByEmail(ctx.app, email!), undefined)
      assert.deepEqual(
        (await identityRows(ctx.app)).filter((row) => row.subject === sub),
        [],
      )
    }

    /** The provider's answer with a changed ID token: the browser goes back with an error, no code. */
    async function refusedAnswer(change: Parameters<typeof idp.tamperNextIdToken>[0], expected: RegExp) {
      const person = idp.addPerson()
      const started = await startSignIn(ctx.app)
      const answer = await idp.signIn(started.authorizationUrl.href, person.sub)
      idp.tamperNextIdToken(change)
      const back = await returnAfter(ctx.app, answer)
      assert.equal(back.origin + back.pathname, `${PUBLIC_URL}/account`)
      assert.equal(back.searchParams.get('code'), null)
      assert.equal(back.searchParams.get('error'), 'invalid_answer')
      assert.match(back.searchParams.get('error_description') ?? '', expected)
      await nothingFor(person.email, person.sub)
      // The state is spent: the same answer again is a 400.
      assert.equal((await callback(ctx.app, answer)).statusCode, 400)
    }

    test('a callback without a state, or with one this server never made, is a 400 and spends nothing', async () => {
      const person = idp.addPerson()
      const started = await startSignIn(ctx.app)
      const answer = await idp.signIn(started.authorizationUrl.href, person.sub)
      const withoutState = new URL(answer)
      withoutState.searchParams.delete('state')
      const wrongState = new URL(answer)
      wrongState.searchParams.set('state', `${answer.searchParams.get('state')}x`)
      for (const address of [withoutState, wrongState]) {
        const response = await callback(ctx.app, address)
        assert.equal(response.statusCode, 400, response.body)
        assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
        assert.match(response.json().detail, /unknown, expired or already finished/)
      }
      await nothingFor(person.email, person.sub)
      // The real answer still goes through: the forged ones spent nothing.
      const back = await returnAfter(ctx.app, answer)
      assert.ok(back.searchParams.get('code'))
    })

    test('a state of one provider is not accepted at the callback of another', async () => {
      const person = idp.addPerson()
      const started = await startSignIn(ctx.app, { provider: OTHER })
      const answer = await idp.signIn(started.authorizationUrl.href, person.sub)
      const elsewhere = new URL(answer)
      elsewhere.pathname = `/login/${PROVIDER}/callback`
      assert.equal((await callback(ctx.app, elsewhere)).statusCode, 400)
    })

    test('the same callback twice: the second is a 400 (the state is spent)', async () => {
      const person = idp.addPerson()
      const started = await startSignIn(ctx.app)
      const answer = await idp.signIn(started.authorizationUrl.href, person.sub)
      assert.equal((await callback(ctx.app, answer)).statusCode, 303)
      const again = await callback(ctx.app, answer)
      assert.equal(again.statusCode, 400, again.body)
    })

    test('an ID token with another nonce is refused', () =>
      refusedAnswer({ claims: (c) => ({ ...c, nonce: 'another' }) }, /nonce/))

    test('an ID token for another audience is refused', () =>
      refusedAnswer({ claims: (c) => ({ ...c, aud: 'another-client' }) }, /aud/))

    test('an ID token of another issuer is refused', () =>
      refusedAnswer({ claims: (c) => ({ ...c, iss: 'https://attacker.example' }) }, /iss/))

    test('an expired ID token is refused', () =>
      refusedAnswer(
        {
          claims: (c) => ({
            ...c,
            iat: Math.floor(Date.now() / 1000) - 7200,
            exp: Math.floor(Date.now() / 1000) - 3600,
          }),
        },
        /exp|timestamp/,
      ))

    test('an ID token signed by a key the provider never published is refused', () =>
      refusedAnswer({ otherKey: true }, /signature|JWS/i))

    test('a sign-in cancelled at the provider goes back with access_denied', async () => {
      const started = await startSignIn(ctx.app, { returnTo: 'https://app.example.com/after?x=1' })
      const answer = await idp.signIn(started.authorizationUrl.href, 'cancel')
      const back = await returnAfter(ctx.app, answer)
      assert.equal(back.origin + back.pathname, 'https://app.example.com/after')
      assert.equal(back.searchParams.get('x'), '1')
      assert.equal(back.searchParams.get('error'), 'access_denied')
      assert.equal(back.searchParams.get('code'), null)
    })

    test("the provider's code of another client is refused at the code exchange", async () => {
      const person = idp.addPerson()
      const started = await startSignIn(ctx.app)
      // The same request for the other client: its code comes back with our state.
      const forOther = new URL(started.authorizationUrl)
      forOther.searchParams.set('client_id', idp.otherClientId)
      const answer = await idp.signIn(forOther.href, person.sub)
      assert.ok(answer.searchParams.get('code'))
      const back = await returnAfter(ctx.app, answer)
      assert.equal(back.searchParams.get('error'), 'provider_error')
      assert.match(back.searchParams.get('error_description') ?? '', /invalid_grant/)
      assert.equal(back.searchParams.get('code'), null)
      await nothingFor(person.email, person.sub)
    })

    test('a one-time code works once: replayed, it is a 400 and the first session stands', async () => {
      const person = idp.addPerson()
      const { code, verifier } = await codeFor(ctx.app, idp, person.sub)
      const first = await exchange(ctx.app, { code, code_verifier: verifier })
      assert.equal(first.statusCode, 200, first.body)
      const again = await exchange(ctx.app, { code, code_verifier: verifier })
      assert.equal(again.statusCode, 400, again.body)
      assert.match(again.json().detail, /unknown, used, expired/)
      const user = (await userByEmail(ctx.app, person.email!))!
      const sessions = await ctx.app.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', user.id)
        .execute()
      assert.equal(sessions.length, 1)
    })

    test('a one-time code with another verifier (another client) is a 400; the right client can still use it', async () => {
      const person = idp.addPerson()
      const { code, verifier } = await codeFor(ctx.app, idp, person.sub)
      const stolen = await exchange(ctx.app, { code, code_verifier: pkcePair().verifier })
      assert.equal(stolen.statusCode, 400, stolen.body)
      await nothingFor(person.email, person.sub)
      assert.equal((await exchange(ctx.app, { code, code_verifier: verifier })).statusCode, 200)
    })

    test('a one-time code is refused at another provider', async () => {
      const person = idp.addPerson()
      const { code, verifier } = await codeFor(ctx.app, idp, person.sub)
      assert.equal((await exchange(ctx.app, { code, code_verifier: verifier }, OTHER)).statusCode, 400)
      await nothingFor(person.email, person.sub)
    })

    test('a one-time code lives 60 seconds', async () => {
      const person = idp.addPerson()
      const { code, verifier } = await codeFor(ctx.app, idp, person.sub)
      clock.advance(60 * SECOND)
      try {
        assert.equal((await exchange(ctx.app, { code, code_verifier: verifier })).statusCode, 400)
      } finally {
        clock.advance(-60 * SECOND)
      }
      await nothingFor(person.email, person.sub)
    })

    test('bad starts: an unknown provider is a 404; a foreign return_to or a bad challenge a 422', async () => {
      const { challenge } = pkcePair()
      const flows = () => ctx.app.db.selectFrom('external_logins').select('state_hash').execute()
      const before = (await flows()).length
      const unknown = await ctx.app.inject({
        method: 'GET',
        url: `/login/nobody?code_challenge=${challenge}`,
      })
      assert.equal(unknown.statusCode, 404, unknown.body)
      for (const returnTo of [
        'https://attacker.example/',
        'javascript:alert(1)',
        `${PUBLIC_URL}/account#x`,
      ]) {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/login/${PROVIDER}?${new URLSearchParams({ code_challenge: challenge, return_to: returnTo })}`,
        })
        assert.equal(response.statusCode, 422, response.body)
        assert.equal(response.json().errors[0].field, 'return_to')
      }
      for (const query of [
        '',
        'code_challenge=short',
        `code_challenge=${challenge}&code_challenge_method=plain`,
      ]) {
        const response = await ctx.app.inject({ method: 'GET', url: `/login/${PROVIDER}?${query}` })
        assert.equal(response.statusCode, 422, response.body)
      }
      assert.equal((await flows()).length, before, 'no refused start is stored')
    })
  },
  { env, build: { clock } },
)
