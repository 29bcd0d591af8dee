import assert from 'node:assert/strict'
import { test } from 'node:test'
import { describeEachEngine, uniqueSku, uniqueUser } from '../support/app.js'

describeEachEngine('the README walk-through', (ctx) => {
  test('register → login → create and list products with the bearer token, over real HTTP', async () => {
    const base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
    const user = uniqueUser()

    const registered = await fetch(`${base}/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    })
    assert.equal(registered.status, 201)
    const created = (await registered.json()) as Record<string, unknown>
    assert.equal(created.name, user.name)
    assert.equal(created.email, user.email)
    assert.equal('password' in created, false)
    assert.equal('password_hash' in created, false)

    const loggedIn = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user.email, password: user.password }),
    })
    assert.equal(loggedIn.status, 200)
    const token = (await loggedIn.json()) as { access_token: string; token_type: string }
    assert.equal(token.token_type, 'bearer')
    assert.match(token.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    const auth = { authorization: `Bearer ${token.access_token}` }

    const me = await fetch(`${base}/current-user`, { headers: auth })
    assert.equal(me.status, 200)
    assert.equal(((await me.json()) as { email: string }).email, user.email)

    const sku = uniqueSku()
    const product = await fetch(`${base}/product/`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ product_id: sku, name: 'Keyboard', description: 'Tenkeyless', price: 12999 }),
    })
    assert.equal(product.status, 201)
    const productBody = (await product.json()) as { id: number; owner_id: number }
    assert.equal(product.headers.get('location'), `/product/${productBody.id}`)
    assert.equal(productBody.owner_id, created.id)

    const list = await fetch(`${base}/product/`, { headers: auth })
    assert.equal(list.status, 200)
    const page = (await list.json()) as { items: { product_id: string }[] }
    assert.ok(page.items.some((item) => item.product_id === sku))

    const single = await fetch(`${base}/product/${productBody.id}`, { headers: auth })
    assert.equal(single.status, 200)

    const anonymous = await fetch(`${base}/product/`)
    assert.equal(anonymous.status, 401)
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/)
  })
})
