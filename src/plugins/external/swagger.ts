import { STATUS_CODES } from 'node:http'
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { OAUTH2_SCHEME } from '../../http/openapi.js'
import { docsCsp } from '../../http/security-headers.js'
import { ICON_SVG, PRODUCT_NAME } from '../../http/brand.js'

/**
 * The Authorize dialog asks for a login name and a password only: the stock paragraph about
 * scopes (there are none), the client credentials and their location (public client, none) are
 * hidden, before and after authorizing.
 */
const AUTHORIZE_DIALOG_CSS = `
.auth-container .scope-def,
.auth-container .wrapper:has(> label[for='password_type']),
.auth-container .wrapper:has(> label[for='client_id_password']),
.auth-container .wrapper:has(> label[for='client_secret_password']) { display: none; }
`

/** The groups of routes in the docs, in the order they are shown. */
const TAGS = [
  { name: 'auth', description: 'Login and the current user' },
  {
    name: 'mfa',
    description:
      'Your second factors: TOTP, recovery codes, re-authentication (POST /login/mfa is under auth)',
  },
  {
    name: 'passkeys',
    description:
      'Your passkeys (WebAuthn): register, list, rename, remove (POST /login/passkey is under auth)',
  },
  {
    name: 'keys',
    description: 'The public keys that verify access tokens, for other services (JWKS and discovery)',
  },
  {
    name: 'identities',
    description:
      'Your accounts at OpenID Connect providers (OIDC_PROVIDERS): sign in with them, link and unlink them',
  },
  { name: 'users', description: 'Registration and user management' },
  { name: 'products', description: 'Products (every route needs an access token)' },
  { name: 'audit', description: 'The security audit trail (admins)' },
  { name: 'operations', description: 'Health checks' },
]

type DocumentObject = Parameters<NonNullable<FastifyDynamicSwaggerOptions['transformObject']>>[0]
type Document = Extract<DocumentObject, { openapiObject: unknown }>['openapiObject']

/**
 * A response whose schema has no description is "Default Response" in the generated document:
 * a success then says what it is (OK, Created, No Content…). Errors describe themselves
 * (schemas/problem.ts).
 */
function nameSuccessResponses(document: Document): Document {
  for (const operations of Object.values(document.paths ?? {}))
    for (const operation of Object.values(operations ?? {})) {
      const responses = (operation as { responses?: Record<string, { description?: string }> }).responses
      for (const [status, response] of Object.entries(responses ?? {}))
        if (response.description === 'Default Response')
          response.description = STATUS_CODES[status] ?? 'Success'
    }
  return document
}

/** OpenAPI 3.1 generated from the routes' own schemas, and Swagger UI served from the package's assets. */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: PRODUCT_NAME,
          version: '0.1.0',
          description:
            'Users register and log in through the OAuth2 password flow and receive JWT access tokens; ' +
            'products are managed through a protected CRUD API. In Swagger UI (/docs), click **Authorize** and log ' +
            'in with your email (or user name) and password: "Try it out" then sends the token. Elsewhere, get a ' +
            'token from POST /login and send it as `Authorization: Bearer <access_token>`.',
        },
        // A guessed address (HOST:PORT) is not where a browser reaches the server when it runs in a
        // container or behind a proxy: the docs would send Authorize and "Try it out" to another
        // origin, which CORS refuses. Without `servers`, they use the address they were opened at.
        ...(config.publicUrlConfigured ? { servers: [{ url: config.publicUrl }] } : {}),
        tags: TAGS,
        components: {
          securitySchemes: {
            [OAUTH2_SCHEME]: {
              type: 'oauth2',
              description: 'Log in with your email or user name and password.',
              flows: { password: { tokenUrl: '/login', scopes: {} } },
            },
          },
        },
      },
      transformObject: (object) =>
        'openapiObject' in object ? nameSuccessResponses(object.openapiObject) : object.swaggerObject,
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    })
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      // This product's name and icon, not Swagger's (the page's title, the tab's icon, the top bar).
      logo: { type: 'image/svg+xml', content: Buffer.from(ICON_SVG), href: '/', target: '_self' },
      theme: {
        title: `${PRODUCT_NAME} – docs`,
        css: [{ filename: 'theme.css', content: AUTHORIZE_DIALOG_CSS }],
        favicon: [
          {
            filename: 'favicon.svg',
            rel: 'icon',
            sizes: 'any',
            type: 'image/svg+xml',
            content: Buffer.from(ICON_SVG),
          },
        ],
      },
      uiConfig: {
        persistAuthorization: false,
        displayRequestDuration: true,
        tryItOutEnabled: true,
        validatorUrl: null,
      },
      // Every /docs response gets the docs policy instead of the API's (helmet.ts explains it).
      staticCSP: docsCsp(config),
    })
  },
  { name: 'swagger' },
)
