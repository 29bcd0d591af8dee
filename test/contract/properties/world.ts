/**
 * The world the property tests' requests act on: the parts of /openapi.json they read, and the
 * fixture accounts, tokens and products that a generated request can name.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { uniqueSku, uniqueUser, type EngineContext, TEST_KID } from '../../support/app.js'
import { type Schema } from '../../support/schema-arbitraries.js'

export interface Parameter {
  in: 'path' | 'query' | 'header' | 'cookie'
  name: string
  required?: boolean
  schema: Schema
}
export interface Operation {
  parameters?: Parameter[]
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>
}

/** A name for a row or a secret of the running server, looked up when the request is sent. */
export class Known {
  constructor(readonly ref: string) {}
  toString() {
    return `<${this.ref}>`
  }
}

export type Role = 'user' | 'admin'
export type Who = 'user' | 'admin' | 'other'

export interface Account {
  role: Role
  id: number
  name: string
  email: string
  password: string
  token: string
  refreshToken: string
  usedRefreshToken?: string
  productId: number
  sku: string
}

export const sessionOf = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid

/**
 * The fixture accounts (a user, an admin, another user), each with a token from the real /login
 * and a product. Requests may delete, demote, log out or re-password them: `ensure` notices and
 * puts a fresh one in place, so every run starts from working fixtures.
 */
export class World {
  accounts = {} as Record<Who, Account>
  /** Tokens that must be refused: revoked, expired, signed with another key. */
  deadTokens: string[] = []
  /** By list operation: the query of the next page of the last page it answered. */
  nextPages = new Map<string, string>()

  constructor(
    readonly base: string,
    readonly ctx: EngineContext,
  ) {}

