import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import {
  ACCOUNT_PAGE,
  ACCOUNT_SCRIPT,
  ACCOUNT_SCRIPT_PATH,
  WEBAUTHN_SCRIPT_PATH,
} from './account-page-content.js'
import { sendPage, sendScript } from './pages.js'

const require = createRequire(import.meta.url)

/**
 * @simplewebauthn/browser's own browser bundle (it defines the global SimpleWebAuthnBrowser). The
 * package exports its modules only, not this file: it is found next to the CommonJS entry point.
 */
function readWebAuthnBundle(): string {
  const entryPoint = require.resolve('@simplewebauthn/browser') // <package>/script/index.js
  return readFileSync(path.join(path.dirname(entryPoint), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8')
}

/**
 * The account page for people (hidden from the API docs): GET /account, its script, and the
 * WebAuthn helper it uses, all served by this server (no CDN), read once at start.
 */
export default async function accountPageRoutes(app: FastifyInstance) {
  const webAuthnBundle = readWebAuthnBundle()

  app.get('/account', { schema: { hide: true } }, async (_request, reply) => sendPage(reply, ACCOUNT_PAGE))
  app.get(ACCOUNT_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    sendScript(reply, ACCOUNT_SCRIPT),
  )
  app.get(WEBAUTHN_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    sendScript(reply, webAuthnBundle),
  )
}
