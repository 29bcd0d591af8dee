/** The SMTP inbox and the requests the account tests share. */
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildOptions } from '../../../src/app.js'
import { bearer, testConfig, type EngineContext } from '../../support/app.js'
import { startSmtpInbox, tokensIn } from '../../support/smtp-inbox.js'

export const inbox = await startSmtpInbox()
export const MAIL_ENV = inbox.env
export const mailsTo = inbox.mailsTo
export const waitForTokens = inbox.waitForTokens
export const waitForToken = inbox.waitForToken
/** How many more deliveries to each recipient the server refuses with a temporary error. */
export const refusalsLeft = inbox.refusalsLeft

// ------------------------------------------------------------------ requests

export async function loginPair(app: FastifyInstance, username: string, password: string) {
  return app.inject({ method: 'POST', url: '/login', payload: { username, password } })
}

export async function tokenPair(app: FastifyInstance, username: string, password: string) {
  const response = await loginPair(app, username, password)
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ access_token: string; refresh_token: string }>()
}

export const currentUser = (app: FastifyInstance, accessToken: string) =>
  app.inject({ method: 'GET', url: '/current-user', headers: bearer(accessToken) })

export const verifyEmail = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/verify-email', payload: { token } })

export const askForReset = (app: FastifyInstance, email: string) =>
  app.inject({ method: 'POST', url: '/password-recovery', payload: { email } })

export const resetPassword = (app: FastifyInstance, token: string, newPassword: string) =>
  app.inject({ method: 'POST', url: '/reset-password', payload: { token, new_password: newPassword } })

export async function resetTokenFor(app: FastifyInstance, email: string): Promise<string> {
  const before = tokensIn(mailsTo(email), 'reset-password').length
  const response = await askForReset(app, email)
  assert.equal(response.statusCode, 202)
  return (await waitForTokens(email, 'reset-password', before + 1)).at(-1)!
}

/** Log lines written by an app, as parsed JSON. */
export function capturedLog() {
  const lines: Record<string, unknown>[] = []
  return {
    lines,
    logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    text: () => lines.map((line) => JSON.stringify(line)).join('\n'),
  }
}

/** A second app on the same database as the engine's, with other settings. */
export async function buildAppOn(
  ctx: EngineContext,
  env: Record<string, string>,
  logger: BuildOptions['logger'] = false,
) {
  const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), {
    logger,
    migrate: false,
  })
  await app.ready()
  return app
}
