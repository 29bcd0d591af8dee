/**
 * A real OpenID Connect provider for the tests: the `oidc-provider` package (certified OP) in this
 * process, listening on 127.0.0.1, with its own signing key, two registered clients and people the
 * tests add. Its sign-in page is a plain form (a login name, "Sign in" or "Cancel") that a browser
 * fills in, or that `signIn` posts as a browser would, cookies and redirects included.
 *
 * A test may change the next ID token the token endpoint answers (`tamperNextIdToken`): its claims
 * re-signed with the provider's key (a wrong audience, nonce, issuer, an expired token), or signed
 * with another key under the same `kid`. Everything else is the provider's own doing.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type JWK,
  type JWTPayload,
} from 'jose'
import Provider from 'oidc-provider'

export interface TestPerson {
  sub: string
  email?: string
  email_verified?: boolean
  name?: string
  preferred_username?: string
}

export interface IdTokenTampering {
  claims?: (claims: JWTPayload) => JWTPayload
  /** Sign with a key the provider never published, under the published `kid`. */
  otherKey?: boolean
}

export interface TestIdentityProvider {
  issuer: string
  clientId: string
  clientSecret: string
  /** A second client of the same provider, with the same redirect URI. */
  otherClientId: string
  /** A public client (no secret: PKCE alone protects its code exchange), with the same redirect URI. */
  publicClientId: string
  /** The entry of OIDC_PROVIDERS for this provider, as `id`. */
  entry(id: string, name?: string): Record<string, string>
  /** A new person who can sign in here; unique unless given. */
  addPerson(person?: Partial<TestPerson>): TestPerson
  tamperNextIdToken(tampering: IdTokenTampering): void
  /**
   * Follows an authorization URL as a browser would, signs in as `sub` (or cancels), and answers
   * where the provider sends the browser back: our callback URL with its query.
   */
  signIn(authorizationUrl: string, sub: string | 'cancel'): Promise<URL>
  close(): Promise<void>
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

function signInPage(uid: string): string {
  return `<!doctype html><html><head><title>Test provider</title></head><body>
<h1>Test provider</h1>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Login <input name="login" autofocus></label>
<button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>
</body></html>`
}

async function formOf(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return new URLSearchParams(Buffer.concat(chunks).toString())
}

/** Holds back the JSON body a handler writes, and writes `transform(body)` instead. */
function rewriteJson(
  response: ServerResponse,
  transform: (body: Record<string, unknown>) => Promise<unknown>,
) {
  const setHeader = response.setHeader.bind(response)
  const end = response.end.bind(response) as (chunk?: unknown) => ServerResponse
  response.setHeader = ((name: string, value: string | number | readonly string[]) =>
    name.toLowerCase() === 'content-length' ? response : setHeader(name, value)) as typeof response.setHeader
  response.end = ((chunk?: unknown) => {
    const text = chunk === undefined ? '' : Buffer.isBuffer(chunk) ? chunk.toString() : String(chunk)
    void (async () => {
      let body: unknown = text
      try {
        body = JSON.stringify(await transform(JSON.parse(text) as Record<string, unknown>))
      } catch {
        // not JSON (an error page): left as it is
      }
      end(body)
    })()
    return response
  }) as typeof response.end
}

export async function startTestIdentityProvider(options: {
  redirectUris: string[]
}): Promise<TestIdentityProvider> {
  const people = new Map<string, TestPerson>()
  const clientId = 'fastauth-test'
  const clientSecret = randomBytes(24).toString('base64url')
  const otherClientId = 'another-client'
  const publicClientId = 'public-client'
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingJwk: JWK = {
    ...(await exportJWK(privateKey)),
    kid: 'test-provider-key',
    alg: 'RS256',
    use: 'sig',
  }
  let tampering: IdTokenTampering | undefined

  const server: Server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      response.statusCode = 500
      response.end(String(error))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: otherClientId,
        client_secret: randomBytes(24).toString('base64url'),
        redirect_uris: options.redirectUris,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: publicClientId,
        redirect_uris: options.redirectUris,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    // Lifetimes of its own (its defaults print a notice each).
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 600,
      IdToken: 600,
      Interaction: 600,
      Session: 600,
    },
    async findAccount(_ctx, sub) {
      const person = people.get(sub)
      if (!person) return undefined
      return { accountId: sub, claims: async () => ({ ...person }) }
    },
    // No consent page: these clients are first-party; every scope they ask is granted.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client!.clientId,
        accountId: ctx.oidc.session!.accountId!,
      })
      grant.addOIDCScope('openid email profile')
      await grant.save()
      return grant
    },
  })

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', issuer)
    const page = /^\/interaction\/([^/]+)(\/login|\/abort)?$/.exec(url.pathname)
    if (page && request.method === 'GET' && !page[2]) {
      const { uid } = await provider.interactionDetails(request, response)
      response.setHeader('content-type', 'text/html; charset=utf-8')
      response.end(signInPage(uid))
      return
    }
    if (page && request.method === 'POST') {
      const form = await formOf(request)
      const login = form.get('login') ?? ''
      const result =
        page[2] === '/abort' || !people.has(login)
          ? { error: 'access_denied', error_description: 'The person cancelled the sign-in.' }
          : { login: { accountId: login } }
      await provider.interactionFinished(request, response, result, { mergeWithLastSubmission: false })
      return
    }
    if (request.method === 'POST' && url.pathname === '/token' && tampering) {
      const change = tampering
      tampering = undefined
      rewriteJson(response, async (body) => {
        if (typeof body.id_token !== 'string') return body
        const header = decodeProtectedHeader(body.id_token)
        const claims = change.claims ? change.claims(decodeJwt(body.id_token)) : decodeJwt(body.id_token)
        const key = change.otherKey
          ? (await generateKeyPair('RS256')).privateKey
          : await importJWK(signingJwk, 'RS256')
        const idToken = await new SignJWT(claims)
          .setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: header.typ })
          .sign(key)
        return { ...body, id_token: idToken }
      })
    }
    provider.callback()(request, response)
  }

  let counter = 0
  return {
    issuer,
    clientId,
    clientSecret,
    otherClientId,
    publicClientId,
    entry: (id, name = `Test provider ${id}`) => ({
      id,
      name,
      issuer,
      client_id: clientId,
      client_secret: clientSecret,
    }),
    addPerson(person = {}) {
      counter += 1
      const tag = `${Date.now().toString(36)}${counter}${randomBytes(3).toString('hex')}`
      const added: TestPerson = {
        sub: `person-${tag}`,
        email: `person-${tag}@provider.example`,
        email_verified: true,
        preferred_username: `person-${tag}`,
        ...person,
      }
      people.set(added.sub, added)
      return added
    },
    tamperNextIdToken(change) {
      tampering = change
    },
    async signIn(authorizationUrl, sub) {
      const cookies = new Map<string, string>()
      let address = new URL(authorizationUrl)
      for (let hop = 0; hop < 10; hop++) {
        const atInteraction = /^\/interaction\/[^/]+$/.test(address.pathname)
        const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
        const response = atInteraction
          ? await fetch(`${address.href}/${sub === 'cancel' ? 'abort' : 'login'}`, {
              method: 'POST',
              redirect: 'manual',
              headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ login: sub }).toString(),
            })
          : await fetch(address, { redirect: 'manual', headers: { cookie } })
        for (const line of response.headers.getSetCookie()) {
          const [pair] = line.split(';')
          const [name, ...value] = pair!.split('=')
          cookies.set(name!.trim(), value.join('='))
        }
        await response.arrayBuffer()
        const location = response.headers.get('location')
        if (!location)
          throw new Error(`the provider answered ${response.status} without a redirect at ${address.href}`)
        address = new URL(location, address)
        if (address.origin !== issuer) return address
      }
      throw new Error('the provider redirected more than 10 times')
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
