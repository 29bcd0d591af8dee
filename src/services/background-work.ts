import type { ServiceLogger } from './context.js'

/** Work a request starts and does not wait for (an email to prepare), tracked until it ends. */
export interface BackgroundWork {
  /** Runs `work` once the current response has been written; a failure is logged as `failure`. */
  start(log: ServiceLogger, failure: string, work: () => Promise<void>): void
  /** Resolves true once no such work is under way, or false when `timeoutMs` passes first. */
  whenIdle(timeoutMs: number): Promise<boolean>
}

export function createBackgroundWork(): BackgroundWork {
  const running = new Set<Promise<void>>()
  return {
    start(log, failure, work) {
      const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(work)
        .catch((error: unknown) => log.error({ err: error }, failure))
        .finally(() => running.delete(task))
      running.add(task)
    },

    async whenIdle(timeoutMs) {
      const deadline = Date.now() + timeoutMs
      // Work can start more work (and new requests can still add some), so wait until none is left.
      while (running.size > 0) {
        const left = deadline - Date.now()
        if (left <= 0) return false
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.allSettled([...running]),
          new Promise((resolve) => (timer = setTimeout(resolve, left))),
        ])
        clearTimeout(timer)
      }
      return true
    },
  }
}
