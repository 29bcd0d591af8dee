/**
 * A software WebAuthn authenticator and the browser around it, for tests in Node: it answers the
 * options our server sends as `navigator.credentials.create()` / `.get()` would, and hands back
 * exactly the JSON @simplewebauthn/browser's startRegistration / startAuthentication post
 * (RegistrationResponseJSON, AuthenticationResponseJSON).
 *
 * The authenticator keeps discoverable credentials (key pair, user handle, signature counter),
 * attests with format 'none' (what a browser sends when the server asks for attestation 'none')
 * and signs assertions with node:crypto. The browser's side applies the rules a real browser
 * applies before any authenticator is asked: a secure-context origin, an RP ID that is a domain
 * and the origin's host or a parent of it, and excludeCredentials. The overrides break those
 * rules on purpose: they play a hostile or broken client, for the server's refusals to be tested.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { cose, isoCBOR } from '@simplewebauthn/server/helpers'

export type SoftwareKeyAlgorithm = 'ES256' | 'EdDSA'

export interface SoftwareAuthenticatorOptions {
  /** The page's origin, as the browser reports it in clientDataJSON: `https://example.com`, `http://localhost:8000`. */
  origin: string
  /** Whether it verifies its user (PIN, biometrics): the UV flag of every answer. Default true. */
  userVerification?: boolean
  /** The key type of its credentials; the RP must list it in pubKeyCredParams. Default ES256. */
  algorithm?: SoftwareKeyAlgorithm
  /**
   * A synced passkey (iCloud Keychain, Google Password Manager): flags BE and BS set, and a
   * signature counter that stays 0, as those providers report. Default false: a device-bound
   * credential (a security key) whose counter counts each assertion.
   */
  synced?: boolean
}

/** What a test may change in one answer, to play a client that lies or is broken. */
export interface CeremonyOverrides {
  /** clientDataJSON.origin, instead of the authenticator's origin. Skips the browser's checks. */
  origin?: string
  /** The RP ID hashed into authenticator data, instead of the options'. Skips the browser's checks. */
  rpId?: string
  /** The UV flag, instead of the authenticator's capability. */
  userVerified?: boolean
  /** The UP flag (default set): a clear flag is what a silent, unattended answer would carry. */
  userPresent?: boolean
  /** clientDataJSON.challenge, instead of the options'. */
  challenge?: string
  /**
   * The attestation format of a registration (default 'none'): 'packed' is a self attestation
   * (WebAuthn § 8.2.1), signed with the new credential's own key, which a client may pass on although
   * the options ask for 'none'.
   */
  attestation?: 'none' | 'packed'
}

export interface AssertionOverrides extends CeremonyOverrides {
  /** The signature counter of this one assertion; the authenticator's own counter is left as it was. */
  counter?: number
  /** Which stored credential answers (the passkey the user picks); default the first allowed. */
  credentialId?: string
  /** The credential id written into the response (id, rawId), whatever credential signed. */
  responseId?: string
}

export interface SoftwareCredential {
  /** base64url, as the server stores it. */
  id: string
  /** The user.id of the creation options (base64url), returned as userHandle by every assertion. */
  userHandle: string
  rpId: string
  /** The authenticator's signature counter: the value of the last assertion. */
  counter: number
}

export interface SoftwareAuthenticator {
  /**
   * Answers creation options like navigator.credentials.create: picks the first algorithm of
   * pubKeyCredParams it has, refuses (InvalidStateError) when it holds a credential listed in
   * excludeCredentials, stores the new credential, and attests it with format 'none'.
   */
  register(
    options: PublicKeyCredentialCreationOptionsJSON,
    overrides?: CeremonyOverrides,
  ): Promise<RegistrationResponseJSON>
  /**
   * Answers request options like navigator.credentials.get: the credential named by
   * `overrides.credentialId`, else the first stored one allowCredentials lists, else (a
   * discoverable request: no allowCredentials) the first one of the RP. NotAllowedError when none.
   */
  authenticate(
    options: PublicKeyCredentialRequestOptionsJSON,
    overrides?: AssertionOverrides,
  ): Promise<AuthenticationResponseJSON>
  /** Its credentials, in the order they were created (copies: changing them changes nothing). */
  readonly credentials: readonly SoftwareCredential[]
}

