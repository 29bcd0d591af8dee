import type { CryptoKey } from 'jose'
import { JWT_ALGORITHMS, type JwtAlgorithm } from '../config.js'
import {
  generateKeyMaterial,
  importKeyMaterial,
  isSymmetric,
  privateKeyOf,
  publicKeyOf,
  type AsymmetricAlgorithm,
  type KeyMaterial,
  type PublicJwk,
} from '../auth/signing-keys.js'
import { ISSUED_AT_LEEWAY_SECONDS } from '../auth/tokens.js'
import { DataDecryptionError } from '../auth/data-encryption.js'
import { isDeadlock } from '../db/errors.js'
import type { SigningKeyRow } from '../repositories/signing-keys.js'
import { conflict } from './errors.js'
import {
  currentKey,
  isRetired,
  isWaiting,
  nextGeneration,
  rotationDue,
  viewOf,
  type SigningKeyView,
} from './key-states.js'
import {
  KEY_RELOAD_SECONDS,
  PUBLISH_AHEAD_SECONDS,
  UNKNOWN_KID_RELOAD_SECONDS,
  UnknownSigningKey,
  type SignerKey,
  type SigningKeyDependencies,
  type SigningKeys,
} from './signing-keys.js'

/** A stored key, with its public (and, once it signs, private) key imported. */
interface LoadedKey {
  row: SigningKeyRow
  publicJwk: PublicJwk
  publicKey: CryptoKey
  privateKey?: Promise<CryptoKey>
}

const privateContext = (kid: string) => `signing-key:${kid}`

const ASYMMETRIC_ALGORITHMS: readonly string[] = JWT_ALGORITHMS.filter((algorithm) => !isSymmetric(algorithm))

/**
 * The stored keys of an asymmetric JWT_ALGORITHM, as one instance holds them: read from the
 * database at start, again every KEY_RELOAD_SECONDS (in the background: a token is never kept
 * waiting for it) and when a token names a key not read yet (at most once per
 * UNKNOWN_KID_RELOAD_SECONDS). When a re-read fails, the keys already read stay in use.
 */
export class StoredSigningKeys implements SigningKeys {
  readonly source = 'database'
  // Stryker disable next-line ArrayDeclaration: start() reads the keys before anything uses them.
  private keys: LoadedKey[] = []
  private readonly imported = new Map<string, LoadedKey>()
  private loadedAt = Number.NEGATIVE_INFINITY
  private unknownReadAt = Number.NEGATIVE_INFINITY
  private reading: Promise<void> | undefined

  constructor(
    private readonly deps: SigningKeyDependencies,
    private readonly configured: AsymmetricAlgorithm,
  ) {}

  private now() {
    return this.deps.clock.now()
  }

  /** First start, a new key file or a new JWT_ALGORITHM: a key that signs from now on. */
  async start(): Promise<void> {
    const rows = await this.read()
    const now = this.now()
    const files = this.deps.keyFiles
    const fromFiles = files
      ? await importKeyMaterial(this.configured, files.privatePem, files.publicPem)
      : undefined
    const stored = fromFiles && rows.find((row) => row.kid === fromFiles.kid)
    if (stored && stored.algorithm !== this.configured)
      throw new Error(
        `The key of JWT_PRIVATE_KEY_FILE is stored for ${stored.algorithm}, not for JWT_ALGORITHM=${this.configured}: a key signs with one algorithm; make a new key pair for ${this.configured}`,
      )
    const current = currentKey(this.keys, now)?.row
    const awaited = rows.some((row) => isWaiting(row, now) && row.algorithm === this.configured)
    // No waiting here: the operator changed the configuration, and the instances still on the old
    // one find the new key through its unknown `kid`. The key it replaces verifies on.
    if ((fromFiles && !stored) || !current || (current.algorithm !== this.configured && !awaited)) {
      const material = fromFiles && !stored ? fromFiles : await generateKeyMaterial(this.configured)
      await this.add(material, new Date(now))
      await this.read()
    }
    await this.rotateWhenDue(await this.deps.repos.signingKeys.list())
    // The current key must be usable now, not at the first login.
    await this.signer().catch((error: unknown) => {
      if (!(error instanceof DataDecryptionError)) throw error
      throw new Error(
        'The signing key in the database cannot be decrypted: SECRET_KEY or DATA_ENCRYPTION_KEY changed since it was made. Restore the key it was made under, or list it in DATA_ENCRYPTION_PREVIOUS_KEYS (docs/security.md, "Secrets encrypted at rest")',
      )
    })
  }

  async signer(): Promise<SignerKey> {
    // Never waits for the database: a token is signed inside the login's transaction, and on
    // SQLite (one connection) a read here would wait for that transaction forever.
    this.keepFresh()
    const current = currentKey(this.keys, this.now())
    if (!current) throw new Error('No signing key is current: see `npm run cli -- keys list`')
    const { kid, algorithm, private_key: sealed } = current.row
    current.privateKey ??= privateKeyOf(
      algorithm as AsymmetricAlgorithm,
      this.deps.encryption.decrypt(sealed!, privateContext(kid)),
    )
    return { kid, algorithm: algorithm as JwtAlgorithm, key: await current.privateKey }
  }

  async verifier(kid: string | undefined, algorithm: string | undefined): Promise<CryptoKey> {
    this.keepFresh()
    let key = this.verifying(kid)
    if (!key && kid !== undefined && this.now() - this.unknownReadAt >= UNKNOWN_KID_RELOAD_SECONDS * 1000) {
      this.unknownReadAt = this.now()
      await this.reread()
      key = this.verifying(kid)
    }
    if (!key || key.row.algorithm !== algorithm)
      throw new UnknownSigningKey(`no key "${kid}" for ${algorithm}`)
    return key.publicKey
  }

