import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { uniqueUser } from '../support/app.js'
import { connectionRefused, until } from '../support/processes.js'
import { killServers, startServerProcess } from '../support/server-process.js'

after(killServers)

describe('lifecycle: graceful shutdown', () => {
  test('on SIGTERM an in-flight request is finished and answered, new connections are refused, and the process exits 0', async () => {
    // At debug, the server logs each request as it starts: how the test knows it is in flight.
    const server = await startServerProcess({ LOG_LEVEL: 'debug' })
    const { url: base, port } = server
    assert.equal((await fetch(`${base}/healthz`)).status, 200)

    // A registration whose body arrives slowly: the request is in flight until the body is done.
    const user = uniqueUser()
    const body = Buffer.from(JSON.stringify(user))
    const half = Math.floor(body.length / 2)
    const socket: Socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    let answer = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
    const closed = once(socket, 'close')
    socket.write(
      'POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `X-Request-Id: in-flight-1\r\nContent-Length: ${body.length}\r\n\r\n`,
    )
    socket.write(body.subarray(0, half))
    // The server has started on it (its log says so) before the signal comes.
    await server.waitForLog(
      'the in-flight request to be logged',
      (line) => line.reqId === 'in-flight-1' && line.msg === 'incoming request',
    )

    server.child.kill('SIGTERM')
    await server.waitForLog('the shutdown to begin', (line) => /shutting down/.test(String(line.msg)))
    // No new connection is accepted from now on …
    await until(() => connectionRefused(port), 'a new connection is refused once shutdown has begun')
    assert.equal(server.child.exitCode, null, 'the process waits for the request in flight')

    // … but the request in flight is finished, and answered.
    socket.write(body.subarray(half))
    await closed
    const [head, json = ''] = answer.split('\r\n\r\n')
    assert.match(head!, /^HTTP\/1\.1 201 /, `the in-flight request was answered: ${answer}`)
    assert.match(head!, /\r\nconnection: close\r\n/i)
    const created = JSON.parse(json) as { id: number; email: string }
    assert.equal(created.email, user.email)

    assert.deepEqual(await server.waitForExit(), { code: 0, signal: null }, `stderr: ${server.output.stderr}`)
    assert.equal(server.output.stderr, '', 'nothing went wrong on the way out')
    // The request completed before the database closed: it is logged as completed with 201.
    const completed = server
      .logLines()
      .find((line) => line.reqId === 'in-flight-1' && line.msg === 'request completed')
    assert.equal((completed?.res as { statusCode?: number } | undefined)?.statusCode, 201)
  })
})