/** A value CBOR can encode, as the library's isoCBOR takes it. */
type CBORValue = Parameters<typeof isoCBOR.encode>[0]

interface HeldCredential extends SoftwareCredential {
  privateKey: KeyObject
  algorithm: SoftwareKeyAlgorithm
}

/** WebAuthn § 6.1 flags of authenticator data. */
const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const
/** A software authenticator has no model to attest: AAGUID all zeros, as 'none' attestation sends anyway. */
const ZERO_AAGUID = new Uint8Array(16)
const CREDENTIAL_ID_BYTES = 16
const COSE_ALGORITHM: Record<SoftwareKeyAlgorithm, number> = {
  ES256: cose.COSEALG.ES256,
  EdDSA: cose.COSEALG.EdDSA,
}

/** A new authenticator, holding no credential, in a browser showing a page at `options.origin`. */
export function createSoftwareAuthenticator(options: SoftwareAuthenticatorOptions): SoftwareAuthenticator {
  const settings = {
    origin: options.origin,
    userVerification: options.userVerification ?? true,
    algorithm: options.algorithm ?? 'ES256',
    synced: options.synced ?? false,
  }
  const held: HeldCredential[] = []
  return {
    async register(creation, overrides = {}) {
      return register(settings, held, creation, overrides)
    },
    async authenticate(request, overrides = {}) {
      return authenticate(settings, held, request, overrides)
    },
    get credentials() {
      return held.map(({ id, userHandle, rpId, counter }) => ({ id, userHandle, rpId, counter }))
    },
  }
}

type Settings = Required<SoftwareAuthenticatorOptions>

function register(
  settings: Settings,
  held: HeldCredential[],
  creation: PublicKeyCredentialCreationOptionsJSON,
  overrides: CeremonyOverrides,
): RegistrationResponseJSON {
  const rpId = creation.rp.id ?? new URL(settings.origin).hostname
  if (overrides.origin === undefined && overrides.rpId === undefined) checkLikeABrowser(settings.origin, rpId)
  const offered = creation.pubKeyCredParams.map((parameter) => parameter.alg)
  if (!offered.includes(COSE_ALGORITHM[settings.algorithm]))
    throw domException('NotSupportedError', `the RP does not accept ${settings.algorithm}`)
  const excluded = new Set((creation.excludeCredentials ?? []).map((descriptor) => descriptor.id))
  if (held.some((credential) => credential.rpId === rpId && excluded.has(credential.id)))
    throw domException('InvalidStateError', 'this authenticator already holds a credential of the account')

  const { privateKey, publicKey } = newKeyPair(settings.algorithm)
  const idBytes = randomBytes(CREDENTIAL_ID_BYTES)
  const credential: HeldCredential = {
    id: idBytes.toString('base64url'),
    userHandle: creation.user.id,
    rpId,
    counter: 0,
    privateKey,
    algorithm: settings.algorithm,
  }
  // A discoverable credential is one per account and RP: a new one replaces the account's old one.
  const replaced = held.findIndex((old) => old.rpId === rpId && old.userHandle === credential.userHandle)
  if (replaced !== -1) held.splice(replaced, 1)
  held.push(credential)

  const clientDataJSON = clientData(
    'webauthn.create',
    overrides.challenge ?? creation.challenge,
    overrides,
    settings,
  )
  const authData = concat(
    authenticatorDataHead(overrides.rpId ?? rpId, flagsOf(settings, overrides) | FLAG.AT, 0),
    ZERO_AAGUID,
    uint16(idBytes.length),
    idBytes,
    isoCBOR.encode(coseKeyOf(publicKey, settings.algorithm)),
  )
  const attestationObject = isoCBOR.encode(
    new Map<string, CBORValue>([
      ['fmt', overrides.attestation ?? 'none'],
      ['attStmt', attestationStatement(credential, authData, clientDataJSON, overrides.attestation)],
      ['authData', authData],
    ]),
  )
  return {
    id: credential.id,
    rawId: credential.id,
    response: {
      clientDataJSON: base64url(clientDataJSON),
      attestationObject: base64url(attestationObject),
      authenticatorData: base64url(authData),
      transports: transportsOf(settings),
      publicKeyAlgorithm: COSE_ALGORITHM[settings.algorithm],
      publicKey: base64url(publicKey.export({ format: 'der', type: 'spki' })),
    },
    type: 'public-key',
    clientExtensionResults: creation.extensions?.credProps ? { credProps: { rk: true } } : {},
    authenticatorAttachment: 'platform',
  }
}

