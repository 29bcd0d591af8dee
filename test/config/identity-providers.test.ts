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
  const cases: [unknown, RegExp][] = [
    ['[{"id": "keycloak", very-secret-value', /is not valid JSON/],
    [keycloak, /must be a JSON array/],
    [['keycloak'], /provider 1 must be an object/],
    [[{ ...keycloak, id: 'Key Cloak' }], /provider 1: "id" must be 1 to 32 lower-case/],
    [[{ ...keycloak, id: 'mfa' }], /the id "mfa" is taken by another \/login\/ route/],
    [[{ ...keycloak, id: 'providers' }], /the id "providers" is taken/],
    [[{ ...keycloak, issuer: undefined }], /provider "keycloak": "issuer" is required/],
    [[{ ...keycloak, issuer: 'not a url' }], /"issuer" is not a URL/],
    [[{ ...keycloak, issuer: 'http://sso.example.com' }], /must be an https:\/\/ URL/],
    [
      [{ ...keycloak, issuer: 'https://sso.example.com/?realm=main' }],
      /no query or a fragment|must not have a query/,
    ],
    [[{ ...keycloak, client_id: undefined }], /"client_id" is required/],
    [[{ ...keycloak, client_id: ' ' }], /"client_id" must be a non-empty string/],
    [[{ ...keycloak, scopes: 'email profile' }], /"scopes" must include openid/],
    [[{ ...keycloak, tenant: 'x' }], /unknown member "tenant"/],
    [[keycloak, { ...keycloak, client_id: 'other' }], /the id "keycloak" is used by two providers/],
  ]
  for (const [providers, expected] of cases) assert.match(refusal(providers), expected)
})