  async call(method: string, path: string, options: { token?: string; json?: unknown; form?: object } = {}) {
    const headers: Record<string, string> = {}
    if (options.token) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.json)
    } else if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(options.form as Record<string, string>).toString()
    }
    const response = await fetch(this.base + path, { method, headers, body })
    const text = await response.text()
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }

  async login(username: string, password: string) {
    const response = await this.call('POST', '/login', { form: { username, password } })
    assert.equal(response.status, 200, `fixture login: ${JSON.stringify(response.body)}`)
    return response.body as { access_token: string; refresh_token: string }
  }

  /** A new session for an account whose password still works; false when it does not. */
  async loginAgain(account: Account): Promise<boolean> {
    const response = await this.call('POST', '/login', {
      form: { username: account.email, password: account.password },
    })
    if (response.status !== 200 || typeof response.body.access_token !== 'string') return false
    account.token = response.body.access_token
    account.refreshToken = response.body.refresh_token as string
    return true
  }

  async createProduct(token: string) {
    const sku = uniqueSku()
    const response = await this.call('POST', '/product/', {
      token,
      json: { product_id: sku, name: 'Fixture', price: 100 },
    })
    assert.equal(response.status, 201, `fixture product: ${JSON.stringify(response.body)}`)
    return { id: response.body.id as number, sku }
  }

  async createAccount(role: Role): Promise<Account> {
    const user = uniqueUser()
    const created = await this.call('POST', '/users/', { json: user })
    assert.equal(created.status, 201, `fixture registration: ${JSON.stringify(created.body)}`)
    const id = created.body.id as number
    if (role === 'admin')
      await this.ctx.app.db.updateTable('users').set({ role }).where('id', '=', id).execute()
    const pair = await this.login(user.email, user.password)
    const product = await this.createProduct(pair.access_token)
    return {
      role,
      id,
      ...user,
      token: pair.access_token,
      refreshToken: pair.refresh_token,
      productId: product.id,
      sku: product.sku,
    }
  }

  async setUp() {
    for (const who of ['user', 'admin', 'other'] as const)
      this.accounts[who] = await this.createAccount(who === 'admin' ? 'admin' : 'user')
    // Enough products for a few pages, with equal prices and look-alike names to tie on.
    for (let i = 0; i < 24; i++)
      await this.call('POST', '/product/', {
        token: this.accounts[(['user', 'admin', 'other'] as const)[i % 3]!].token,
        json: {
          product_id: uniqueSku(),
          name: ['Lamp', 'lamp', 'Ünïcode', '😀'][i % 4],
          price: [0, 100, 100, 2 ** 53 - 1][i % 4],
        },
      })
    const { user } = this.accounts
    const revoked = await this.login(user.email, user.password)
    await this.call('POST', '/logout', { token: revoked.access_token })
    const claims = { user_id: user.id, role: 'user', sid: sessionOf(user.token) }
    const sign = (secret: string, expiresAt: number) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: TEST_KID })
        .setSubject(String(user.id))
        .setJti(randomUUID())
        .setIssuedAt(expiresAt - 900)
        .setExpirationTime(expiresAt)
        .setIssuer(this.ctx.config.jwtIssuer)
        .setAudience(this.ctx.config.jwtAudience)
        .sign(new TextEncoder().encode(secret))
    const now = Math.floor(Date.now() / 1000)
    this.deadTokens = [
      revoked.access_token,
      await sign(this.ctx.config.secretKey, now - 60),
      await sign('another-secret-key-that-is-long-enough-0123', now + 600),
    ]
  }

  /** Puts back whatever the last request broke (deleted, demoted or logged out accounts, deleted products). */
  async ensure() {
    for (const who of ['user', 'admin', 'other'] as const) {
      let account = this.accounts[who]
      let me = await this.call('GET', '/users/me', { token: account.token })
      // A session ended (a logout): the account itself is intact, so a login puts it back.
      if (me.status === 401 && (await this.loginAgain(account)))
        me = await this.call('GET', '/users/me', { token: account.token })
      if (me.status !== 200 || me.body.role !== account.role) {
        account = this.accounts[who] = await this.createAccount(account.role)
        continue
      }
      Object.assign(account, { name: me.body.name, email: me.body.email })
      const product = await this.ctx.app.db
        .selectFrom('products')
        .select(['product_id', 'owner_id'])
        .where('id', '=', account.productId)
        .executeTakeFirst()
      if (product?.owner_id === account.id) account.sku = product.product_id
      else
        Object.assign(
          account,
          await this.createProduct(account.token).then(({ id, sku }) => ({ productId: id, sku })),
        )
    }
  }

  /** The value a Known stands for, for a request made by `actor` (the user when anonymous). */
  async resolve(ref: string, actor: Account, productId: unknown): Promise<string | number> {
    const { user, admin, other } = this.accounts
    switch (ref) {
      case 'self.id':
        return actor.id
      case 'user.id':
      case 'admin.id':
      case 'other.id':
        return this.accounts[ref.split('.')[0] as Who].id
      case 'missing.id':
        return 2_147_483_647
      case 'fresh.user':
        return (await this.call('POST', '/users/', { json: uniqueUser() })).body.id as number
      case 'own.product':
        return actor.productId
      case 'user.product':
        return user.productId
      case 'admin.product':
        return admin.productId
      case 'other.product':
        return other.productId
      case 'fresh.product':
        return (await this.createProduct(actor.token)).id
      case 'own.session':
        return sessionOf(actor.token)
      case 'other.session':
        return sessionOf(other.token)
      case 'fresh.session':
        return sessionOf((await this.login(actor.email, actor.password)).access_token)
      case 'missing.session':
        return randomUUID()
      case 'etag.current': {
        const row = await this.ctx.app.db
          .selectFrom('products')
          .select('version')
          .where(
            'id',
            '=',
            Number.isInteger(productId) && Math.abs(productId as number) < 2 ** 31
              ? (productId as number)
              : 0,
          )
          .executeTakeFirst()
        return `"${row?.version ?? 1}"`
      }
      case 'actor.password':
        return actor.password
      case 'user.refresh':
        return user.refreshToken
      case 'user.usedRefresh':
        return user.usedRefreshToken ?? user.refreshToken
      default: {
        // user.email, other.name, other.sku…
        const [who, field] = ref.split('.') as [Who, keyof Account]
        return this.accounts[who][field] as string | number
      }
    }
  }
}
