import type { FastifyBaseLogger } from 'fastify'
import type { DependencyMonitor } from '../../dependencies/monitor.js'
import { HttpProblem } from '../../http/problems.js'

/** One thing /readyz waits for: a dependency answering. */
export interface ReadinessStep {
  /** What is checked, as in "the database does not answer": "the database", "Redis". */
  what: string
  /** The answer's detail when the step fails (default: "<what> does not answer."). */
  refusal?: string
  /**
   * The dependency's monitor: told of a failure (it logs once per outage, not once per probe), and
   * while it knows the dependency is away (an open circuit breaker) the step fails at once.
   */
  monitor?: DependencyMonitor
  run(): Promise<void>
}

const notReady = (detail: string) => new HttpProblem(503, detail, { headers: { 'retry-after': '5' } })
const sentence = (text: string) => `${text[0]!.toUpperCase()}${text.slice(1)}`

/**
 * Runs the steps in order; each failure is a 503 that names what does not answer, and the whole
 * is bounded by `timeoutMs`: a dependency that hangs (a frozen link holds a query for minutes)
 * gives a 503 at the deadline, not a probe that waits until the balancer gives up on it.
 *
 * At most one run is under way at a time: probes that come meanwhile wait for that run (each
 * within its own deadline), so a hung dependency does not pile up checks. A run that outlives a
 * deadline goes on in the background, and the first probe after it ends starts a new one.
 */
export function createReadinessCheck(steps: ReadinessStep[], timeoutMs: number, log: FastifyBaseLogger) {
  let running: Promise<void> | undefined
  let waitingFor = steps[0]?.what ?? 'a dependency'
  let timedOut = false

  async function runSteps() {
    for (const step of steps) {
      waitingFor = step.what
      const refusal = step.refusal ?? `${sentence(step.what)} does not answer.`
      // Its probe is already asking: no need to wait out a command timeout here.
      if (step.monitor && !step.monitor.available) throw notReady(refusal)
      try {
        await step.run()
      } catch (error) {
        if (step.monitor) step.monitor.failed(error)
        else log.warn({ err: error }, `readiness check: ${step.what} does not answer`)
        throw notReady(refusal)
      }
    }
  }

  return async function checkReadiness() {
    running ??= runSteps().finally(() => {
      running = undefined
    })
    let timer: NodeJS.Timeout | undefined
    let late = false
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        late = true
        // One line when the checks start hanging, not one per probe while they do.
        if (!timedOut) log.warn(`readiness check: ${waitingFor} did not answer within ${timeoutMs} ms`)
        timedOut = true
        reject(notReady(`${sentence(waitingFor)} did not answer within ${timeoutMs} ms.`))
      }, timeoutMs)
    })
    try {
      await Promise.race([running, deadline])
    } finally {
      clearTimeout(timer)
      if (!late) timedOut = false
    }
  }
}
