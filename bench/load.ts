/**
 * Load generation for `npm run bench`: autocannon in the bench process (the servers run in their
 * own processes), with latencies recorded at microsecond resolution (autocannon's own histogram
 * keeps whole milliseconds, too coarse for reads that take a fraction of one).
 */
import { Agent, request as httpRequest } from 'node:http'
import { performance } from 'node:perf_hooks'
import autocannon, { type Request } from 'autocannon'

export interface LoadOptions {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  /** Builds each request (body, path) from a running counter; else every request is the same. */
  request?: (n: number) => Partial<Pick<Request, 'path' | 'body' | 'headers'>>
  connections: number
  seconds: number
}

/** One measured run: every latency of a 2xx answer (ms), and what went wrong. */
export interface LoadSample {
  latencies: number[]
  /** Answers of any status. */
  answered: number
  /** Answers other than 2xx, and connection errors or timeouts. */
  failures: number
  seconds: number
}

export interface LoadResult {
  requestsPerSecond: number
  /** Milliseconds, over the 2xx answers. */
  p50: number
  p99: number
  failures: number
  total: number
  /** Server CPU time (all threads) per answered request, in microseconds, when measured. */
  cpuMicrosPerRequest?: number
}

/** One result from several runs of the same load (rounds alternating with another server's). */
export function combine(samples: LoadSample[], serverCpuMs?: number): LoadResult {
  const sorted = Float64Array.from(samples.flatMap((sample) => sample.latencies)).sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
  const answered = samples.reduce((sum, sample) => sum + sample.answered, 0)
  const seconds = samples.reduce((sum, sample) => sum + sample.seconds, 0)
  return {
    requestsPerSecond: answered / seconds,
    p50: at(0.5),
    p99: at(0.99),
    failures: samples.reduce((sum, sample) => sum + sample.failures, 0),
    total: answered,
    ...(serverCpuMs === undefined ? {} : { cpuMicrosPerRequest: (serverCpuMs * 1000) / answered }),
  }
}

/** A closed load: `connections` clients, each sending its next request when the answer comes. */
export function runLoad(options: LoadOptions): Promise<LoadSample> {
  let counter = 0
  const latencies: number[] = []
  const build = options.request
  const requests: Request[] = build
    ? [
        {
          setupRequest: (request: Request) => {
            const changes = build(counter++)
            return { ...request, ...changes, headers: { ...request.headers, ...changes.headers } }
          },
        } as Request,
      ]
    : [{}]
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        requests,
        connections: options.connections,
        duration: options.seconds,
        timeout: 30,
      },
      (error, result) => {
        if (error) return reject(error)
        resolve({
          latencies,
          answered: result.requests.total,
          failures: result.non2xx + result.errors + result.timeouts,
          seconds: result.duration,
        })
      },
    )
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
  })
}

export interface PacedOptions {
  /** Origin, e.g. http://127.0.0.1:8000 */
  origin: string
  path: (n: number) => string
  headers: Record<string, string>
  /** Requests per second, evenly spaced. */
  rate: number
  seconds: number
}

/**
 * An open load: requests leave on a fixed schedule whether or not earlier answers came back, and
 * each latency counts from the time its request was due. A server that stalls for 50 ms then shows
 * every request due in those 50 ms as late, as its users would see it. (autocannon's `overallRate`
 * sends each second's requests in one burst and then waits, which measures its own queueing.)
 */
export async function runPaced(options: PacedOptions): Promise<LoadSample> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const latencies: number[] = []
  let failures = 0
  const interval = 1000 / options.rate
  const total = Math.round(options.rate * options.seconds)
  const started = performance.now()
  let sent = 0
  let settled = 0
  await new Promise<void>((resolve) => {
    const send = (n: number, due: number) => {
      const request = httpRequest(
        `${options.origin}${options.path(n)}`,
        { agent, headers: options.headers },
        (response) => {
          response.resume()
          response.on('end', () => {
            if (response.statusCode && response.statusCode < 300) latencies.push(performance.now() - due)
            else failures++
            if (++settled === total) resolve()
          })
        },
      )
      request.on('error', () => {
        failures++
        if (++settled === total) resolve()
      })
      request.end()
    }
    const tick = () => {
      const now = performance.now()
      while (sent < total && started + sent * interval <= now) {
        send(sent, started + sent * interval)
        sent++
      }
      if (sent < total) setTimeout(tick, Math.max(0, started + sent * interval - performance.now()))
    }
    tick()
  })
  agent.destroy()
  return { latencies, answered: total - failures, failures, seconds: (performance.now() - started) / 1000 }
}
