import type { IncomingMessage, Server } from 'node:http'
import type { Socket } from 'node:net'

export interface ConnectionTracker {
  /** Requests whose answer has not been sent yet, over every open connection. */
  readonly requestsInFlight: number
  /** Whether `request` arrived after `closeIdle()` (its connection was kept for a request in flight). */
  arrivedWhileClosing(request: IncomingMessage): boolean
  /**
   * Shutdown: destroys every connection with no request in flight (idle keep-alive ones, ones that
   * never sent a byte, ones with half their headers), then each other one as soon as its last
   * answer is sent, and every connection that opens from now on. Returns how many it destroyed now.
   */
  closeIdle(): number
  /** The shutdown deadline passed: destroys every connection left; returns how many requests that cut off. */
  destroyAll(): number
}

/**
 * Knows every connection of an HTTP server and whether a request is in flight on it. Node 20's
 * `server.close()` (and `closeIdleConnections()`) closes only keep-alive connections waiting
 * between two requests: one that never sent a byte, or sent half its headers, stays open until
 * its own timeout and holds the close (and the process) that long.
 */
export function trackConnections(server: Server): ConnectionTracker {
  const requestsBySocket = new Map<Socket, number>()
  const lateRequests = new WeakSet<IncomingMessage>()
  let closing = false

  server.on('connection', (socket: Socket) => {
    // Only between shutdown's start and the listening socket's close: that connection is refused.
    if (closing) return void socket.destroy()
    requestsBySocket.set(socket, 0)
    socket.once('close', () => requestsBySocket.delete(socket))
  })

  // Before the application's own listener: a request is counted (and known to be late) before
  // any of its hooks run.
  server.prependListener('request', (request: IncomingMessage, response) => {
    const socket = request.socket
    if (closing) lateRequests.add(request)
    requestsBySocket.set(socket, (requestsBySocket.get(socket) ?? 0) + 1)
    let answered = false
    const onAnswered = () => {
      if (answered || !requestsBySocket.has(socket)) return
      answered = true
      const left = requestsBySocket.get(socket)! - 1
      requestsBySocket.set(socket, left)
      // An answer sent with "Connection: close" already ends its connection; one whose headers
      // left before shutdown began was sent keep-alive, and its connection is idle now.
      if (closing && left === 0) socket.end(() => socket.destroy())
    }
    response.once('finish', onAnswered)
    response.once('close', onAnswered)
  })

  const inFlight = () => [...requestsBySocket.values()].reduce((sum, count) => sum + count, 0)

  return {
    get requestsInFlight() {
      return inFlight()
    },
    arrivedWhileClosing: (request) => lateRequests.has(request),
    closeIdle() {
      closing = true
      let destroyed = 0
      for (const [socket, requests] of requestsBySocket)
        if (requests === 0) {
          socket.destroy()
          destroyed++
        }
      return destroyed
    },
    destroyAll() {
      closing = true
      const cutOff = inFlight()
      for (const socket of requestsBySocket.keys()) socket.destroy()
      return cutOff
    },
  }
}
