import type { FastifyInstance } from 'fastify'
import { sendPage } from '../account/pages.js'
import { ICON_SVG, PRODUCT_NAME } from '../../http/brand.js'

/** Where a person or a client goes from the server's root. */
const LINKS = {
  docs: '/docs',
  redoc: '/redoc',
  openapi: '/openapi.json',
  account: '/account',
  health: '/healthz',
  readiness: '/readyz',
} as const

const HOME_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${PRODUCT_NAME}</title>
    <link rel="icon" href="/favicon.ico" type="image/svg+xml">
    <style>
      body { font-family: system-ui, sans-serif; line-height: 1.5; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
      li { margin: 0.4rem 0; } code { font-size: 0.95em; }
    </style>
  </head>
  <body>
    <h1>${PRODUCT_NAME}</h1>
    <p>Users, sessions and products behind OAuth2 password login and JWT access tokens.</p>
    <ul>
      <li><a href="${LINKS.docs}">Interactive API docs</a> (Swagger UI: <strong>Authorize</strong>, then <em>Try it out</em>)</li>
      <li><a href="${LINKS.redoc}">Reference docs</a> (ReDoc) and the <a href="${LINKS.openapi}">OpenAPI document</a></li>
      <li><a href="${LINKS.account}">Your account</a>: sign in, second factors, passkeys, sessions</li>
      <li><a href="${LINKS.health}">Health</a> and <a href="${LINKS.readiness}">readiness</a></li>
    </ul>
  </body>
</html>
`

/**
 * GET /: a page of links for a person who opens the server in a browser, the same links as JSON
 * for a client (whatever does not ask for HTML), and the tab's icon. Hidden from the API docs.
 */
export default async function homeRoutes(app: FastifyInstance) {
  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    // Browsers name text/html in Accept; curl and fetch send */* and get JSON.
    if (/\btext\/html\b/.test(request.headers.accept ?? '')) return sendPage(reply, HOME_PAGE)
    reply.header('cache-control', 'no-store')
    return { name: PRODUCT_NAME, links: LINKS }
  })
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(ICON_SVG),
  )
}
