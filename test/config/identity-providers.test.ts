/**
 * OIDC_PROVIDERS: a JSON array of providers, read into typed entries or refused at start with one
 * line naming the variable, the provider and what is wrong, never echoing the value (it holds
 * client secrets).
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config.js'

const SECRET = 'a-secret-key-of-more-than-32-bytes-0123456789'
const dataDir = mkdtempSync(path.join(tmpdir(), 'fastauth-oidc-config-'))
const load = (providers: unknown) =>
  loadConfig({
    NODE_ENV: 'test',
    SECRET_KEY: SECRET,
    DATA_DIR: dataDir,
    OIDC_PROVIDERS: typeof providers === 'string' ? providers : JSON.stringify(providers),
  })

const keycloak = {
  id: 'keycloak',
  issuer: 'https://sso.example.com/realms/main',
  client_id: 'fastauth',
  client_secret: 'very-secret-value',
}

function refusal(providers: unknown): string {
  try {
    load(providers)
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    assert.equal(error.message.includes('\n'), false)
    assert.ok(error.message.startsWith('OIDC_PROVIDERS: '), error.message)
    assert.equal(error.message.includes('very-secret-value'), false, 'the secret is never repeated')
    return error.message
  }
  assert.fail('the providers were accepted')
}

test('none by default; a provider gets its name and scopes by default', () => {
  assert.deepEqual(
    loadConfig({ NODE_ENV: 'test', SECRET_KEY: SECRET, DATA_DIR: dataDir }).identityProviders,
    [],
  )
  assert.deepEqual(load([keycloak]).identityProviders, [
    {
      id: 'keycloak',
      name: 'keycloak',
      issuer: keycloak.issuer,
      clientId: 'fastauth',
      clientSecret: 'very-secret-value',
      scopes: 'openid email profile',
    },
  ])
})

test('a public client (no secret), a display name, scopes and http on this machine are accepted', () => {
  const [provider] = load([
    {
      id: 'local-dev',
      name: 'Local SSO',
      issuer: 'http://127.0.0.1:8080/realms/dev',
      client_id: 'x',
      scopes: 'openid email',
    },
  ]).identityProviders
  assert.equal(provider!.clientSecret, undefined)
  assert.equal(provider!.name, 'Local SSO')
  assert.equal(provider!.scopes, 'openid email')
  assert.equal(load([{ ...keycloak, issuer: 'http://localhost:8080' }]).identityProviders.length, 1)
})

test('each mistake is one line naming the provider and what to fix', () => {
  const named = (text: string) => `OIDC_PROVIDERS: provider "keycloak": ${text}`
  const AN_OBJECT =
    'OIDC_PROVIDERS: provider 1 must be an object like {"id", "issuer", "client_id", "client_secret"}'
  const HTTPS = named('"issuer" must be an https:// URL (http:// only on this machine: localhost, 127.0.0.1)')
  const AN_ID =
    'OIDC_PROVIDERS: provider 1: "id" must be 1 to 32 lower-case letters, digits or "-" (it is a path segment)'
  const taken = (id: string) =>
    `OIDC_PROVIDERS: provider "${id}": the id "${id}" is taken by another /login/ route; choose another`
  const cases: [unknown, string][] = [
    [
      '[{"id": "keycloak", very-secret-value',
      'OIDC_PROVIDERS: is not valid JSON (expected an array of providers)',
    ],
    [keycloak, 'OIDC_PROVIDERS: must be a JSON array of providers'],
    [['keycloak'], AN_OBJECT],
    [[null], AN_OBJECT],
    [[[keycloak]], AN_OBJECT],
    [[{ ...keycloak, id: 'Key Cloak' }], AN_ID],
    [[{ ...keycloak, id: 'keycloak!' }], AN_ID],
    [[{ ...keycloak, id: 'k'.repeat(33) }], AN_ID],
    [[{ ...keycloak, id: 5 }], AN_ID],
    [[{ ...keycloak, id: 'mfa' }], taken('mfa')],
    [[{ ...keycloak, id: 'passkey' }], taken('passkey')],
    [[{ ...keycloak, id: 'providers' }], taken('providers')],
    [[{ ...keycloak, issuer: undefined }], named('"issuer" is required (the provider\'s issuer URL)')],
    [[{ ...keycloak, issuer: 'not a url' }], named('"issuer" is not a URL')],
    [[{ ...keycloak, issuer: 'http://sso.example.com' }], HTTPS],
    // Only this machine's own names: not a host that merely starts like one.
    [[{ ...keycloak, issuer: 'http://127.0.0.1.example.com/' }], HTTPS],
    [[{ ...keycloak, issuer: 'http://localhost.example.com/' }], HTTPS],
    [[{ ...keycloak, issuer: 'ftp://localhost/' }], HTTPS],
    [
      [{ ...keycloak, issuer: 'https://sso.example.com/?realm=main' }],
      named('"issuer" must not have a query or a fragment'),
    ],
    [
      [{ ...keycloak, issuer: 'https://sso.example.com/#main' }],
      named('"issuer" must not have a query or a fragment'),
    ],
    [[{ ...keycloak, client_id: undefined }], named('"client_id" is required')],
    [[{ ...keycloak, client_id: ' ' }], named('"client_id" must be a non-empty string')],
    [[{ ...keycloak, name: 5 }], named('"name" must be a non-empty string')],
    [[{ ...keycloak, client_secret: '' }], named('"client_secret" must be a non-empty string')],
    [[{ ...keycloak, scopes: ' ' }], named('"scopes" must be a non-empty string')],
    [[{ ...keycloak, scopes: 'email profile' }], named('"scopes" must include openid')],
    [[{ ...keycloak, scopes: 'openidx email' }], named('"scopes" must include openid')],
    [
      [{ ...keycloak, tenant: 'x' }],
      'OIDC_PROVIDERS: provider 1: unknown member "tenant" (known: id, name, issuer, client_id, client_secret, scopes)',
    ],
    [
      [keycloak, { ...keycloak, client_id: 'other' }],
      'OIDC_PROVIDERS: the id "keycloak" is used by two providers',
    ],
  ]
  for (const [providers, expected] of cases)
    assert.equal(refusal(providers), expected, JSON.stringify(providers))
})

test('http:// is accepted for this machine by name and by address; values are trimmed; scopes split on any space', () => {
  for (const issuer of [
    'http://localhost:8080/realms/dev',
    'http://127.0.0.1/',
    'http://127.10.200.30:9000',
    'http://[::1]:8080/',
  ])
    assert.equal(load([{ ...keycloak, issuer }]).identityProviders[0]!.issuer, issuer)
  const [provider] = load([
    { ...keycloak, name: '  Company SSO ', client_id: ' fastauth ', scopes: 'email\topenid  profile' },
  ]).identityProviders
  assert.deepEqual(
    [provider!.name, provider!.clientId, provider!.scopes],
    ['Company SSO', 'fastauth', 'email\topenid  profile'],
  )
})
