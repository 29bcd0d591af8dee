/**
 * OIDC_PROVIDERS: the OpenID Connect providers users may sign in with, as a JSON array, so that any
 * number of them is one variable that a secret store or a compose file can hold whole.
 */
import type { IdentityProviderConfig } from './fields.js'
import type { Reader, Refuse } from './readers.js'

/** A provider id is a path segment (/login/{id}) and a database key: short, lower-case, plain. */
const PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,31}$/

/** Paths under /login/ that are not providers: an id may not take them. */
const RESERVED_IDS = new Set(['mfa', 'passkey', 'providers'])

const DEFAULT_SCOPES = 'openid email profile'

const MEMBERS = new Set(['id', 'name', 'issuer', 'client_id', 'client_secret', 'scopes'])

/** http is accepted for a provider on this machine only (development, tests): tokens cross no network. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function issuerOf(value: unknown, where: string, refuse: Refuse): string {
  if (typeof value !== 'string') return refuse(`${where}: "issuer" is required (the provider's issuer URL)`)
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    return refuse(`${where}: "issuer" is not a URL`)
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopback(parsed.hostname)))
    refuse(`${where}: "issuer" must be an https:// URL (http:// only on this machine: localhost, 127.0.0.1)`)
  if (parsed.search || parsed.hash) refuse(`${where}: "issuer" must not have a query or a fragment`)
  return value
}

function textMember(value: unknown, member: string, where: string, refuse: Refuse): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '')
    refuse(`${where}: "${member}" must be a non-empty string`)
  return (value as string).trim()
}

function providerOf(entry: unknown, index: number, refuse: Refuse): IdentityProviderConfig {
  const where = `provider ${index + 1}`
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    return refuse(`${where} must be an object like {"id", "issuer", "client_id", "client_secret"}`)
  const members = entry as Record<string, unknown>
  const unknown = Object.keys(members).find((key) => !MEMBERS.has(key))
  if (unknown !== undefined)
    refuse(`${where}: unknown member "${unknown}" (known: ${[...MEMBERS].join(', ')})`)
  const id = members.id
  if (typeof id !== 'string' || !PROVIDER_ID.test(id))
    return refuse(`${where}: "id" must be 1 to 32 lower-case letters, digits or "-" (it is a path segment)`)
  const named = `provider "${id}"`
  if (RESERVED_IDS.has(id))
    refuse(`${named}: the id "${id}" is taken by another /login/ route; choose another`)
  const clientId = textMember(members.client_id, 'client_id', named, refuse)
  if (clientId === undefined) refuse(`${named}: "client_id" is required`)
  const scopes = textMember(members.scopes, 'scopes', named, refuse) ?? DEFAULT_SCOPES
  // Stryker disable next-line Regex: splitting on each space instead only adds empty names, never "openid".
  if (!scopes.split(/\s+/).includes('openid')) refuse(`${named}: "scopes" must include openid`)
  return {
    id,
    name: textMember(members.name, 'name', named, refuse) ?? id,
    issuer: issuerOf(members.issuer, named, refuse),
    clientId: clientId!,
    clientSecret: textMember(members.client_secret, 'client_secret', named, refuse),
    scopes,
  }
}

export const identityProviders: Reader<IdentityProviderConfig[]> = {
  accepts: 'a JSON array of `{"id", "name", "issuer", "client_id", "client_secret", "scopes"}`',
  parse(raw, refuse) {
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      // Never the text itself: it holds client secrets.
      return refuse('is not valid JSON (expected an array of providers)')
    }
    if (!Array.isArray(value)) return refuse('must be a JSON array of providers')
    const providers = value.map((entry, index) => providerOf(entry, index, refuse))
    const ids = providers.map((provider) => provider.id)
    const repeated = ids.find((id, index) => ids.indexOf(id) !== index)
    if (repeated !== undefined) refuse(`the id "${repeated}" is used by two providers`)
    return providers
  },
}
