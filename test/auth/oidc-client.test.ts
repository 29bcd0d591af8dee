/**
 * The relying-party client on its own (src/auth/oidc-client.ts), against real servers on
 * 127.0.0.1: the test provider (oidc-provider) for whole sign-ins, and a scripted provider whose
 * token, UserInfo and key endpoints each test sets, for the faults a real provider does not make
 * on demand: a token endpoint that is not listening, closes the connection, hangs past the timeout
 * or stops after its headers; an answer without an ID token, not JSON, with a signature that is
 * not base64url, signed under a key id the provider never published; UserInfo about someone
 * else; blank claims; an https provider whose metadata points the code exchange at plain http.
 * Each ends as what the sign-in flow tells the client: ProviderUnavailableError (try again later),
 * or ProviderAnswerRefusedError with its reason and message, compared whole. Last, isUnreachable
 * on its own, for what no fault of today's fetch and openid-client produces (an AbortError, an
 * error that is its own cause).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { rootCertificates } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import {
  createOidcProviderClient,
  isUnreachable,
  ProviderAnswerRefusedError,
  ProviderUnavailableError,
  type AuthorizationRequest,
  type OidcProviderClient,
} from '../../src/auth/oidc-client.js'
import type { IdentityProviderConfig } from '../../src/config.js'
import { startTestIdentityProvider, type TestIdentityProvider } from '../support/oidc-provider.js'
import { freePort } from '../support/processes.js'

/** Our callback, as registered at the providers (no server listens there: the test reads the URL). */
const REDIRECT_URI = 'http://127.0.0.1:8000/login/test/callback'
const CLIENT_ID = 'fastauth-scripted'
/** Seconds a request may take, for the tests that wait for the timeout (the others keep the default). */
const SHORT_TIMEOUT_SECONDS = 1

type Handler = (request: IncomingMessage, response: ServerResponse) => void

