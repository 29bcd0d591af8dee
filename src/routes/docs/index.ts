import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.js'
import { docsCsp } from '../../http/security-headers.js'

const require = createRequire(import.meta.url)

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>FastAuth API – ReDoc</title>
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <div id="redoc"></div>
    <script src="/redoc/redoc.standalone.js"></script>
    <script src="/redoc/init.js"></script>
  </body>
</html>
`
// A separate file rather than an inline script, so a strict CSP (script-src 'self') holds.
const REDOC_INIT = `Redoc.init('/openapi.json', { hideDownloadButton: false }, document.getElementById('redoc'))\n`

/**
 * The bundle's footer shows Redocly's logo from their CDN: the page would ask a third party for
 * it (and the docs CSP refuse it). An empty data: image fails to load instead, and ReDoc then
 * drops the image, keeping the "API docs by Redocly" link.
 */
const REDOCLY_CDN_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg'

/** /openapi.json and ReDoc, served from the `redoc` package's own bundle (no CDN). */
export default async function docsRoutes(app: FastifyInstance, { config }: { config: Config }) {
  const csp = docsCsp(config)
  const bundle = Buffer.from(
    readFileSync(require.resolve('redoc/bundles/redoc.standalone.js'), 'utf8').replaceAll(
      REDOCLY_CDN_LOGO,
      'data:,',
    ),
  )

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  app.get('/redoc', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', csp).send(REDOC_PAGE),
  )
  app.get('/redoc/init.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(REDOC_INIT),
  )
  app.get('/redoc/redoc.standalone.js', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(bundle),
  )
}