function authenticate(
  settings: Settings,
  held: HeldCredential[],
  request: PublicKeyCredentialRequestOptionsJSON,
  overrides: AssertionOverrides,
): AuthenticationResponseJSON {
  const rpId = request.rpId ?? new URL(settings.origin).hostname
  if (overrides.origin === undefined && overrides.rpId === undefined) checkLikeABrowser(settings.origin, rpId)
  const credential = pickCredential(held, rpId, request, overrides.credentialId)

  const counter = overrides.counter ?? (settings.synced ? 0 : credential.counter + 1)
  if (overrides.counter === undefined) credential.counter = counter
  const clientDataJSON = clientData(
    'webauthn.get',
    overrides.challenge ?? request.challenge,
    overrides,
    settings,
  )
  const authData = authenticatorDataHead(overrides.rpId ?? rpId, flagsOf(settings, overrides), counter)
  const signature = signatureOf(credential, authData, clientDataJSON)
  const id = overrides.responseId ?? credential.id
  return {
    id,
    rawId: id,
    response: {
      clientDataJSON: base64url(clientDataJSON),
      authenticatorData: base64url(authData),
      signature: base64url(signature),
      userHandle: credential.userHandle,
    },
    type: 'public-key',
    clientExtensionResults: {},
    authenticatorAttachment: 'platform',
  }
}

/** WebAuthn § 6.3.3: the signature of authenticator data and the hash of the client data, by the credential's key. */
function signatureOf(credential: HeldCredential, authData: Buffer, clientDataJSON: Buffer): Buffer {
  const signedData = concat(authData, createHash('sha256').update(clientDataJSON).digest())
  return sign(credential.algorithm === 'ES256' ? 'sha256' : null, signedData, credential.privateKey)
}

/** attStmt: empty for 'none'; for 'packed' self attestation (§ 8.2), the key's algorithm and its signature. */
function attestationStatement(
  credential: HeldCredential,
  authData: Buffer,
  clientDataJSON: Buffer,
  format: CeremonyOverrides['attestation'],
): Map<string, CBORValue> {
  if (format !== 'packed') return new Map()
  return new Map<string, CBORValue>([
    ['alg', COSE_ALGORITHM[credential.algorithm]],
    ['sig', new Uint8Array(signatureOf(credential, authData, clientDataJSON))],
  ])
}

/** The one the user picks (`chosen`), else the first the request allows; any of the RP's when it allows none. */
function pickCredential(
  held: HeldCredential[],
  rpId: string,
  request: PublicKeyCredentialRequestOptionsJSON,
  chosen: string | undefined,
): HeldCredential {
  const allowed = request.allowCredentials?.map((descriptor) => descriptor.id) ?? []
  const fits = (credential: HeldCredential) =>
    chosen !== undefined ? credential.id === chosen : allowed.length === 0 || allowed.includes(credential.id)
  const credential = held.find((candidate) => candidate.rpId === rpId && fits(candidate))
  if (credential === undefined)
    throw domException('NotAllowedError', 'no credential of this authenticator fits')
  return credential
}

