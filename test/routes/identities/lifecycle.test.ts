/**
 * The life of a linked identity read whole, step by step: what starting a link, its refusal at the
 * provider, the link, the refusal of an identity that is someone else's and the unlink each answer,
 * record in the audit trail and mail to the owner; which ways in count when an identity is unlinked
 * (the password, each other identity, each passkey); the refusals of a flow's steps with their whole
 * problem and audit row. One engine (SQLite): these are rules, not SQL.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { problemTitle } from '../../../src/schemas/problem.js'
import { testConfig } from '../../support/app.js'
import { MINUTE, SECOND, TestClock } from '../../support/clock.js'
import { startTestIdentityProvider } from '../../support/oidc-provider.js'
import { startSmtpInbox } from '../../support/smtp-inbox.js'
import { userWithToken, type TestUser } from '../mfa/support.js'
import { userWithPasskey } from '../passkeys/support.js'
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
  storeIdentity,
} from './support.js'

const SECOND_PROVIDER = 'second'
const idp = await startTestIdentityProvider({
  redirectUris: [callbackOf(PROVIDER), callbackOf(SECOND_PROVIDER)],
})
const inbox = await startSmtpInbox()
after(() => idp.close())

type Headers = Record<string, string>

/** The whole problem+json body of a refusal. */
function assertProblemBody(
  response: LightMyRequestResponse,
  status: number,
  detail: string,
  errors?: { in: string; field: string; message: string }[],
) {
  assert.equal(response.statusCode, status, response.body)
  assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8')
  assert.deepEqual(response.json(), {
    type: 'about:blank',
    title: problemTitle(status),
    status,
    detail,
    ...(errors ? { errors } : {}),
  })
}

const NOT_LINKED = 'No identity of this provider is linked to your account.'
const LINKED_ALREADY = 'An identity of this provider is linked to your account already: unlink it first.'
const LINKED_ELSEWHERE =
  'This account of the provider is linked to another account here, or yours has one of this provider already.'
const LAST_WAY =
  'This is the last way to log in to your account: set a password (password recovery) or add a passkey first.'
const BAD_CODE =
  'The code is unknown, used, expired, or was not issued to this client (the code_verifier does not match its code_challenge): sign in again.'
const UNKNOWN_STATE =
  'This sign-in is unknown, expired or already finished (its state does not match one this server started): start again.'

