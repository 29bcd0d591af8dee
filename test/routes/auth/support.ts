/** Requests, token forgeries and assertions shared by the tests of login and bearer authentication. */
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { SignJWT, type CryptoKey, type JWTPayload } from 'jose'
import { assertProblem, bearer, TEST_KID } from '../../support/app.js'

// ------------------------------------------------------------------ helpers

/** The default issuer and audience of the access tokens. */
export const ISSUER = 'fastauth-api'
export const AUDIENCE = 'fastauth-api'
export const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
/** Routes that need a valid access token, each answering 200 to its rightful caller. */
export const PROTECTED_ROUTES = ['/current-user', '/users/me', '/product/'] as const

export const bytes = (text: string) => new TextEncoder().encode(text)
export const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
export const nowSeconds = () => Math.floor(Date.now() / 1000)

export function loginForm(app: FastifyInstance, fields: Record<string, string>) {
  return app.inject({
    method: 'POST',
    url: '/login',
    headers: FORM,
    payload: new URLSearchParams(fields).toString(),
  })
}

export function loginJson(app: FastifyInstance, body: unknown) {
  return app.inject({ method: 'POST', url: '/login', payload: body as Record<string, unknown> })
}

export function get(app: FastifyInstance, url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers })
}
export type Reply = Awaited<ReturnType<typeof get>>

/** The fields of every 422 issue, for asserting which fields a validation error names. */
export function invalidFields(response: Reply): string[] {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors), `a 422 lists its errors: ${response.body}`)
  return problem.errors.map((issue) => issue.field)
}

/**
 * Signs a payload as is (claims included), with the given key and algorithm, naming the key `kid`
 * (by default the test server's HS256 key, as a forger copies it from a real token).
 */
export function sign(
  payload: JWTPayload,
  key: Uint8Array | CryptoKey,
  alg = 'HS256',
  kid: string = TEST_KID,
) {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt', kid }).sign(key)
}

/** The token with one bit of its signature flipped (in the first byte, never in padding bits). */
export function flipSignatureBit(token: string): string {
  const [header, payload, signature] = token.split('.')
  const raw = Buffer.from(signature!, 'base64url')
  raw.writeUInt8(raw.readUInt8(0) ^ 0x01, 0)
  return `${header}.${payload}.${raw.toString('base64url')}`
}

/** The token with its payload replaced and its original header and signature kept. */
export function withPayload(token: string, payload: JWTPayload): string {
  const [header, , signature] = token.split('.')
  return `${header}.${base64url(payload)}.${signature}`
}

/** An unsecured JWT (RFC 7519 §6): the given header, the payload and an empty signature. */
export function unsigned(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none' }): string {
  return `${base64url(header)}.${base64url(payload)}.`
}

/** Each protected route answers 200 to this token (and the user routes answer with this user). */
export async function assertAccepted(app: FastifyInstance, token: string, userId: number) {
  for (const url of PROTECTED_ROUTES) {
    const response = await get(app, url, bearer(token))
    assert.equal(response.statusCode, 200, `${url} answered ${response.statusCode}: ${response.body}`)
    if (url !== '/product/') assert.equal(response.json<{ id: number }>().id, userId, url)
  }
}

/**
 * Each protected route answers 401 problem+json with a Bearer challenge. `invalidToken` also
 * requires the RFC 6750 `error="invalid_token"` code.
 */
export async function assertRefused(
  app: FastifyInstance,
  authorization: string | undefined,
  options: { invalidToken?: boolean; detail?: RegExp } = {},
) {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization }
  for (const url of PROTECTED_ROUTES) {
    const response = await get(app, url, headers)
    assert.equal(response.statusCode, 401, `${url} answered ${response.statusCode}: ${response.body}`)
    const problem = assertProblem(response, 401)
    const challenge = String(response.headers['www-authenticate'] ?? '')
    assert.match(challenge, /^Bearer( |$)/, `${url}: WWW-Authenticate is "${challenge}"`)
    if (options.invalidToken) assert.match(challenge, /error="invalid_token"/, url)
    if (options.detail) assert.match(problem.detail, options.detail, url)
  }
}
