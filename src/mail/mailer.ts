import type { ServiceLogger } from '../services/context.js'
import type { MailMessage, MailTransport } from './transports.js'

export interface Mailer {
  /**
   * Queues a message and returns at once. Delivery, with its retries, happens in the background:
   * a mail server that is down or slow never delays or fails the request that sent the message.
   */
  send(message: MailMessage): void
  /** Resolves true once nothing is queued or being delivered, or false when `timeoutMs` passes first. */
  whenIdle(timeoutMs: number): Promise<boolean>
  /** Waits up to `timeoutMs` for queued messages, then abandons the rest (logged) and closes the transport. */
  close(timeoutMs: number): Promise<void>
}

export interface MailerOptions {
  transport: MailTransport
  log: ServiceLogger
  /** The pause before each retry; there is one attempt more than there are delays. */
  retryDelaysMs?: readonly number[]
  /** Messages handed to the transport at once; the others wait their turn. */
  concurrency?: number
  /** Messages allowed to wait; more are dropped (and logged) rather than piling up in memory. */
  maxQueued?: number
}

/** Three attempts: a transient failure (a restarting or greylisting server) gets a second and third chance. */
export const DEFAULT_RETRY_DELAYS_MS = [1_000, 5_000] as const

/**
 * What a failure log may say: the error's code and the server's reply, never the message's text,
 * which holds single-use links.
 */
function describeFailure(error: unknown) {
  const { name, message, code, responseCode, command } = error as Record<string, unknown>
  return { name, message, code, responseCode, command }
}

const summary = (message: MailMessage) => ({ to: message.to, subject: message.subject })

/** A pause before a retry that ends early (with false) when `signal` aborts. */
function pauseUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const stop = () => {
      clearTimeout(timer)
      resolve(false)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop)
      resolve(true)
    }, ms)
    signal.addEventListener('abort', stop, { once: true })
  })
}

/** Delivers one message, retrying after each delay; gives up (logged) when attempts run out or `signal` aborts. */
async function deliverWithRetries(
  { transport, log, retryDelaysMs }: Pick<Required<MailerOptions>, 'transport' | 'log' | 'retryDelaysMs'>,
  message: MailMessage,
  signal: AbortSignal,
) {
  const attempts = retryDelaysMs.length + 1
  for (let attempt = 1; ; attempt += 1) {
    try {
      await transport.deliver(message, signal)
      return
    } catch (error) {
      const failure = { mail: summary(message), attempt, attempts, error: describeFailure(error) }
      if (signal.aborted) {
        log.error(failure, 'email abandoned: the server is shutting down')
        return
      }
      if (attempt >= attempts) {
        log.error(failure, 'email could not be sent; giving up')
        return
      }
      log.warn(failure, 'email could not be sent; it will be retried')
      if (!(await pauseUnlessAborted(retryDelaysMs[attempt - 1] ?? 0, signal))) {
        log.error(failure, 'email abandoned: the server is shutting down')
        return
      }
    }
  }
}

/** Who waits for the queue to be idle: told when it becomes so, or given up on after a timeout. */
function createIdleWaiters(isIdle: () => boolean) {
  const listeners = new Set<() => void>()
  return {
    notifyIfIdle() {
      if (isIdle()) for (const listener of listeners) listener()
    },
    whenIdle(timeoutMs: number): Promise<boolean> {
      if (isIdle()) return Promise.resolve(true)
      return new Promise((resolve) => {
        const done = (idle: boolean) => {
          clearTimeout(timer)
          listeners.delete(onIdle)
          resolve(idle)
        }
        const onIdle = () => done(true)
        const timer = setTimeout(() => done(false), timeoutMs)
        listeners.add(onIdle)
      })
    },
  }
}

export function createMailer({
  transport,
  log,
  retryDelaysMs = DEFAULT_RETRY_DELAYS_MS,
  concurrency = 4,
  maxQueued = 1_000,
}: MailerOptions): Mailer {
  const waiting: MailMessage[] = []
  let delivering = 0
  let stopped = false
  const abort = new AbortController()
  const idle = createIdleWaiters(() => delivering === 0 && waiting.length === 0)
  const whenIdle = idle.whenIdle

  function startWaiting() {
    while (!stopped && delivering < concurrency && waiting.length > 0) {
      const message = waiting.shift()!
      delivering += 1
      deliverWithRetries({ transport, log, retryDelaysMs }, message, abort.signal)
        .catch((error: unknown) => log.error({ error: describeFailure(error) }, 'the mail queue failed'))
        .finally(() => {
          delivering -= 1
          startWaiting()
        })
    }
    idle.notifyIfIdle()
  }

  return {
    send(message) {
      if (stopped || waiting.length >= maxQueued) {
        log.error(
          { mail: summary(message) },
          stopped ? 'email not sent: the server is shutting down' : 'email not sent: the mail queue is full',
        )
        return
      }
      waiting.push(message)
      startWaiting()
    },

    whenIdle,

    async close(timeoutMs) {
      if (!(await whenIdle(timeoutMs))) {
        stopped = true
        for (const message of waiting.splice(0))
          log.error({ mail: summary(message) }, 'email abandoned: the server is shutting down')
        // Ends retry pauses and the SMTP conversations still going on.
        abort.abort()
        await whenIdle(1_000)
      }
      stopped = true
      transport.close()
    },
  }
}
