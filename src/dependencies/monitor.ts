/**
 * Whether a dependency (the database, Redis) serves, as the calls to it show: it may not answer,
 * not in time, or (a database) not store data. An outage is told
 * in two log lines, one when it starts and one when it ends (with the number of calls that failed
 * in between), never one per failed call: a 12 s database outage under load is thousands of
 * failed requests, and their count belongs in a metric, not in thousands of stack traces.
 *
 * While a dependency is down, a background probe asks it every `probeIntervalMs` whether it is
 * back, so that callers that skip it meanwhile (a circuit breaker: Redis) never have to spend a
 * request's time finding out.
 */
export interface DependencyMonitor {
  readonly name: string
  /** False from a failed call until a probe (or a call) succeeds again. */
  readonly available: boolean
  /** A call failed because the dependency is unreachable or did not answer in time. */
  failed(error: unknown): void
  /** A call succeeded: ends an outage, if there was one. */
  succeeded(): void
  /** Stops probing. */
  close(): void
}

/** The few pino methods a monitor uses (no Fastify types here). */
export interface MonitorLogger {
  error(object: object, message: string): void
  info(object: object, message: string): void
}

export interface MonitorOptions {
  /** How the dependency is named in log lines and metric labels: "database", "redis". */
  name: string
  log: MonitorLogger
  /** Resolves when the dependency answers; must be bounded in time by the caller's client. */
  probe(): Promise<unknown>
  /** What callers do without it, said in the line that reports the outage. */
  meanwhile?: string
  probeIntervalMs?: number
  /** Counts every failed call (a metric). */
  onFailure?(): void
  /** Told when the dependency goes away (false) and comes back (true) (a metric). */
  onChange?(available: boolean): void
  now?: () => number
}

/** A failure's reason in a few words, for a log line: its code and message, never a stack. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { code?: unknown }).code
  const message = error.message || error.name
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}

/** What happened to a connection, in words: a code alone ("ECONNREFUSED"), or none, says too little. */
export function explainConnectionFailure(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'ECONNREFUSED') return 'connection refused: nothing listens there'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve'
  if (code === 'ETIMEDOUT') return 'the connection timed out'
  if (code === 'ECONNRESET') return 'the connection was reset'
  if (code === 'EHOSTUNREACH') return 'the host is unreachable'
  // pg says this without a code; mysql2 with one: the peer accepted, then closed before answering.
  if (code === 'PROTOCOL_CONNECTION_LOST' || /^Connection terminated/.test((error as Error)?.message ?? ''))
    return 'the connection was closed before the server answered (a proxy with nothing behind it?)'
  return describeFailure(error)
}

export function createDependencyMonitor(options: MonitorOptions): DependencyMonitor {
  const { name, log, probe, meanwhile, probeIntervalMs = 1000, now = Date.now } = options
  let available = true
  let downSince = 0
  let failures = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const recovered = () => {
    if (available) return
    available = true
    clearTimeout(timer)
    timer = undefined
    const seconds = ((now() - downSince) / 1000).toFixed(1)
    log.info(
      { dependency: name, outage_ms: now() - downSince, failed_calls: failures },
      `${name} is available again after ${seconds} s (${failures} failed call${failures === 1 ? '' : 's'} meanwhile)`,
    )
    options.onChange?.(true)
  }

  const scheduleProbe = () => {
    if (closed || available) return
    timer = setTimeout(() => {
      probe().then(recovered, () => {
        scheduleProbe()
      })
    }, probeIntervalMs)
    timer.unref()
  }

  return {
    name,
    get available() {
      return available
    },
    failed(error) {
      options.onFailure?.()
      if (!available) {
        failures += 1
        return
      }
      available = false
      downSince = now()
      failures = 1
      log.error(
        { dependency: name, reason: describeFailure(error) },
        `${name} is unavailable (${describeFailure(error)})${meanwhile ? `; ${meanwhile}` : ''}; one line will say when it is back`,
      )
      options.onChange?.(false)
      scheduleProbe()
    },
    succeeded: recovered,
    close() {
      closed = true
      clearTimeout(timer)
    },
  }
}
