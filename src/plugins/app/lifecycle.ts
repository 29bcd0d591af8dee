import fp from 'fastify-plugin'
import { trackConnections } from '../../http/connections.js'
import { shuttingDown } from '../../http/refusals.js'

/**
 * serving → draining (a signal came: /readyz fails so that load balancers stop sending here,
 * everything else is still served) → closing (listening stopped: requests in flight finish).
 */
export type LifecyclePhase = 'serving' | 'draining' | 'closing'

export interface Lifecycle {
  readonly phase: LifecyclePhase
  /** The first step of a shutdown: /readyz answers 503 from now on. */
  startDraining(): void
  /** The shutdown deadline passed: closes every connection left; returns the requests cut off. */
  destroyConnections(): number
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

/**
 * The process's place in its life, and the connections it holds, so that a shutdown closes
 * every connection it can at once and refuses late requests with a problem of our own.
 */
export default fp(
  async (app) => {
    const connections = trackConnections(app.server)
    let phase: LifecyclePhase = 'serving'

    app.decorate('lifecycle', {
      get phase() {
        return phase
      },
      startDraining() {
        if (phase === 'serving') phase = 'draining'
      },
      destroyConnections: () => connections.destroyAll(),
    } satisfies Lifecycle)

    // A request that reaches an open connection after listening stopped (pipelined behind one in
    // flight) is not served: its connection closes after the answer before it, and a client
    // retries it elsewhere. Answered here, before rate limits or handlers do any work for it.
    // (Fastify's own answer to it, return503OnClosing, is plain JSON: turned off in app.ts.)
    // Callback hooks, not async ones: they run on every request.
    app.addHook('onRequest', (request, _reply, done) => {
      if (connections.arrivedWhileClosing(request.raw))
        done(shuttingDown('The server is shutting down; send the request again.'))
      else done()
    })

    // While draining and closing, every answer ends its connection: a client's next request
    // opens a new one, which the balancer sends to another instance once /readyz has failed.
    app.addHook('onSend', (_request, reply, payload, done) => {
      if (phase !== 'serving') reply.header('connection', 'close')
      done(null, payload)
    })

    // Runs as app.close() begins, just before the server stops listening.
    app.addHook('preClose', async () => {
      phase = 'closing'
      const closed = connections.closeIdle()
      app.log.info(
        { idleConnectionsClosed: closed, requestsInFlight: connections.requestsInFlight },
        'stopped listening; closed the idle connections, finishing the requests in flight',
      )
    })
  },
  { name: 'lifecycle' },
)
