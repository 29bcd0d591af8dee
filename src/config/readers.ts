/**
 * The kinds of value a variable can take. Each reader turns the text of a variable into a typed
 * value, refusing with a message that says what was expected, and says for the docs what it
 * accepts; the messages and the docs thus come from the same few lines.
 */
import path from 'node:path'

/** Throws the ConfigError of the variable being read: `NAME: problem`. */
export type Refuse = (problem: string) => never

export interface Reader<T> {
  /** The values taken (Markdown), as the README and .env.example say it; free text says nothing. */
  readonly accepts?: string
  /** Spaces around a secret are part of it: only an empty value counts as unset. */
  readonly untrimmed?: boolean
  /** The variable's value (set, not empty; trimmed unless `untrimmed`) as T. */
  parse(raw: string, refuse: Refuse): T
}

export function integer(min: number, max: number): Reader<number> {
  return {
    accepts: `${min} to ${max}`,
    parse(raw, refuse) {
      if (!/^-?\d+$/.test(raw)) refuse(`expected a whole number, got "${raw}"`)
      const value = Number(raw)
      if (value < min || value > max) refuse(`must be between ${min} and ${max}, got ${value}`)
      return value
    },
  }
}

export const boolean: Reader<boolean> = {
  accepts: 'true or false',
  parse(raw, refuse) {
    const value = raw.toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(value)) return true
    if (['0', 'false', 'no', 'off'].includes(value)) return false
    return refuse(`expected true or false, got "${value}"`)
  },
}

export function oneOf<const T extends string>(allowed: readonly T[]): Reader<T> {
  return {
    accepts: allowed.join(', '),
    parse(raw, refuse) {
      if (!(allowed as readonly string[]).includes(raw))
        refuse(`must be one of ${allowed.join(', ')}; got "${raw}"`)
      return raw as T
    },
  }
}

export function text(accepts?: string): Reader<string> {
  return { accepts, parse: (raw) => raw }
}

/** A folder, relative to the working directory unless absolute; read as an absolute path. */
export const folder: Reader<string> = { accepts: 'folder', parse: (raw) => path.resolve(raw) }

/** A password is taken exactly as written, spaces included. */
export const password: Reader<string> = {
  accepts: 'text, taken as written (spaces count)',
  untrimmed: true,
  parse: (raw) => raw,
}

export function url(...schemes: string[]): Reader<string> {
  const starts = schemes.map((scheme) => `${scheme}//`).join(' or ')
  return {
    accepts: `${starts} URL`,
    parse(raw, refuse) {
      let parsed: URL
      try {
        parsed = new URL(raw)
      } catch {
        return refuse('is not a valid URL')
      }
      if (!schemes.includes(parsed.protocol)) refuse(`must start with ${starts}`)
      return raw
    },
  }
}

/** Only the scheme is checked here: src/db/target.ts parses the rest when it connects. */
export const databaseUrl: Reader<string> = {
  accepts: 'sqlite:, postgres://, postgresql://, mysql:// or mariadb:// URL',
  parse(raw, refuse) {
    if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/|mysql:\/\/|mariadb:\/\/)/.test(raw))
      refuse('must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://')
    return raw
  },
}

/**
 * A link template for emails: an http(s) URL with a `{token}` placeholder, so that an app with its
 * own frontend can point the links at its own pages.
 */
export const linkTemplate: Reader<string> = {
  accepts: 'http:// or https:// URL with {token}',
  parse(raw, refuse) {
    if (!raw.includes('{token}')) refuse('must contain {token}, where the token goes')
    let parsed: URL
    try {
      parsed = new URL(raw.replaceAll('{token}', 'token'))
    } catch {
      return refuse('is not a valid URL')
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      refuse('must start with http:// or https://')
    return raw
  },
}

/** A shared secret sent as a bearer token: long enough not to be guessed, and never repeated in errors. */
export function bearerSecret(minLength: number): Reader<string> {
  return {
    accepts: `≥ ${minLength} letters, digits or \`-._~+/\` (\`openssl rand -hex 32\`)`,
    parse(raw, refuse) {
      if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(raw))
        refuse('may contain only letters, digits and - . _ ~ + / (it is sent as a bearer token)')
      if (raw.length < minLength)
        refuse(
          `must be at least ${minLength} characters (got ${raw.length}); generate one with: openssl rand -hex 32`,
        )
      return raw
    },
  }
}