const json = (response: ServerResponse, body: unknown, status = 200) => {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

interface TlsCredentials {
  key: Buffer
  cert: Buffer
}

/**
 * A provider whose endpoints answer what the test says: by default its metadata, its key set, a
 * token endpoint that answers a good ID token (without email: the claims are UserInfo's, as the
 * test provider does) and a UserInfo endpoint. Over https when given a certificate.
 */
async function startScriptedProvider(tls?: TlsCredentials) {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'scripted-key', alg: 'ES256', use: 'sig' }
  const listener: RequestListener = (request, response) => {
    const handler = scripted.handlers[new URL(request.url ?? '/', 'http://localhost').pathname]
    if (handler) handler(request, response)
    else json(response, { error: 'not_found' }, 404)
  }
  const server = tls ? createTlsServer(tls, listener) : createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`

  const scripted = {
    issuer,
    subject: 'scripted-person',
    /** The discovery document; a test may change or drop entries before it makes its client. */
    metadata: {} as Record<string, unknown>,
    handlers: {} as Record<string, Handler>,
    /** An ID token for our client, signed with the published key; `claims` and `kid` change it. */
    idToken: (nonce: string, claims: JWTPayload = {}, kid = jwk.kid) =>
      new SignJWT({ sub: scripted.subject, nonce, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(issuer)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey),
    /** The token endpoint's answer: a bearer token and `idToken`. */
    tokenAnswer: (idToken: string) => (_request: IncomingMessage, response: ServerResponse) =>
      json(response, {
        access_token: 'scripted-access-token',
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken,
      }),
    /** Back to the defaults (each test starts from them). */
    reset(nonce: string) {
      scripted.metadata = {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
      }
      const idToken = scripted.idToken(nonce)
      scripted.handlers = {
        '/.well-known/openid-configuration': (_request, response) => json(response, scripted.metadata),
        '/jwks': (_request, response) => json(response, { keys: [jwk] }),
        '/token': (request, response) =>
          void idToken.then((token) => scripted.tokenAnswer(token)(request, response)),
        '/userinfo': (_request, response) =>
          json(response, { sub: scripted.subject, email: 'scripted@provider.example', email_verified: true }),
      }
    },
    provider: (): IdentityProviderConfig => ({
      id: 'scripted',
      name: 'Scripted provider',
      issuer,
      clientId: CLIENT_ID,
      clientSecret: 'scripted-secret',
      scopes: 'openid email profile',
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return scripted
}

/** A fresh request, as the sign-in flow makes one per sign-in. */
const newRequest = (): AuthorizationRequest => ({
  redirectUri: REDIRECT_URI,
  state: randomBytes(16).toString('base64url'),
  nonce: randomBytes(16).toString('base64url'),
  codeVerifier: randomBytes(32).toString('base64url'),
})

/** The provider's redirect back to our callback with a code, as a browser reaches it. */
const answerWithCode = (request: AuthorizationRequest) =>
  new URL(`${REDIRECT_URI}?${new URLSearchParams({ code: 'scripted-code', state: request.state })}`)

const unavailable = (provider: IdentityProviderConfig) => ({
  constructor: ProviderUnavailableError,
  name: 'ProviderUnavailableError',
  message: `The provider "${provider.id}" did not answer in time.`,
})

const refused = (reason: ProviderAnswerRefusedError['reason'], message: string) => ({
  constructor: ProviderAnswerRefusedError,
  name: 'ProviderAnswerRefusedError',
  reason,
  message,
})

const failedVerification = (detail: string) =>
  refused('invalid_answer', `The provider's answer failed verification: ${detail}.`)

describe('the OpenID Connect client against a scripted provider', () => {
  let scripted: Awaited<ReturnType<typeof startScriptedProvider>>
  before(async () => {
    scripted = await startScriptedProvider()
  })
  after(() => scripted?.close())

  /** A request and a client of the scripted provider as the test left it (a new client discovers anew). */
  function prepare(timeoutSeconds?: number) {
    const request = newRequest()
    scripted.reset(request.nonce)
    return {
      request,
      client: () => createOidcProviderClient(scripted.provider(), timeoutSeconds),
    }
  }

  /** The client's verdict on the answer with a code, after a good start (discovery included). */
  async function verify(client: OidcProviderClient, request: AuthorizationRequest) {
    await client.authorizationUrl(request)
    return client.verifyAnswer(answerWithCode(request), request)
  }

  test('a good answer: the ID token is verified and the claims are asked of UserInfo', async () => {
    const { request, client } = prepare()
    assert.deepEqual(await verify(client(), request), {
      subject: scripted.subject,
      email: 'scripted@provider.example',
      emailVerified: true,
      profileName: null,
    })
  })

  test('a token endpoint nobody listens on (after a good discovery): unavailable', async () => {
    const { request, client } = prepare()
    scripted.metadata.token_endpoint = `http://127.0.0.1:${await freePort()}/token`
    await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
  })

  test('a token endpoint that closes the connection without a word: unavailable', async () => {
    const { request, client } = prepare()
    scripted.handlers['/token'] = (request) => request.socket.destroy()
    await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
  })

  test(
    'a token endpoint that never answers: unavailable once the timeout is over',
    { timeout: 30_000 },
    async () => {
      const { request, client } = prepare(SHORT_TIMEOUT_SECONDS)
      scripted.handlers['/token'] = () => {}
      await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
    },
  )

  test(
    'a token endpoint that sends its headers, then nothing: unavailable once the timeout is over',
    { timeout: 30_000 },
    async () => {
      const { request, client } = prepare(SHORT_TIMEOUT_SECONDS)
      scripted.handlers['/token'] = (_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        response.write('{"access_token":')
      }
      await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
    },
  )

  test('a token endpoint that cuts the connection halfway through its answer: unavailable', async () => {
    const { request, client } = prepare()
    scripted.handlers['/token'] = (request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      response.write('{"access_token":', () => request.socket.destroy())
    }
    await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
  })

  test('a token endpoint failing on its side (a 5xx that is not an OAuth error): unavailable', async () => {
    for (const status of [500, 502, 503]) {
      const { request, client } = prepare()
      scripted.handlers['/token'] = (_request, response) => {
        response.writeHead(status, { 'content-type': 'text/html' })
        response.end('<html><body>Bad gateway</body></html>')
      }
      await assert.rejects(
        verify(client(), request),
        {
          constructor: ProviderUnavailableError,
          name: 'ProviderUnavailableError',
          message: `The provider "scripted" failed on its side (HTTP ${status}).`,
        },
        String(status),
      )
    }
  })

  test(
    'a key set that never comes, for the check of the signature: unavailable',
    { timeout: 30_000 },
    async () => {
      const { request, client } = prepare(SHORT_TIMEOUT_SECONDS)
      scripted.handlers['/jwks'] = () => {}
      await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
    },
  )

  test('a UserInfo endpoint that never answers: unavailable', { timeout: 30_000 }, async () => {
    const { request, client } = prepare(SHORT_TIMEOUT_SECONDS)
    scripted.handlers['/userinfo'] = () => {}
    await assert.rejects(verify(client(), request), unavailable(scripted.provider()))
  })

  test('an answer without an ID token is refused by the library, which was told to expect one', async () => {
    const { request, client } = prepare()
    scripted.handlers['/token'] = (_request, response) =>
      json(response, { access_token: 'scripted-access-token', token_type: 'Bearer' })
    await assert.rejects(
      verify(client(), request),
      failedVerification(
        'invalid response encountered ("response" body "id_token" property must be a string)',
      ),
    )
  })

  test('an answer that is not JSON is refused (the message has no cause to add)', async () => {
    const { request, client } = prepare()
    scripted.handlers['/token'] = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' })
      response.end('access_token=scripted-access-token')
    }
    await assert.rejects(verify(client(), request), failedVerification('unexpected response content-type'))
  })

  test('an ID token whose signature is not even base64url is a refused answer, not an outage', async () => {
    const { request, client } = prepare()
    const token = await scripted.idToken(request.nonce)
    scripted.handlers['/token'] = scripted.tokenAnswer(`${token.slice(0, token.lastIndexOf('.'))}.@@@@`)
    // The library's TypeError, with the runtime's own words for the bad character in brackets.
    await assert.rejects(verify(client(), request), (error: unknown) => {
      assert.ok(error instanceof ProviderAnswerRefusedError)
      assert.equal(error.reason, 'invalid_answer')
      assert.match(
        error.message,
        /^The provider's answer failed verification: The input to be decoded is not correctly encoded\. \([^()]+\)\.$/,
      )
      return true
    })
  })

  test('an ID token signed under a key id the provider never published is refused', async () => {
    const { request, client } = prepare()
    scripted.handlers['/token'] = scripted.tokenAnswer(
      await scripted.idToken(request.nonce, {}, 'unknown-key'),
    )
    await assert.rejects(
      verify(client(), request),
      failedVerification('error when selecting a JWT verification key, no applicable keys found'),
    )
  })

  test('UserInfo about another subject is refused', async () => {
    const { request, client } = prepare()
    scripted.handlers['/userinfo'] = (_request, response) => json(response, { sub: 'someone-else' })
    await assert.rejects(
      verify(client(), request),
      failedVerification(
        'unexpected JSON attribute value encountered (unexpected "response" body "sub" property value)',
      ),
    )
  })

  test('an email in the ID token is the one that counts: UserInfo is not asked', async () => {
    const { request, client } = prepare()
    const claims = { email: 'in-the-token@provider.example', email_verified: true, name: 'Token Name' }
    scripted.handlers['/token'] = scripted.tokenAnswer(await scripted.idToken(request.nonce, claims))
    scripted.handlers['/userinfo'] = (_request, response) => json(response, { error: 'invalid_token' }, 401)
    assert.deepEqual(await verify(client(), request), {
      subject: scripted.subject,
      email: 'in-the-token@provider.example',
      emailVerified: true,
      profileName: 'Token Name',
    })
  })

  test('a provider without UserInfo: the ID token alone, even without an email', async () => {
    const { request, client } = prepare()
    delete scripted.metadata.userinfo_endpoint
    scripted.handlers['/token'] = scripted.tokenAnswer(
      await scripted.idToken(request.nonce, { preferred_username: 'ada' }),
    )
    assert.deepEqual(await verify(client(), request), {
      subject: scripted.subject,
      email: null,
      emailVerified: false,
      profileName: 'ada',
    })
  })

  test('blank claims count as absent: a blank email is none, a blank preferred_username gives way to name', async () => {
    const { request, client } = prepare()
    const claims = { email: '   ', email_verified: true, preferred_username: ' \t ', name: 'Ada Lovelace' }
    scripted.handlers['/token'] = scripted.tokenAnswer(await scripted.idToken(request.nonce, claims))
    assert.deepEqual(await verify(client(), request), {
      subject: scripted.subject,
      email: null,
      emailVerified: true,
      profileName: 'Ada Lovelace',
    })
  })
})

