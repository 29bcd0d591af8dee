import type { FastifyInstance } from 'fastify'

export interface ShutdownOptions {
  /** How long /readyz fails before the server stops listening (SHUTDOWN_DRAIN_MS). */
  drainMs: number
  /** Then how long requests in flight (and closing the database, Redis, mail) may take (SHUTDOWN_TIMEOUT_MS). */
  timeoutMs: number
  /** What asked for the shutdown, for the log. */
  signal?: NodeJS.Signals
}

export type ShutdownOutcome =
  { kind: 'closed' } | { kind: 'failed'; error: Error } | { kind: 'timed-out'; requestsCutOff: number }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The whole graceful shutdown, in order:
 * 1. drain: /readyz answers 503 for `drainMs` while everything else is still served, so that a
 *    load balancer stops sending new requests here before anything is refused;
 * 2. stop listening; close at once every connection with no request in flight; the requests in
 *    flight finish, and their connections close after their answers;
 * 3. close the database, Redis and mail connections (the app's onClose hooks);
 * and if 2 and 3 take more than `timeoutMs`, destroy what is left.
 */
export async function shutDown(
  app: FastifyInstance,
  { drainMs, timeoutMs, signal }: ShutdownOptions,
): Promise<ShutdownOutcome> {
  app.lifecycle.startDraining()
  if (drainMs > 0) {
    app.log.info(
      { signal },
      `shutting down: /readyz fails for ${drainMs} ms, then the server stops listening`,
    )
    await sleep(drainMs)
  } else {
    app.log.info({ signal }, 'shutting down: the server stops listening now')
  }

  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<ShutdownOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ kind: 'timed-out', requestsCutOff: app.lifecycle.destroyConnections() }),
      timeoutMs,
    )
  })
  const closed = app.close().then(
    (): ShutdownOutcome => ({ kind: 'closed' }),
    (error: unknown): ShutdownOutcome => ({ kind: 'failed', error: error as Error }),
  )
  try {
    return await Promise.race([closed, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** The one line a shutdown that did not end well prints, or undefined when it did. */
export function describeShutdownFailure(outcome: ShutdownOutcome, timeoutMs: number): string | undefined {
  switch (outcome.kind) {
    case 'closed':
      return undefined
    case 'failed':
      return `shutdown failed: ${outcome.error.message}`
    case 'timed-out': {
      const seconds = `${timeoutMs / 1000} s (SHUTDOWN_TIMEOUT_MS)`
      const cutOff = outcome.requestsCutOff
      return cutOff > 0
        ? `shutdown did not finish within ${seconds}: ${cutOff} request${cutOff === 1 ? ' was' : 's were'} still in flight and cut off`
        : `shutdown did not finish within ${seconds}: no request was cut off, but closing the database, Redis or mail connections did not end`
    }
  }
}
