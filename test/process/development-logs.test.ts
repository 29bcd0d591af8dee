/**
 * Development logs on a terminal are readable lines (pino-pretty), with the links of a mail that
 * was not sent printed plainly; production, tests and a pipe keep JSON lines.
 */
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { createLogger } from '../../src/http/logging.js'
import { developmentLogStream } from '../../src/process/development-logs.js'

/** A stream that says it is a terminal (or not), and what was written to it. */
function terminal(isTTY: boolean) {
  const output = Object.assign(new PassThrough(), { isTTY })
  let written = ''
  output.setEncoding('utf8').on('data', (chunk: string) => (written += chunk))
  return { output, written: () => written }
}

test('development on a terminal: readable lines, and the links of an unsent mail on the line', async () => {
  const { output, written } = terminal(true)
  const stream = await developmentLogStream({ nodeEnv: 'development' }, output)
  assert.ok(stream, 'a pretty stream in development on a terminal')
  const logger = createLogger('info', { level: 'info', stream } as never)!
  const link = 'http://127.0.0.1:8000/reset-password?token=abc'
  logger.info(
    { mail: { to: 'a@example.com', links: [link] } },
    'email not sent (SMTP_URL is not set); its links are logged instead',
  )
  logger.info({ reqId: 'req-1' }, 'request completed')
  await sleep(100)
  const text = written()
  assert.match(text, new RegExp(`INFO.*its links are logged instead: ${link.replace(/[?.]/g, '\\$&')}`))
  assert.match(text, /INFO.*request completed/)
  assert.doesNotMatch(text, /^\{"level"/m, 'not JSON lines')
})

test('production, tests and a pipe keep JSON lines', async () => {
  assert.equal(await developmentLogStream({ nodeEnv: 'production' }, terminal(true).output), undefined)
  assert.equal(await developmentLogStream({ nodeEnv: 'test' }, terminal(true).output), undefined)
  assert.equal(await developmentLogStream({ nodeEnv: 'development' }, terminal(false).output), undefined)
})
