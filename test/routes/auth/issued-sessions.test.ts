/**
 * An access token is honoured only for a session the server issued, to the user it was issued
 * to: a correctly signed token is not enough. Attacks with tokens signed by the right key (what a
 * deployment that shares SECRET_KEY, e.g. a staging copy, or a leaked key would mint), and the
 * race of a user deleted while a request of theirs runs: always a 401, never a 500.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { SignJWT, decodeJwt } from 'jose'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  register,
  registerAndLogin,
  TEST_SECRET,
  uniqueSku,
  TEST_KID,
} from '../../support/app.js'

/** A token signed with the server's own key, with the claims of a real one changed. */
async function forge(real: string, changes: Record<string, unknown>): Promise<string> {
  const claims = { ...decodeJwt(real), ...changes }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: TEST_KID })
    .sign(new TextEncoder().encode(TEST_SECRET))
}

async function createProduct(app: FastifyInstance, token: string) {
  return app.inject({
    method: 'POST',
    url: '/product/',
    headers: bearer(token),
    payload: { product_id: uniqueSku(), name: 'Forged', price: 1 },
  })
}

function assertInvalidToken(response: Awaited<ReturnType<FastifyInstance['inject']>>) {
  assertProblem(response, 401)
  assert.match(String(response.headers['www-authenticate']), /^Bearer .*error="invalid_token"/)
}

async function productCount(app: FastifyInstance, ownerId: number) {
  const row = await app.db
    .selectFrom('products')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('owner_id', '=', ownerId)
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

describeEachEngine('only sessions the server issued', (ctx) => {
  test('a correctly signed token naming a session that was never issued is refused', async () => {
    const user = await registerAndLogin(ctx.app)
    const forged = await forge(user.token, { sid: randomUUID(), jti: randomUUID() })
    assertInvalidToken(await ctx.app.inject({ method: 'GET', url: '/current-user', headers: bearer(forged) }))
    assertInvalidToken(await createProduct(ctx.app, forged))
    assert.equal(await productCount(ctx.app, user.id), 0)
    // The real one still works: the refusal is about the session, not the user.
    assert.equal(
      (await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers })).statusCode,
      200,
    )
  })

  test("another user's session, with my id in the token, is refused", async () => {
    const victim = await registerAndLogin(ctx.app)
    const attacker = await registerAndLogin(ctx.app)
    const forged = await forge(attacker.token, { sid: decodeJwt(victim.token).sid })
    assertInvalidToken(await ctx.app.inject({ method: 'GET', url: '/current-user', headers: bearer(forged) }))
    // And the other way round: a real session of mine naming the victim as its user.
    const asVictim = await forge(attacker.token, { sub: String(victim.id), user_id: victim.id })
    assertInvalidToken(
      await ctx.app.inject({ method: 'GET', url: `/users/${victim.id}`, headers: bearer(asVictim) }),
    )
  })

  test("a deleted user's id in a forged token: 401, never a 500, and nothing stored", async () => {
    const minter = await registerAndLogin(ctx.app)
    const gone = await register(ctx.app)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${gone.id}`,
      headers: bearer(await login(ctx.app, gone.email, gone.password)),
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    const forged = await forge(minter.token, { sub: String(gone.id), user_id: gone.id, sid: randomUUID() })
    assertInvalidToken(await createProduct(ctx.app, forged))
    assert.equal(await productCount(ctx.app, gone.id), 0)
  })

  test('a user deleted while their session is in use (behind the API): 401, never a 500', async () => {
    const user = await registerAndLogin(ctx.app)
    // The session is in use: this instance knows it.
    assert.equal((await createProduct(ctx.app, user.token)).statusCode, 201)
    // Deleted straight in the database (another service, an operator): nothing was revoked, so
    // the next write reaches the database for a user that is gone.
    await ctx.app.db.deleteFrom('products').where('owner_id', '=', user.id).execute()
    await ctx.app.db.deleteFrom('users').where('id', '=', user.id).execute()
    const response = await createProduct(ctx.app, user.token)
    assertProblem(response, 401)
    assert.equal(await productCount(ctx.app, user.id), 0)
  })
})
