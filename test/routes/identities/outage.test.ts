/**
 * A provider that is down or hangs: a sign-in fails fast and says so (503 with Retry-After at the
 * start; an error back to the client at the callback), it never waits forever, and it works again
 * once the provider is back. Faults injected for real: a closed port, a server that accepts and
 * never answers, a provider stopped between the start and the callback. One engine: the database
 * plays no part in these.
 */
import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { PROVIDER_TIMEOUT_SECONDS } from '../../../src/auth/oidc-client.js'
import { testConfig } from '../../support/app.js'
import { freePort } from '../../support/processes.js'
import { startTestIdentityProvider, type TestIdentityProvider } from '../../support/oidc-provider.js'
import { callbackOf, pkcePair, PUBLIC_URL, returnAfter, startSignIn } from './support.js'

/** A server that accepts connections and never answers a byte. */
async function silentServer() {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

describe('sign-in while a provider is down or hangs', () => {
  let app: FastifyInstance
  let idp: TestIdentityProvider
  let silent: Awaited<ReturnType<typeof silentServer>>

  before(async () => {
    silent = await silentServer()
    idp = await startTestIdentityProvider({ redirectUris: [callbackOf('live')] })
    const providers = [
      { id: 'hangs', issuer: silent.url, client_id: 'x', client_secret: 'y' },
      // A port that was just free: nobody listens there.
      { id: 'down', issuer: `http://127.0.0.1:${await freePort()}`, client_id: 'x', client_secret: 'y' },
      idp.entry('live'),
    ]
    app = await buildApp(
      testConfig({ DATABASE_URL: 'sqlite::memory:', PUBLIC_URL, OIDC_PROVIDERS: JSON.stringify(providers) }),
      { logger: false },
    )
  })
  after(async () => {
    await app?.close()
    await idp?.close()
    await silent?.close()
  })

  const start = (provider: string) =>
    app.inject({ method: 'GET', url: `/login/${provider}?code_challenge=${pkcePair().challenge}` })

  test(
    'a provider that does not answer: 503 with Retry-After after the timeout, not a hung request',
    { timeout: 30_000 },
    async () => {
      const started = Date.now()
      const response = await start('hangs')
      const waited = Date.now() - started
      assert.equal(response.statusCode, 503, response.body)
      assert.equal(response.headers['retry-after'], '30')
      assert.match(response.json().detail, /"hangs" could not be reached/)
      // Bounded by the provider timeout, with room for a loaded machine (not a speed test).
      assert.ok(waited < (PROVIDER_TIMEOUT_SECONDS + 10) * 1000, `waited ${waited} ms`)
    },
  )

  test('a provider whose port is closed: 503 at once', async () => {
    const response = await start('down')
    assert.equal(response.statusCode, 503, response.body)
    assert.equal(response.headers['retry-after'], '30')
  })

  test(
    'a provider that stops between the start and the callback: the client is sent back with temporarily_unavailable',
    { timeout: 30_000 },
    async () => {
      const person = idp.addPerson()
      const signIn = await startSignIn(app, { provider: 'live' })
      const answer = await idp.signIn(signIn.authorizationUrl.href, person.sub)
      await idp.close()
      const back = await returnAfter(app, answer)
      assert.equal(back.searchParams.get('error'), 'temporarily_unavailable')
      assert.equal(back.searchParams.get('code'), null)
    },
  )
})