  async publicKeys(): Promise<PublicJwk[]> {
    this.keepFresh()
    const now = this.now()
    return this.keys.filter((key) => !isRetired(key.row, now)).map((key) => key.publicJwk)
  }

  acceptedAlgorithms(): readonly string[] {
    return ASYMMETRIC_ALGORITHMS
  }

  publishedAlgorithms(): readonly string[] {
    return [...new Set(this.keys.map((key) => key.row.algorithm))]
  }

  async list(): Promise<SigningKeyView[]> {
    const rows = await this.deps.repos.signingKeys.list()
    return rows.map((row) => viewOf(row, rows, this.now()))
  }

  async rotate(): Promise<SigningKeyView> {
    const rows = await this.read()
    const now = this.now()
    const waiting = rows.find((row) => isWaiting(row, now))
    if (waiting)
      throw conflict(
        `Key ${waiting.kid} already waits to sign from ${waiting.activates_at.toISOString()}: rotate again after that`,
      )
    const material = await generateKeyMaterial(this.configured)
    const added = await this.add(material, new Date(now + PUBLISH_AHEAD_SECONDS * 1000))
    const after = await this.read()
    if (!added) throw conflict('Another instance rotated the keys at the same moment: see `keys list`')
    return viewOf(
      after.find((row) => row.kid === material.kid)!,
      after,
      now,
    )
  }

  private verifying(kid: string | undefined) {
    const now = this.now()
    return this.keys.find((key) => key.row.kid === kid && !isRetired(key.row, now))
  }

  /**
   * Stores a key that signs from `activatesAt`. Every key it replaces (the current one, and one
   * still waiting if the configuration changed meanwhile) verifies until the last token signed
   * before `activatesAt` expires. False when another instance took that generation first.
   */
  private async add(material: KeyMaterial, activatesAt: Date): Promise<boolean> {
    const { transaction, encryption, clock, config } = this.deps
    // Of two instances adding a key at once, InnoDB may end one transaction to break the
    // deadlock of the insert and the retirement: that one lost the race.
    return transaction(async (repos) => {
      const rows = await repos.signingKeys.list()
      const added = await repos.signingKeys.insert({
        kid: material.kid,
        generation: nextGeneration(rows),
        algorithm: material.algorithm,
        public_jwk: JSON.stringify(material.publicJwk),
        private_key: encryption.encrypt(material.privatePem, privateContext(material.kid)),
        // Published no later than it signs (a key that signs at once was read from the clock first).
        created_at: new Date(Math.min(clock.now(), activatesAt.getTime())),
        activates_at: activatesAt,
      })
      if (added)
        await repos.signingKeys.retireAllBut(
          material.kid,
          new Date(
            activatesAt.getTime() +
              config.accessTokenExpireMinutes * 60_000 +
              ISSUED_AT_LEEWAY_SECONDS * 1000,
          ),
        )
      return added
    }).catch((error: unknown) => {
      if (isDeadlock(error)) return false
      throw error
    })
  }

  /** JWT_KEY_ROTATION_DAYS: the next key, once the current one has signed that long. */
  private async rotateWhenDue(rows: SigningKeyRow[]) {
    const now = this.now()
    if (!rotationDue(rows, now, this.deps.config.jwtKeyRotationDays * 86_400_000)) return
    const material = await generateKeyMaterial(this.configured)
    if (await this.add(material, new Date(now + PUBLISH_AHEAD_SECONDS * 1000))) await this.read()
  }

  /** Reads the keys: those not retired are loaded (new ones imported); retired ones lose their private part. */
  private async read(): Promise<SigningKeyRow[]> {
    const now = this.now()
    const rows = await this.deps.repos.signingKeys.list()
    this.keys = await Promise.all(rows.filter((row) => !isRetired(row, now)).map((row) => this.load(row)))
    for (const kid of this.imported.keys())
      // Stryker disable next-line ConditionalExpression: keeps the map from growing with retired keys; nothing reads a retired key's entry, so only memory would tell.
      if (!this.keys.some((key) => key.row.kid === kid)) this.imported.delete(kid)
    this.loadedAt = now
    await this.deps.repos.signingKeys.erasePrivateKeysRetiredBy(new Date(now))
    return rows
  }

  private async load(row: SigningKeyRow): Promise<LoadedKey> {
    const known = this.imported.get(row.kid)
    if (known) {
      known.row = row
      return known
    }
    const publicJwk = JSON.parse(row.public_jwk) as PublicJwk
    const key: LoadedKey = { row, publicJwk, publicKey: await publicKeyOf(publicJwk) }
    this.imported.set(row.kid, key)
    return key
  }

  /** One re-read at a time; callers arriving during one share it. */
  private reread(): Promise<void> {
    this.reading ??= (async () => {
      try {
        await this.rotateWhenDue(await this.read())
      } finally {
        this.reading = undefined
      }
    })()
    return this.reading
  }

  /** Starts a re-read in the background once the keys are KEY_RELOAD_SECONDS old. */
  private isStale() {
    return this.now() - this.loadedAt >= KEY_RELOAD_SECONDS * 1000
  }

  private keepFresh(): void {
    if (!this.isStale()) return
    this.loadedAt = this.now()
    this.reread().catch((error: unknown) => this.deps.onReloadError?.(error))
  }
}