/**
 * What a browser refuses before it asks any authenticator (WebAuthn § 5.1.3 steps 7–8): a page
 * that is not a secure context (https, or http on localhost or a loopback address), an RP ID that
 * is an IP address, or one that is neither the origin's host nor a parent domain of it.
 */
function checkLikeABrowser(origin: string, rpId: string): void {
  const url = new URL(origin)
  const host = url.hostname
  const local =
    host === 'localhost' || host.endsWith('.localhost') || host === '127.0.0.1' || host === '[::1]'
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local))
    throw domException('SecurityError', `${origin} is not a secure context`)
  if (isIP(rpId.replace(/^\[|\]$/g, '')) !== 0)
    throw domException('SecurityError', 'an RP ID cannot be an IP address')
  if (host !== rpId && !host.endsWith(`.${rpId}`))
    throw domException('SecurityError', `${rpId} is not ${host} or a parent domain of it`)
}

function clientData(
  type: string,
  challenge: string,
  overrides: CeremonyOverrides,
  settings: Settings,
): Buffer {
  // The members in the order browsers write them; servers hash these exact bytes.
  const data = { type, challenge, origin: overrides.origin ?? settings.origin, crossOrigin: false }
  return Buffer.from(JSON.stringify(data), 'utf8')
}

function flagsOf(settings: Settings, overrides: CeremonyOverrides): number {
  let flags = 0
  if (overrides.userPresent ?? true) flags |= FLAG.UP
  if (overrides.userVerified ?? settings.userVerification) flags |= FLAG.UV
  if (settings.synced) flags |= FLAG.BE | FLAG.BS
  return flags
}

/** rpIdHash (32 bytes), flags (1), signCount (4, big-endian): the 37 bytes every authenticator data starts with. */
function authenticatorDataHead(rpId: string, flags: number, counter: number): Buffer {
  const head = Buffer.alloc(37)
  createHash('sha256').update(rpId, 'utf8').digest().copy(head, 0)
  head.writeUInt8(flags, 32)
  head.writeUInt32BE(counter, 33)
  return head
}

function newKeyPair(algorithm: SoftwareKeyAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  return algorithm === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('ed25519')
}

/** The credential public key as COSE_Key (RFC 9053): EC2 P-256 with x and y, or OKP Ed25519 with x. */
function coseKeyOf(publicKey: KeyObject, algorithm: SoftwareKeyAlgorithm): Map<number, CBORValue> {
  const jwk = publicKey.export({ format: 'jwk' })
  const coordinate = (value: string | undefined) => new Uint8Array(Buffer.from(value ?? '', 'base64url'))
  if (algorithm === 'EdDSA')
    return new Map<number, CBORValue>([
      [cose.COSEKEYS.kty, cose.COSEKTY.OKP],
      [cose.COSEKEYS.alg, cose.COSEALG.EdDSA],
      [cose.COSEKEYS.crv, cose.COSECRV.ED25519],
      [cose.COSEKEYS.x, coordinate(jwk.x)],
    ])
  return new Map<number, CBORValue>([
    [cose.COSEKEYS.kty, cose.COSEKTY.EC2],
    [cose.COSEKEYS.alg, cose.COSEALG.ES256],
    [cose.COSEKEYS.crv, cose.COSECRV.P256],
    [cose.COSEKEYS.x, coordinate(jwk.x)],
    [cose.COSEKEYS.y, coordinate(jwk.y)],
  ])
}

function transportsOf(settings: Settings): AuthenticatorTransportFuture[] {
  return settings.synced ? ['hybrid', 'internal'] : ['internal']
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2)
  bytes.writeUInt16BE(value)
  return bytes
}

const concat = (...parts: Uint8Array[]) => Buffer.concat(parts)
const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

/** The errors a browser rejects navigator.credentials with, by name. */
function domException(name: string, message: string): DOMException {
  return new DOMException(message, name)
}
