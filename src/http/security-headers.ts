import type { IncomingMessage, ServerResponse } from 'node:http'
import helmet, { type HelmetOptions } from 'helmet'
import type { Config } from '../config.js'

/** One year, the usual minimum for HSTS preload lists. */
const HSTS_MAX_AGE_SECONDS = 365 * 24 * 60 * 60

export function helmetOptions(config: Pick<Config, 'publicUrl'>): HelmetOptions {
  return {
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP_DIRECTIVES },
    // HSTS is only meaningful (and only honoured) over https, which PUBLIC_URL tells.
    strictTransportSecurity: config.publicUrl.startsWith('https:')
      ? { maxAge: HSTS_MAX_AGE_SECONDS, includeSubDomains: true }
      : false,
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
  }
}

/**
 * The security headers of every API response, as name/value pairs: for the answers written
 * straight to a socket, before Fastify has a request to run the helmet plugin's hook on
 * (plugins/external/helmet.ts) (app.ts,
 * answerClientError). helmet's own middleware is run once on a stand-in response that records
 * the headers it sets; they depend on the options alone (no nonce, nothing from the request).
 */
export function securityHeaders(config: Pick<Config, 'publicUrl'>): [name: string, value: string][] {
  const headers: [name: string, value: string][] = []
  const recorder = {
    setHeader: (name: string, value: unknown) => void headers.push([name, String(value)]),
    removeHeader: () => {},
  }
  let finished = false
  helmet(helmetOptions(config))({} as IncomingMessage, recorder as unknown as ServerResponse, (error) => {
    if (error) throw error
    finished = true
  })
  if (!finished) throw new Error('helmet did not set its headers synchronously; they cannot be recorded')
  return headers
}

const policy = (directives: Record<string, string[]>) =>
  Object.entries(directives)
    .map(([name, values]) => [name, ...values].join(' '))
    .join('; ')

/**
 * The API answers JSON, never a page: nothing may load from its responses, and no page may frame
 * them.
 */
export const API_CSP_DIRECTIVES: Record<string, string[]> = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
}

/**
 * Swagger UI (/docs) and ReDoc (/redoc) run from the server's own files only: scripts from 'self'
 * (no inline script, no eval, no CDN). What the two bundles need beyond that was found by loading
 * both pages in headless Chromium under a stricter policy and reading the violations, then checked
 * under this one (Swagger UI's Authorize and "Try it out", ReDoc's search: no violation):
 * - style-src 'unsafe-inline': ReDoc's styled-components insert <style> elements (ReDoc fails to
 *   render without it) and Swagger UI sets a style attribute; styles run no code.
 * - img-src data: — icons inlined in both stylesheets.
 * - worker-src blob: — ReDoc runs its search index in a Worker made from a Blob.
 * - connect-src: the spec and "Try it out" go to this server, and to PUBLIC_URL when it is another
 *   origin (the OpenAPI `servers` entry points there).
 * Nothing comes from another site: ReDoc's footer logo, on Redocly's CDN, is taken out of the
 * bundle we serve (routes/docs).
 */
export function docsCsp(config: Pick<Config, 'publicUrl'>): string {
  const publicOrigin = new URL(config.publicUrl).origin
  return policy({
    'default-src': ["'none'"],
    'script-src': ["'self'"],
    'style-src': ["'self'", "'unsafe-inline'"],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'"],
    'connect-src': ["'self'", publicOrigin],
    'worker-src': ['blob:'],
    'form-action': ["'none'"],
    'base-uri': ["'none'"],
    'object-src': ["'none'"],
    'frame-ancestors': ["'none'"],
  })
}