/** A self-signed certificate for 127.0.0.1, made by openssl (as the machines the suite runs on have it). */
function selfSignedCertificate(): TlsCredentials {
  const dir = mkdtempSync(path.join(tmpdir(), 'oidc-client-tls-'))
  try {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')]
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat(
        ['-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ),
      { stdio: 'ignore' },
    )
    return { key: readFileSync(key), cert: readFileSync(cert) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Makes Node's fetch trust `ca` besides the system's authorities, until the returned function puts
 * things back. NODE_EXTRA_CA_CERTS is read only at start, so this replaces fetch's global
 * dispatcher (undici's Agent, kept under the symbol undici documents for it) by another Agent.
 */
async function trustForFetch(ca: Buffer): Promise<() => Promise<void>> {
  const key = Symbol.for('undici.globalDispatcher.1')
  const slots = globalThis as unknown as Record<symbol, { close(): Promise<void> } | undefined>
  await fetch('data:,') // fetch (and its dispatcher) is set up on its first call
  const previous = slots[key]
  assert.ok(previous, "fetch's global dispatcher is not where undici keeps it")
  const Agent = previous.constructor as new (options: unknown) => { close(): Promise<void> }
  const trusting = new Agent({ connect: { ca: [...rootCertificates, ca.toString()] } })
  slots[key] = trusting
  return async () => {
    slots[key] = previous
    await trusting.close()
  }
}

describe('the OpenID Connect client against a provider over https', () => {
  let secure: Awaited<ReturnType<typeof startScriptedProvider>>
  let plain: Awaited<ReturnType<typeof startScriptedProvider>>
  let untrust: (() => Promise<void>) | undefined
  before(async () => {
    const tls = selfSignedCertificate()
    untrust = await trustForFetch(tls.cert)
    secure = await startScriptedProvider(tls)
    plain = await startScriptedProvider()
  })
  after(async () => {
    await untrust?.()
    await secure?.close()
    await plain?.close()
  })

  test('a good answer, all over TLS', async () => {
    const request = newRequest()
    secure.reset(request.nonce)
    const client = createOidcProviderClient(secure.provider())
    await client.authorizationUrl(request)
    assert.deepEqual(await client.verifyAnswer(answerWithCode(request), request), {
      subject: secure.subject,
      email: 'scripted@provider.example',
      emailVerified: true,
      profileName: null,
    })
  })

  test('metadata that sends the code exchange to plain http: refused, nothing sent', async () => {
    const request = newRequest()
    secure.reset(request.nonce)
    plain.reset(request.nonce)
    let exchanges = 0
    const answer = plain.handlers['/token']!
    plain.handlers['/token'] = (...args) => {
      exchanges += 1
      answer(...args)
    }
    secure.metadata.token_endpoint = `${plain.issuer}/token`
    const client = createOidcProviderClient(secure.provider())
    await client.authorizationUrl(request)
    await assert.rejects(
      client.verifyAnswer(answerWithCode(request), request),
      failedVerification('only requests to HTTPS are allowed'),
    )
    assert.equal(exchanges, 0, 'the code and the client secret went over plain http')
  })
})

describe('the OpenID Connect client against the test provider', () => {
  let idp: TestIdentityProvider
  let provider: IdentityProviderConfig
  before(async () => {
    idp = await startTestIdentityProvider({ redirectUris: [REDIRECT_URI] })
    provider = {
      id: 'test',
      name: 'Test provider',
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      scopes: 'openid email profile',
    }
  })
  after(() => idp?.close())

  /** Start, and the provider's answer for `sub` (or a cancel): what the browser brings back. */
  async function signIn(client: OidcProviderClient, sub: string | 'cancel') {
    const request = newRequest()
    const answer = await idp.signIn((await client.authorizationUrl(request)).href, sub)
    return { request, answer }
  }

  test('blank claims from UserInfo count as absent', async () => {
    const client = createOidcProviderClient(provider)
    const person = idp.addPerson({ email: ' ', preferred_username: '  ', name: 'Grace Hopper' })
    const { request, answer } = await signIn(client, person.sub)
    assert.deepEqual(await client.verifyAnswer(answer, request), {
      subject: person.sub,
      email: null,
      emailVerified: true,
      profileName: 'Grace Hopper',
    })
  })

  test('a sign-in cancelled at the provider: access_denied, and a message that names the provider', async () => {
    const client = createOidcProviderClient(provider)
    const { request, answer } = await signIn(client, 'cancel')
    await assert.rejects(
      client.verifyAnswer(answer, request),
      refused('access_denied', 'The sign-in was cancelled at "Test provider".'),
    )
  })
})

describe('isUnreachable: what counts as no answer at all', () => {
  test("fetch's network failure, a timeout, an abort, and an error caused by one of them", () => {
    const networkFailure = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError')
    const abort = new DOMException('This operation was aborted', 'AbortError')
    for (const error of [networkFailure, timeout, abort]) {
      assert.equal(isUnreachable(error), true, String(error))
      assert.equal(
        isUnreachable(new Error('wrapped', { cause: new Error('wrapped', { cause: error }) })),
        true,
      )
    }
  })

  test('anything else is not: another error, another TypeError, a non-Error, a cause that is not an Error', () => {
    for (const thrown of [
      new Error('fetch failed'),
      new TypeError("Cannot read properties of undefined (reading 'sub')"),
      new Error('unexpected JWT claim value encountered', { cause: { claim: 'aud' } }),
      new Error('no cause at all', { cause: null }),
      null,
      undefined,
      'fetch failed',
      { name: 'TimeoutError' },
    ])
      assert.equal(isUnreachable(thrown), false, String(thrown))
  })

  test('an error that is its own cause is not one, and does not send it round in circles', () => {
    const error = new Error('itself')
    error.cause = error
    assert.equal(isUnreachable(error), false)
  })
})