describe('the life of a linked identity: answers, audit rows and notices, whole', () => {
  const clock = new TestClock()
  let app: FastifyInstance

  before(async () => {
    const providers = [idp.entry(PROVIDER, 'Test SSO'), idp.entry(SECOND_PROVIDER, 'Second SSO')]
    app = await buildApp(
      testConfig({
        DATABASE_URL: 'sqlite::memory:',
        PUBLIC_URL,
        OIDC_PROVIDERS: JSON.stringify(providers),
        SMTP_URL: inbox.url,
      }),
      { logger: false, clock },
    )
  })
  after(() => app?.close())

  /** The id of the newest audit row: what a step records comes after it. */
  async function auditMark(): Promise<number> {
    const row = await app.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst()
    return Number(row?.id ?? 0)
  }

  /** Every audit row after `mark`, oldest first: what it says, about whom, by whom. */
  async function auditSince(mark: number) {
    const rows = await app.db
      .selectFrom('audit_events')
      .select(['event', 'outcome', 'user_id', 'actor_id', 'details'])
      .where('id', '>', mark)
      .orderBy('id')
      .execute()
    return rows.map((row) => ({ ...row, details: row.details === null ? null : JSON.parse(row.details) }))
  }

  const startLink = (user: TestUser, provider: string, challenge = pkcePair().challenge) =>
    app.inject({
      method: 'POST',
      url: `/users/me/identities/${provider}/authorization`,
      headers: user.headers,
      payload: { code_challenge: challenge, password: user.password },
    })

  /** A link started with the password and signed in at the provider as `sub`: its code and verifier. */
  async function linkCode(user: TestUser, sub: string, provider = PROVIDER) {
    const { verifier, challenge } = pkcePair()
    const started = await startLink(user, provider, challenge)
    assert.equal(started.statusCode, 200, started.body)
    const back = await returnAfter(app, await idp.signIn(started.json().authorization_url, sub))
    const code = back.searchParams.get('code')
    assert.ok(code, back.href)
    return { code, verifier }
  }

  const finishLink = (headers: Headers, link: { code: string; verifier: string }, provider = PROVIDER) =>
    app.inject({
      method: 'POST',
      url: `/users/me/identities/${provider}`,
      headers,
      payload: { code: link.code, code_verifier: link.verifier },
    })

  const unlink = (headers: Headers, provider = PROVIDER) =>
    app.inject({ method: 'DELETE', url: `/users/me/identities/${provider}`, headers })

  /** An identity linked by its row, as a sign-in that made or linked it would leave it. */
  const insertIdentity = (userId: number, provider: string) =>
    storeIdentity(app, {
      userId,
      provider,
      subject: `subject-${randomBytes(6).toString('hex')}`,
      createdAt: new Date(clock.now()),
    })

  test('starting a link is recorded as a link of the caller; cancelled at the provider, as their failure', async () => {
    const user = await userWithToken(app)
    const mark = await auditMark()
    const started = await startLink(user, PROVIDER)
    assert.equal(started.statusCode, 200, started.body)
    const back = await returnAfter(app, await idp.signIn(started.json().authorization_url, 'cancel'))
    assert.equal(back.origin + back.pathname, `${PUBLIC_URL}/account`)
    assert.deepEqual(Object.fromEntries(back.searchParams), {
      error: 'access_denied',
      error_description: 'The sign-in was cancelled at "Test SSO".',
    })
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_login_started',
        outcome: 'success',
        user_id: user.id,
        actor_id: user.id,
        details: { provider: PROVIDER, purpose: 'link' },
      },
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: user.id,
        actor_id: null,
        details: { provider: PROVIDER, reason: 'access_denied' },
      },
    ])
    assert.deepEqual(
      await app.db.selectFrom('external_logins').selectAll().where('user_id', '=', user.id).execute(),
      [],
    )
  })

  test('a state this server never made: 400 with the whole problem, recorded as a failure of nobody', async () => {
    const started = await startSignIn(app)
    const forged = new URL(await idp.signIn(started.authorizationUrl.href, idp.addPerson().sub))
    forged.searchParams.set('state', 'forged')
    const mark = await auditMark()
    assertProblemBody(await callback(app, forged), 400, UNKNOWN_STATE)
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: null,
        actor_id: null,
        details: { provider: PROVIDER, reason: 'unknown_state' },
      },
    ])
  })

  test('a one-time code never issued: 400 with the whole problem, recorded as a failure of nobody', async () => {
    const mark = await auditMark()
    const response = await exchange(app, {
      code: randomBytes(32).toString('base64url'),
      code_verifier: pkcePair().verifier,
    })
    assertProblemBody(response, 400, BAD_CODE)
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: null,
        actor_id: null,
        details: { provider: PROVIDER, reason: 'code' },
      },
    ])
  })

  test("a link's code refused is recorded against the one who tried it, else the link's owner", async () => {
    const owner = await userWithToken(app)
    const intruder = await userWithToken(app)
    const link = await linkCode(owner, idp.addPerson().sub)

    const mark = await auditMark()
    assertProblemBody(await finishLink(intruder.headers, link), 400, BAD_CODE)
    assertProblemBody(await exchange(app, { code: link.code, code_verifier: link.verifier }), 400, BAD_CODE)
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: intruder.id,
        actor_id: intruder.id,
        details: { provider: PROVIDER, reason: 'code' },
      },
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: owner.id,
        actor_id: null,
        details: { provider: PROVIDER, reason: 'code' },
      },
    ])
    assert.equal((await finishLink(owner.headers, link)).statusCode, 201, 'nothing was spent')
  })

  test('return_to off the allowed origins, not a URL, or with a fragment: 422 naming where it was sent', async () => {
    const refusal = (sentIn: string) => [
      {
        in: sentIn,
        field: 'return_to',
        message: 'must be a URL without a fragment on PUBLIC_URL, WEBAUTHN_ORIGINS or CORS_ORIGINS',
      },
    ]
    const detail = 'return_to is not an address this server may send a browser to.'
    const user = await userWithToken(app)
    for (const returnTo of ['https://attacker.example/back', 'not a url', `${PUBLIC_URL}/account#x`]) {
      // A sign-in sends it in the query (as every refusal of a query parameter names it) …
      const query = new URLSearchParams({ code_challenge: pkcePair().challenge, return_to: returnTo })
      const signIn = await app.inject({ method: 'GET', url: `/login/${PROVIDER}?${query}` })
      assertProblemBody(signIn, 422, detail, refusal('query'))
      // … a link in its JSON body.
      const link = await app.inject({
        method: 'POST',
        url: `/users/me/identities/${PROVIDER}/authorization`,
        headers: user.headers,
        payload: { code_challenge: pkcePair().challenge, password: user.password, return_to: returnTo },
      })
      assertProblemBody(link, 422, detail, refusal('body'))
    }
    assert.deepEqual(await identityRows(app, user.id), [], 'nothing was linked')
  })

  test('a provider that is not configured: 404 naming it, to sign in and to link', async () => {
    const user = await userWithToken(app)
    const detail = 'No identity provider "nobody" is configured here.'
    const signIn = await app.inject({
      method: 'GET',
      url: `/login/nobody?code_challenge=${pkcePair().challenge}`,
    })
    assertProblemBody(signIn, 404, detail)
    assertProblemBody(await startLink(user, 'nobody'), 404, detail)
  })

  test('a link is answered, stored, recorded and mailed; another provider linked does not stop one, the same does', async () => {
    const user = await userWithToken(app)
    // A person the provider knows no email of: the identity is linked without one.
    const anonymous = idp.addPerson({ email: undefined, email_verified: undefined })
    const second = await linkCode(user, anonymous.sub, SECOND_PROVIDER)
    clock.advance(SECOND)
    const mark = await auditMark()
    const linked = await finishLink(user.headers, second, SECOND_PROVIDER)
    assert.equal(linked.statusCode, 201, linked.body)
    const at = new Date(clock.now()).toISOString()
    assert.deepEqual(linked.json(), {
      provider: SECOND_PROVIDER,
      provider_name: 'Second SSO',
      email: null,
      created_at: at,
      last_used_at: at,
    })
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_identity_linked',
        outcome: 'success',
        user_id: user.id,
        actor_id: user.id,
        details: { provider: SECOND_PROVIDER },
      },
    ])

    // With the second provider linked, the first can still be linked; its email is stored lower-cased.
    const person = idp.addPerson()
    person.email = `Mixed.${person.email!}`.replace('@provider', '@Provider')
    const first = await finishLink(user.headers, await linkCode(user, person.sub))
    assert.equal(first.statusCode, 201, first.body)
    assert.equal(first.json().email, person.email.toLowerCase())
    assert.deepEqual(
      (await identityRows(app, user.id)).map(({ provider, subject, email }) => ({
        provider,
        subject,
        email,
      })),
      [
        { provider: SECOND_PROVIDER, subject: anonymous.sub, email: null },
        { provider: PROVIDER, subject: person.sub, email: person.email.toLowerCase() },
      ],
    )

    const again = await startLink(user, SECOND_PROVIDER)
    assertProblemBody(again, 409, LINKED_ALREADY)
    assert.deepEqual(await inbox.waitForSubjects(user.email, 2), [
      'Sign-in with Second SSO added',
      'Sign-in with Test SSO added',
    ])
  })

  test("an identity linked to another account: 409 with the whole problem, recorded as the caller's failure", async () => {
    const person = idp.addPerson()
    const link = await codeFor(app, idp, person.sub)
    assert.equal((await exchange(app, { code: link.code, code_verifier: link.verifier })).statusCode, 200)
    const owner = (await userByEmail(app, person.email!))!
    const other = await userWithToken(app)
    const code = await linkCode(other, person.sub)
    const mark = await auditMark()
    assertProblemBody(await finishLink(other.headers, code), 409, LINKED_ELSEWHERE)
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_login_failed',
        outcome: 'failure',
        user_id: other.id,
        actor_id: other.id,
        details: { provider: PROVIDER, reason: 'linked_elsewhere' },
      },
    ])
    assert.deepEqual(await identityRows(app, other.id), [])
    assert.equal((await identityRows(app, owner.id)).length, 1)
  })

  test('an unlink is recorded with its provider and mailed; one not linked is a 404 with the whole problem', async () => {
    const user = await userWithToken(app)
    await insertIdentity(user.id, PROVIDER)
    assertProblemBody(await unlink(user.headers, SECOND_PROVIDER), 404, NOT_LINKED)
    const mark = await auditMark()
    assert.equal((await unlink(user.headers)).statusCode, 204)
    assert.deepEqual(await auditSince(mark), [
      {
        event: 'external_identity_unlinked',
        outcome: 'success',
        user_id: user.id,
        actor_id: user.id,
        details: { provider: PROVIDER },
      },
    ])
    assert.deepEqual(await identityRows(app, user.id), [])
    assert.deepEqual(await inbox.waitForSubjects(user.email, 1), ['Sign-in with Test SSO removed'])
  })

  test('an unlink counts the password and each identity left: of two with a password, both go', async () => {
    const user = await userWithToken(app)
    await insertIdentity(user.id, PROVIDER)
    await insertIdentity(user.id, SECOND_PROVIDER)
    assert.equal((await unlink(user.headers)).statusCode, 204)
    assert.equal((await unlink(user.headers, SECOND_PROVIDER)).statusCode, 204)
    assert.deepEqual(await identityRows(app, user.id), [])
  })

  test('an unlink counts each passkey beside the password', async () => {
    const { user } = await userWithPasskey(app)
    await insertIdentity(user.id, PROVIDER)
    assert.equal((await unlink(user.headers)).statusCode, 204)
    assert.deepEqual(await identityRows(app, user.id), [])
  })

  test('the last way in is not unlinked: 409 with the whole problem, nothing recorded', async () => {
    const person = idp.addPerson()
    const { code, verifier } = await codeFor(app, idp, person.sub)
    const signedIn = await exchange(app, { code, code_verifier: verifier })
    const user = (await userByEmail(app, person.email!))!
    const headers = { authorization: `Bearer ${signedIn.json().access_token}` }
    const mark = await auditMark()
    assertProblemBody(await unlink(headers), 409, LAST_WAY)
    assert.deepEqual(await auditSince(mark), [])
    assert.equal((await identityRows(app, user.id)).length, 1)
  })

  test("a link's sign-in lives 10 minutes to the millisecond, its one-time code 60 seconds", async () => {
    const user = await userWithToken(app)
    const { verifier, challenge } = pkcePair()
    const started = await startLink(user, PROVIDER, challenge)
    const answer = await idp.signIn(started.json().authorization_url, idp.addPerson().sub)
    clock.advance(10 * MINUTE - 1)
    const back = await returnAfter(app, answer)
    const code = back.searchParams.get('code')!
    clock.advance(60 * SECOND - 1)
    const linked = await finishLink(user.headers, { code, verifier })
    assert.equal(linked.statusCode, 201, linked.body)
    assert.equal(linked.json().created_at, new Date(clock.now()).toISOString())

    const late = await startLink(user, SECOND_PROVIDER)
    const lateAnswer = await idp.signIn(late.json().authorization_url, idp.addPerson().sub)
    clock.advance(10 * MINUTE)
    assertProblemBody(await callback(app, lateAnswer), 400, UNKNOWN_STATE)

    // A new login: the first one's access token is past its 15 minutes by now.
    const slow = await userWithToken(app)
    const slowCode = await linkCode(slow, idp.addPerson().sub)
    clock.advance(60 * SECOND)
    assertProblemBody(await finishLink(slow.headers, slowCode), 400, BAD_CODE)
    assert.deepEqual(
      (await identityRows(app, user.id)).map((row) => row.provider),
      [PROVIDER],
    )
    assert.deepEqual(await identityRows(app, slow.id), [])
  })
})
