/**
 * The connection of a refused upload (413 before the body was read): the server ends its side,
 * goes on reading and discarding the rest, sees the client close, and closes at once. It used to
 * stop reading for good (a 'data' listener of its own took the socket from Node's parser): the
 * connection then stayed open, unread, until a 2 s unref'd timer, and a close that waited for it
 * was a promise nothing kept alive ("Promise resolution is still pending but the event loop has
 * already resolved", the property tests' occasional failure).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../support/app.js'

describe('a refused upload’s connection', () => {
  let app: FastifyInstance
  let base: string
  const sockets: { socket: Socket; ended: boolean }[] = []

  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite://:memory:' }), { logger: false })
    app.server.on('connection', (socket: Socket) => {
      const entry = { socket, ended: false }
      socket.once('end', () => (entry.ended = true))
      sockets.push(entry)
    })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => app.close())

  for (const [what, contentType, body] of [
    ['a form', 'application/x-www-form-urlencoded', `username=${'x'.repeat(70_000)}&password=p`],
    ['JSON', 'application/json', JSON.stringify({ name: 'x'.repeat(70_000) })],
  ] as const)
    test(`${what} past the body limit: 413, then the server sees the client close and closes too`, async () => {
      const before = sockets.length
      const response = await fetch(`${base}/${contentType === 'application/json' ? 'users/' : 'login'}`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      })
      assert.equal(response.status, 413)
      assert.equal(response.headers.get('connection'), 'close')
      await response.text()
      const opened = sockets.slice(before)
      assert.equal(opened.length, 1, 'one connection for the request')
      const [{ socket }] = opened as [{ socket: Socket; ended: boolean }]
      if (!socket.destroyed) await once(socket, 'close')
      assert.equal(opened[0]!.ended, true, 'the client’s close was read, not waited out by a timer')
    })
})
