/**
 * The server's root: a person opening it in a browser lands on a page of links (the docs, the
 * account page, health), a client gets the same links as JSON, and the tab has this product's icon.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { testConfig } from '../../support/app.js'

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'

describe('the root and the icon', () => {
  let app: FastifyInstance
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
  })
  after(() => app?.close())

  test('a browser gets a page of links, under the strict page policy', async () => {
    const response = await app.inject({ url: '/', headers: { accept: BROWSER_ACCEPT } })
    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], 'text/html; charset=utf-8')
    assert.match(String(response.headers['content-security-policy']), /default-src 'none'/)
    assert.match(response.body, /<title>FastAuth API<\/title>/)
    for (const link of ['/docs', '/redoc', '/openapi.json', '/account', '/healthz', '/readyz'])
      assert.ok(response.body.includes(`href="${link}"`), `links to ${link}`)
    // Every link it shows answers.
    for (const link of ['/docs', '/redoc', '/openapi.json', '/account', '/healthz', '/readyz']) {
      const target = await app.inject({ url: link })
      assert.ok([200, 302].includes(target.statusCode), `${link} answered ${target.statusCode}`)
    }
  })

  test('a client (curl, fetch: */*, or JSON) gets the links as JSON', async () => {
    for (const accept of [undefined, '*/*', 'application/json']) {
      const response = await app.inject({ url: '/', headers: accept ? { accept } : {} })
      assert.equal(response.statusCode, 200)
      assert.match(String(response.headers['content-type']), /^application\/json/)
      assert.deepEqual(response.json(), {
        name: 'FastAuth API',
        links: {
          docs: '/docs',
          redoc: '/redoc',
          openapi: '/openapi.json',
          account: '/account',
          health: '/healthz',
          readiness: '/readyz',
        },
      })
    }
  })

  test('/favicon.ico is the product icon, cacheable', async () => {
    const response = await app.inject({ url: '/favicon.ico' })
    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], 'image/svg+xml')
    assert.match(String(response.headers['cache-control']), /max-age=86400/)
    assert.match(response.body, /^<svg [^>]*aria-label="FastAuth API"/)
  })

  test('the Swagger UI page carries the product name and icon, not Swagger’s', async () => {
    const page = await app.inject({ url: '/docs' })
    assert.equal(page.statusCode, 200)
    assert.match(page.body, /<title>FastAuth API – docs<\/title>/)
    assert.match(page.body, /favicon\.svg/)
    const icon = await app.inject({ url: '/docs/static/theme/favicon.svg' })
    assert.equal(icon.statusCode, 200, 'the icon the page names is served')
    assert.match(icon.body, /aria-label="FastAuth API"/)
  })
})
