/**
 * The details of a sign-in with a provider that the attack tests do not pin: what the audit trail
 * records and the owner is mailed, how a new account is named, which claims count (a string
 * "true", UserInfo), the lifetimes of a sign-in in flight, where a browser may be sent back, a
 * public client, the provider's own errors. One engine (SQLite): these are rules, not SQL.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { bearer, register, testConfig, uniqueUser } from '../../support/app.js'
import { MINUTE, SECOND, TestClock } from '../../support/clock.js'
import { startTestIdentityProvider } from '../../support/oidc-provider.js'
import { startSmtpInbox } from '../../support/smtp-inbox.js'
import { eventsOf, userWithToken } from '../mfa/support.js'
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
  signInAs,
  startSignIn,
  userByEmail,
  storeIdentity,
} from './support.js'

const PUBLIC = 'public'
const idp = await startTestIdentityProvider({ redirectUris: [callbackOf(PROVIDER), callbackOf(PUBLIC)] })
const inbox = await startSmtpInbox()
after(() => idp.close())

const subjectsTo = inbox.waitForSubjects

const detailsOf = (rows: { details: string | null }[]) =>
  rows.map((row) => JSON.parse(row.details!) as unknown)

describe('sign-in with a provider: records, notices, names, claims, lifetimes', () => {
  const clock = new TestClock()
  let app: FastifyInstance

  before(async () => {
    const providers = [
      idp.entry(PROVIDER, 'Test SSO'),
      { id: PUBLIC, name: 'Public SSO', issuer: idp.issuer, client_id: idp.publicClientId },
    ]
    const config = testConfig({
      DATABASE_URL: 'sqlite::memory:',
      PUBLIC_URL,
      OIDC_PROVIDERS: JSON.stringify(providers),
      CORS_ORIGINS: 'https://app.example.com',
      SMTP_URL: inbox.url,
    })
    app = await buildApp(config, { logger: false, clock })
  })
  after(() => app?.close())

  test('the audit trail records the start, the new account and the sign-in; a second sign-in is a plain one', async () => {
    const person = idp.addPerson()
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    const user = (await userByEmail(app, person.email!))!
    assert.deepEqual(detailsOf(await eventsOf(app, user.id, 'user_registered')), [{ provider: PROVIDER }])
    assert.deepEqual(detailsOf(await eventsOf(app, user.id, 'external_login_succeeded')), [
      { provider: PROVIDER, created: true },
    ])
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    assert.deepEqual(detailsOf(await eventsOf(app, user.id, 'external_login_succeeded')).at(-1), {
      provider: PROVIDER,
    })
    const started = await app.db
      .selectFrom('audit_events')
      .select(['details', 'outcome'])
      .where('event', '=', 'external_login_started')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow()
    assert.deepEqual(
      [started.outcome, JSON.parse(started.details!)],
      ['success', { provider: PROVIDER, purpose: 'sign_in' }],
    )
  })

  test('a link by email is recorded and mailed to the owner; the same person again changes nothing', async () => {
    const owner = await register(app, uniqueUser())
    await app.db.updateTable('users').set({ email_verified: true }).where('id', '=', owner.id).execute()
    const person = idp.addPerson({ email: owner.email })
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    assert.deepEqual(detailsOf(await eventsOf(app, owner.id, 'external_login_succeeded')), [
      { provider: PROVIDER, linked: true },
    ])
    assert.deepEqual(await subjectsTo(owner.email, 1), ['Sign-in with Test SSO added'])
    assert.match(inbox.mailsTo(owner.email).at(-1)!.decoded, /can now be signed in to with Test SSO/)
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    await sleep(200)
    assert.deepEqual(await subjectsTo(owner.email, 1), ['Sign-in with Test SSO added'], 'one notice only')
  })

  test('a sign-in records the email the provider gives now; the account keeps its own', async () => {
    const person = idp.addPerson()
    await signInAs(app, idp, person.sub)
    const user = (await userByEmail(app, person.email!))!
    clock.advance(MINUTE)
    person.email = `renamed-${person.email}`
    assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
    const [identity] = await identityRows(app, user.id)
    assert.equal(identity!.email, person.email)
    assert.equal(identity!.last_used_at?.getTime(), clock.now())
    assert.equal(
      (await app.db.selectFrom('users').select('email').where('id', '=', user.id).executeTakeFirstOrThrow())
        .email,
      user.email,
    )
  })

  test("a new account's name: preferred_username, else name, else the email's local part, without '@'", async () => {
    const cases = [
      [{ preferred_username: 'ada@home', name: 'Ada L.' }, 'adahome'],
      [{ preferred_username: undefined, name: 'Charles Babbage' }, 'Charles Babbage'],
      [
        { preferred_username: undefined, name: undefined, email: `local.part-${Date.now()}@example.org` },
        `local.part-${Date.now()}`,
      ],
    ] as const
    for (const [claims, expected] of cases) {
      const person = idp.addPerson(claims)
      assert.equal((await signInAs(app, idp, person.sub)).statusCode, 200)
      const user = (await userByEmail(app, person.email!))!
      if (expected.startsWith('local.part')) assert.match(user.name, /^local\.part-\d+$/)
      else assert.equal(user.name, expected)
    }
  })

  test('email_verified as the string "true" counts as verified; any other value does not', async () => {
    const stringy = idp.addPerson({ email_verified: 'true' as unknown as boolean })
    assert.equal((await signInAs(app, idp, stringy.sub)).statusCode, 200)
    const yes = idp.addPerson({ email_verified: 'yes' as unknown as boolean })
    assert.equal((await signInAs(app, idp, yes.sub)).statusCode, 403)
  })

  test('a sign-in in flight lives 10 minutes; starting another sweeps those past their time', async () => {
    const person = idp.addPerson()
    const first = await startSignIn(app)
    const second = await startSignIn(app)
    const firstAnswer = await idp.signIn(first.authorizationUrl.href, person.sub)
    const secondAnswer = await idp.signIn(second.authorizationUrl.href, person.sub)
    const stateHashOf = (started: { authorizationUrl: URL }) =>
      createHash('sha256').update(started.authorizationUrl.searchParams.get('state')!).digest('hex')
    const stored = async (started: { authorizationUrl: URL }) =>
      (
        await app.db
          .selectFrom('external_logins')
          .select('state_hash')
          .where('state_hash', '=', stateHashOf(started))
          .execute()
      ).length
    clock.advance(10 * MINUTE - SECOND)
    assert.ok((await returnAfter(app, firstAnswer)).searchParams.get('code'), 'alive a second before its end')
    clock.advance(SECOND)
    assert.equal((await callback(app, secondAnswer)).statusCode, 400, 'expired at 10 minutes')
    assert.equal(await stored(second), 1, 'still stored, expired')
    await startSignIn(app)
    assert.equal(await stored(second), 0, 'swept by the next start')
  })

  test('return_to may be on PUBLIC_URL, the account pages (WEBAUTHN_ORIGINS) or CORS_ORIGINS', async () => {
    for (const returnTo of [
      `${PUBLIC_URL}/elsewhere`,
      'http://localhost:8000/account',
      'https://app.example.com/back',
    ]) {
      const person = idp.addPerson()
      const started = await startSignIn(app, { returnTo })
      const back = await returnAfter(app, await idp.signIn(started.authorizationUrl.href, person.sub))
      assert.equal(`${back.origin}${back.pathname}`, new URL(returnTo).href)
      assert.equal(back.searchParams.get('provider'), PROVIDER)
    }
  })

  test('a public client (no secret) signs in with PKCE alone', async () => {
    const person = idp.addPerson()
    const { code, verifier } = await codeFor(app, idp, person.sub, { provider: PUBLIC })
    const response = await exchange(app, { code, code_verifier: verifier }, PUBLIC)
    assert.equal(response.statusCode, 200, response.body)
  })

  test("the provider's own error at the callback goes back to the client as provider_error", async () => {
    const started = await startSignIn(app)
    const state = started.authorizationUrl.searchParams.get('state')!
    const address = new URL(callbackOf(PROVIDER))
    address.search = new URLSearchParams({ error: 'server_error', state, iss: idp.issuer }).toString()
    const back = await returnAfter(app, address)
    assert.equal(back.searchParams.get('error'), 'provider_error')
    assert.match(back.searchParams.get('error_description') ?? '', /refused the sign-in \(server_error\)/)
  })

  test('refusals are recorded with their reason: a forged state, a used code, a wrong verifier', async () => {
    const person = idp.addPerson()
    const started = await startSignIn(app)
    const answer = await idp.signIn(started.authorizationUrl.href, person.sub)
    const forged = new URL(answer)
    forged.searchParams.set('state', 'forged')
    await callback(app, forged)
    const code = (await returnAfter(app, answer)).searchParams.get('code')!
    await exchange(app, { code, code_verifier: pkcePair().verifier })
    await exchange(app, { code, code_verifier: started.verifier })
    await exchange(app, { code, code_verifier: started.verifier })
    const reasons = await app.db
      .selectFrom('audit_events')
      .select('details')
      .where('event', '=', 'external_login_failed')
      .orderBy('id', 'desc')
      .limit(3)
      .execute()
    assert.deepEqual(detailsOf(reasons).reverse(), [
      { provider: PROVIDER, reason: 'unknown_state' },
      { provider: PROVIDER, reason: 'code' },
      { provider: PROVIDER, reason: 'code_reused' },
    ])
  })

  test('linking and unlinking are mailed to the owner; a provider no longer configured is listed by its id', async () => {
    const user = await userWithToken(app)
    const { verifier, challenge } = pkcePair()
    const started = await app.inject({
      method: 'POST',
      url: `/users/me/identities/${PROVIDER}/authorization`,
      headers: user.headers,
      payload: { code_challenge: challenge, password: user.password },
    })
    const back = await returnAfter(
      app,
      await idp.signIn(started.json().authorization_url, idp.addPerson().sub),
    )
    const linked = await app.inject({
      method: 'POST',
      url: `/users/me/identities/${PROVIDER}`,
      headers: user.headers,
      payload: { code: back.searchParams.get('code'), code_verifier: verifier },
    })
    assert.equal(linked.statusCode, 201, linked.body)
    const unlinked = await app.inject({
      method: 'DELETE',
      url: `/users/me/identities/${PROVIDER}`,
      headers: user.headers,
    })
    assert.equal(unlinked.statusCode, 204)
    assert.deepEqual(await subjectsTo(user.email, 2), [
      'Sign-in with Test SSO added',
      'Sign-in with Test SSO removed',
    ])

    await storeIdentity(app, { userId: user.id, provider: 'retired', subject: 'x' })
    const list = await app.inject({ url: '/users/me/identities', headers: bearer(user.token) })
    assert.deepEqual(
      list
        .json<{ items: { provider: string; provider_name: string }[] }>()
        .items.map((item) => [item.provider, item.provider_name]),
      [['retired', 'retired']],
    )
  })
})

describe('sign-in with a provider under REQUIRE_EMAIL_VERIFICATION', () => {
  let app: FastifyInstance
  before(async () => {
    app = await buildApp(
      testConfig({
        DATABASE_URL: 'sqlite::memory:',
        PUBLIC_URL,
        REQUIRE_EMAIL_VERIFICATION: 'true',
        OIDC_PROVIDERS: JSON.stringify([idp.entry(PROVIDER)]),
      }),
      { logger: false },
    )
  })
  after(() => app?.close())

  test('an account whose email is not verified is not signed in to by its linked provider: 403', async () => {
    const user = await register(app, uniqueUser())
    const person = idp.addPerson()
    await storeIdentity(app, { userId: user.id, subject: person.sub })
    const response = await signInAs(app, idp, person.sub)
    assert.equal(response.statusCode, 403, response.body)
    assert.match(response.json().detail, /not verified yet/)
  })
})