/** A signing secret: taken as written, long enough, and never repeated in errors. */
export function signingSecret(minBytes: number): Reader<string> {
  return {
    accepts: `≥ ${minBytes} bytes, as written (\`openssl rand -base64 48\`)`,
    untrimmed: true,
    parse(raw, refuse) {
      const bytes = Buffer.byteLength(raw)
      if (bytes < minBytes)
        refuse(
          `must be at least ${minBytes} bytes (got ${bytes}); generate one with: openssl rand -base64 48`,
        )
      return raw
    },
  }
}

/**
 * A raw key of `bytes` bytes, base64 or base64url. The alphabet is checked first because
 * Buffer.from skips what it cannot read: "my secret passphrase" would otherwise decode to some
 * bytes. Never repeated in errors; `which` names an entry of a list.
 */
function decodeKey(raw: string, bytes: number, refuse: Refuse, which = ''): Uint8Array {
  const hint = `generate one with: openssl rand -base64 ${bytes}`
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) refuse(`${which}is not base64 or base64url; ${hint}`)
  const key = Buffer.from(raw, 'base64')
  if (key.length !== bytes) refuse(`${which}must be ${bytes} bytes, got ${key.length}; ${hint}`)
  return key
}

/** An encryption key: exactly `bytes` random bytes, base64 or base64url encoded. */
export function encryptionKey(bytes: number): Reader<Uint8Array> {
  return {
    accepts: `${bytes} bytes, base64 or base64url (\`openssl rand -base64 ${bytes}\`)`,
    parse: (raw, refuse) => decodeKey(raw, bytes, refuse),
  }
}

/** Encryption keys, comma-separated; an error names the entry by its position, never by its value. */
export function encryptionKeys(bytes: number): Reader<Uint8Array[]> {
  return {
    accepts: `keys of ${bytes} bytes, base64 or base64url, comma-separated`,
    parse: (raw, refuse) =>
      raw
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean)
        .map((entry, index) => decodeKey(entry, bytes, refuse, `key ${index + 1} `)),
  }
}

export const emailAddress: Reader<string> = {
  accepts: 'email address',
  parse(raw, refuse) {
    if (!/^[^\s@]+@[^\s@]+$/.test(raw)) refuse(`"${raw}" is not an email address`)
    return raw
  },
}

/** Browser origins, comma-separated; "*" is refused: the allowed origins are named. */
export const origins: Reader<string[]> = {
  accepts: 'origins like `https://app.example.com`, comma-separated',
  parse(raw, refuse) {
    const list = raw
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean)
    for (const origin of list) {
      if (origin === '*') refuse('list the allowed origins; "*" is not accepted')
      if (!/^https?:\/\/[^/]+$/.test(origin))
        refuse(`"${origin}" is not an origin like https://app.example.com`)
    }
    return list
  },
}

/**
 * Which proxies' X-Forwarded-For to believe. "true" (every proxy) is refused: anyone could then
 * choose the client address that rate limits count.
 */
export const trustedProxies: Reader<boolean | string[] | number> = {
  accepts: '`false`, a hop count, or addresses and CIDR ranges, comma-separated',
  parse(raw, refuse) {
    if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false
    if (raw.toLowerCase() === 'true')
      refuse('name the proxies to trust (addresses or CIDR ranges, comma-separated) or a hop count')
    if (/^\d+$/.test(raw)) return Number(raw)
    const entries = raw.split(',').map((part) => part.trim())
    for (const entry of entries) {
      if (
        !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(entry) &&
        !['loopback', 'linklocal', 'uniquelocal'].includes(entry)
      )
        refuse(`"${entry}" is not an IP address, CIDR range, or loopback/linklocal/uniquelocal`)
    }
    return entries
  },
}
