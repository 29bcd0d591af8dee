import { existsSync } from 'node:fs'
import { developmentSecret } from '../development-secret.js'
import { type Context, variable } from '../declare.js'
import { JWT_ALGORITHMS } from '../fields.js'
import { encryptionKey, encryptionKeys, integer, oneOf, signingSecret, text } from '../readers.js'
import { DATA_DIR } from './data.js'
import { NODE_ENV } from './server.js'

export const SECRET_KEY = variable({
  name: 'SECRET_KEY',
  type: signingSecret(32),
  default: ({ get, refuse, options }) => {
    if (get(NODE_ENV) === 'production')
      refuse('is required when NODE_ENV=production (at least 32 bytes; e.g. openssl rand -base64 48)')
    return developmentSecret(get(DATA_DIR), refuse, options.onGeneratedSecret)
  },
  documentedDefault: 'generated in development; **required** in production',
  fills: 'secretKey',
  description: 'the signing secret of the HS algorithms (a generated one is kept in `DATA_DIR/secret_key`)',
})

/** AES-256: keys of 32 bytes (src/auth/data-encryption.ts). */
const DATA_ENCRYPTION_KEY_BYTES = 32

export const DATA_ENCRYPTION_KEY = variable({
  name: 'DATA_ENCRYPTION_KEY',
  type: encryptionKey(DATA_ENCRYPTION_KEY_BYTES),
  // Unset stays unset: src/auth/data-encryption.ts derives the key (configuration depends on nothing).
  default: () => undefined,
  documentedDefault: 'a key derived from `SECRET_KEY`',
  fills: 'dataEncryptionKey',
  description:
    'encrypts the secrets stored in the database (TOTP secrets); how to rotate it: docs/security.md, "Secrets encrypted at rest"',
})

export const DATA_ENCRYPTION_PREVIOUS_KEYS = variable({
  name: 'DATA_ENCRYPTION_PREVIOUS_KEYS',
  type: encryptionKeys(DATA_ENCRYPTION_KEY_BYTES),
  default: [],
  fills: 'dataEncryptionPreviousKeys',
  description: 'keys rotated out of `DATA_ENCRYPTION_KEY`: they still decrypt, never encrypt',
})

export const JWT_ALGORITHM = variable({
  name: 'JWT_ALGORITHM',
  type: oneOf(JWT_ALGORITHMS),
  default: 'HS256',
  fills: 'jwtAlgorithm',
  description:
    'how tokens are signed: the HS algorithms with `SECRET_KEY`; the others with keys kept in the database and published at `/.well-known/jwks.json` (README, "Signing keys")',
})

/**
 * Key files are optional (without them the server makes its first key itself), but only for an
 * asymmetric algorithm: files that would be ignored are a configuration mistake.
 */
function keyFileCheck(file: string | undefined, { get, refuse }: Context): void {
  if (file === undefined) return
  const algorithm = get(JWT_ALGORITHM)
  if (algorithm.startsWith('HS'))
    return refuse(`is for the asymmetric algorithms; JWT_ALGORITHM=${algorithm} signs with SECRET_KEY`)
  if (!existsSync(file)) refuse(`file "${file}" does not exist`)
}

export const JWT_PRIVATE_KEY_FILE = variable({
  name: 'JWT_PRIVATE_KEY_FILE',
  type: text('file'),
  default: undefined,
  check: keyFileCheck,
  fills: 'jwtPrivateKeyFile',
  description:
    'a private key, PEM (PKCS#8), imported as the signing key of an asymmetric `JWT_ALGORITHM` (without it the server makes its own)',
})

export const JWT_PUBLIC_KEY_FILE = variable({
  name: 'JWT_PUBLIC_KEY_FILE',
  type: text('file'),
  default: undefined,
  check: (file, context) => {
    // The two files come as a pair.
    const privateFile = context.get(JWT_PRIVATE_KEY_FILE)
    if (file === undefined && privateFile !== undefined)
      context.refuse('is required with JWT_PRIVATE_KEY_FILE')
    if (file !== undefined && privateFile === undefined)
      context.refuse('needs JWT_PRIVATE_KEY_FILE too (the key files come as a pair)')
    keyFileCheck(file, context)
  },
  fills: 'jwtPublicKeyFile',
  description: 'the public key, PEM (SPKI), of `JWT_PRIVATE_KEY_FILE`',
})

export const JWT_KEY_ROTATION_DAYS = variable({
  name: 'JWT_KEY_ROTATION_DAYS',
  type: integer(0, 3650),
  default: 0,
  fills: 'jwtKeyRotationDays',
  description:
    'with an asymmetric algorithm, make the next signing key once the current one has signed this many days (0: only `npm run cli -- keys rotate`)',
})

export const JWT_ISSUER = variable({
  name: 'JWT_ISSUER',
  type: text(),
  default: 'fastauth-api',
  fills: 'jwtIssuer',
  description: 'the `iss` claim issued and required',
})

export const JWT_AUDIENCE = variable({
  name: 'JWT_AUDIENCE',
  type: text(),
  default: 'fastauth-api',
  fills: 'jwtAudience',
  description: 'the `aud` claim issued and required',
})

export const ACCESS_TOKEN_EXPIRE_MINUTES = variable({
  name: 'ACCESS_TOKEN_EXPIRE_MINUTES',
  type: integer(1, 24 * 60),
  default: 15,
  fills: 'accessTokenExpireMinutes',
  description: 'access token lifetime',
})

export const REFRESH_TOKEN_EXPIRE_DAYS = variable({
  name: 'REFRESH_TOKEN_EXPIRE_DAYS',
  type: integer(1, 365),
  default: 14,
  fills: 'refreshTokenExpireDays',
  description: 'refresh token lifetime',
})

export const SESSION_MAX_LIFETIME_DAYS = variable({
  name: 'SESSION_MAX_LIFETIME_DAYS',
  type: integer(1, 3650),
  default: 30,
  fills: 'sessionMaxLifetimeDays',
  description: 'a session ends this long after its login, however often it is refreshed',
})

export const TOKEN_VARIABLES = [
  SECRET_KEY,
  DATA_ENCRYPTION_KEY,
  DATA_ENCRYPTION_PREVIOUS_KEYS,
  JWT_ALGORITHM,
  JWT_PRIVATE_KEY_FILE,
  JWT_PUBLIC_KEY_FILE,
  JWT_KEY_ROTATION_DAYS,
  JWT_ISSUER,
  JWT_AUDIENCE,
  ACCESS_TOKEN_EXPIRE_MINUTES,
  REFRESH_TOKEN_EXPIRE_DAYS,
  SESSION_MAX_LIFETIME_DAYS,
]
