import { randomBytes } from 'node:crypto'
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'
import type * as WebAuthnServer from '@simplewebauthn/server'
import type { isoCBOR } from '@simplewebauthn/server/helpers'

export type { AuthenticationResponseJSON, RegistrationResponseJSON }
export type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON }

/**
 * Passkeys (WebAuthn): the options a browser's navigator.credentials.create/get takes, and the
 * verification of what it answers. All parsing and cryptography is @simplewebauthn/server's; this
 * module fixes our policy (discoverable credentials, user verification, attestation 'none', three
 * algorithms), checks what the library reads leniently, and turns every one of its errors into a
 * reason and a sentence a client may see. The verify functions never throw.
 *
 * A challenge is ours from newChallenge() to the answer: the options carry it byte for byte, so
 * the challenge claimedChallengeOf() reads from an answer is the very string the server stored.
 */

let loaded: Promise<typeof WebAuthnServer & { isoCBOR: typeof isoCBOR }> | undefined
/** @simplewebauthn/server, loaded once, at the first ceremony: ~15 MB that a server whose users never use a passkey need not carry. */
const webauthnLibrary = () =>
  (loaded ??= Promise.all([import('@simplewebauthn/server'), import('@simplewebauthn/server/helpers')]).then(
    ([server, helpers]) => ({ ...server, isoCBOR: helpers.isoCBOR }),
  ))

/** Who we are to authenticators: WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS (full origins like https://example.com or http://localhost:8000), and a display name. */
export interface RelyingParty {
  id: string
  name: string
  origins: readonly string[]
}

/** A registered credential as the server stores it. */
export interface StoredCredential {
  /** base64url, unpadded. */
  credentialId: string
  /** COSE_Key. */
  publicKey: Uint8Array
  counter: number
  transports: AuthenticatorTransportFuture[]
}

/** How long a challenge lives (also the options' timeout): 5 minutes. */
export const WEBAUTHN_CHALLENGE_LIFETIME_SECONDS = 300

export type WebAuthnRefusal =
  | 'malformed'
  | 'challenge'
  | 'origin'
  | 'rp_id'
  | 'user_verification'
  | 'user_presence'
  | 'signature'
  | 'counter'
  | 'credential'

/** Why an answer was refused, and a sentence a client may be shown. */
export type Refusal = { ok: false; reason: WebAuthnRefusal; message: string }

export type RegistrationResult =
  | {
      ok: true
      credential: StoredCredential
      backedUp: boolean
      deviceType: 'singleDevice' | 'multiDevice'
      aaguid: string
    }
  | Refusal

export type AuthenticationResult = { ok: true; newCounter: number; userVerified: boolean } | Refusal

/** 256 bits, the size of the hash it is stored as; 43 base64url characters. */
const CHALLENGE_BYTES = 32
const CHALLENGE_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** EdDSA, ES256 (every passkey provider), RS256 (Windows Hello): the library's default list. */
const ALGORITHMS = [-8, -7, -257]
const TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] as const

/**
 * The most base64url characters each field of an answer may have, beyond which it is refused
 * unread: a credential id is at most 1023 bytes (WebAuthn § 5.8.3), a user handle 64; the others
 * are far above what authenticators send (an attestation with a certificate chain is a few kB).
 */
const MAX_ID_CHARS = 1364
const MAX_USER_HANDLE_CHARS = 86
const MAX_CLIENT_DATA_CHARS = 16_384
const REGISTRATION_FIELDS = { clientDataJSON: MAX_CLIENT_DATA_CHARS, attestationObject: 65_536 }
const AUTHENTICATION_FIELDS = {
  clientDataJSON: MAX_CLIENT_DATA_CHARS,
  authenticatorData: 16_384,
  signature: 2_048,
}
/** Whole groups of four, then two or three characters or none: the lengths base64url can have. */
const BASE64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$/

/** A fresh random challenge, base64url, 32 bytes from node:crypto. */
export function newChallenge(): string {
  return randomBytes(CHALLENGE_BYTES).toString('base64url')
}

/** Registration options for an account: resident key required, user verification required, attestation 'none', the account's existing credentials excluded, algorithms EdDSA(-8), ES256(-7), RS256(-257). userHandle is the opaque per-account WebAuthn user id (base64url of random bytes, never the numeric user id). */
export async function registrationOptions(
  rp: RelyingParty,
  account: { userHandle: string; name: string; displayName: string },
  exclude: readonly StoredCredential[],
  challenge: string,
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await webauthnLibrary()
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: account.name,
    userDisplayName: account.displayName,
    userID: bytesOf(account.userHandle, 'user handle'),
    // Given as bytes: a string challenge would be taken as UTF-8 text and sent base64url-encoded
    // once more, and the answer would then carry a challenge the server never stored.
    challenge: bytesOf(challenge, 'challenge'),
    timeout: WEBAUTHN_CHALLENGE_LIFETIME_SECONDS * 1000,
    attestationType: 'none',
    excludeCredentials: exclude.map(descriptorOf),
    // A new object each time: the library writes requireResidentKey into the one it is given.
    // (It also sets requireResidentKey, for browsers older than residentKey.)
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    supportedAlgorithmIDs: [...ALGORITHMS],
  })
}

/**
 * Authentication options: allow = undefined for a discoverable (password-less) login (no
 * allowCredentials), or the account's credentials for a second factor. An empty list is a
 * RangeError: browsers read it as "any passkey", which is not a second factor of this account.
 */
export function authenticationOptions(
  rp: RelyingParty,
  allow: readonly StoredCredential[] | undefined,
  userVerification: 'required' | 'preferred',
  challenge: string,
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  if (allow?.length === 0) throw new RangeError('a second factor needs at least one credential to allow')
  const options = {
    rpID: rp.id,
    allowCredentials: allow?.map(descriptorOf),
    challenge: bytesOf(challenge, 'challenge'),
    timeout: WEBAUTHN_CHALLENGE_LIFETIME_SECONDS * 1000,
    userVerification,
  }
  return webauthnLibrary().then((library) => library.generateAuthenticationOptions(options))
}

/**
 * The challenge a response claims to answer (from its clientDataJSON), or undefined when the
 * response is malformed — so the server can find and spend its stored challenge before verifying.
 * Never throws; anything but the 43 characters of a challenge of ours is undefined.
 */
export function claimedChallengeOf(response: { response: { clientDataJSON: string } }): string | undefined {
  const body: unknown = isObject(response) ? response.response : undefined
  const challenge = clientDataOf(isObject(body) ? body.clientDataJSON : undefined)?.challenge
  return typeof challenge === 'string' && CHALLENGE_PATTERN.test(challenge) ? challenge : undefined
}

/**
 * Verifies an attestation against the expected challenge, the RP ID and the allowed origins, with
 * user presence and verification required. Never throws: every failure is a reason. Besides the
 * library's checks: the attestation object must be exact CBOR (its decoder silently shortens a
 * truncated byte string, and would store a cut-off public key), the credential id the client
 * names must be the one in the authenticator data, and an answer from a frame embedded in
 * another site is refused ('origin').
 */
export async function verifyRegistration(
  rp: RelyingParty,
  response: RegistrationResponseJSON,
  expectedChallenge: string,
): Promise<RegistrationResult> {
  const library = await webauthnLibrary()
  const clientData = readableAnswer(response, REGISTRATION_FIELDS)
  if (clientData === undefined || !isExactCbor(library.isoCBOR, response.response.attestationObject))
    return refusal('malformed')
  if (clientData.crossOrigin === true) return refusal('origin', CROSS_ORIGIN)
  try {
    const verification = await library.verifyRegistrationResponse({
      response,
      expectedChallenge,
      expectedOrigin: [...rp.origins],
      expectedRPID: [rp.id],
      requireUserPresence: true,
      requireUserVerification: true,
      supportedAlgorithmIDs: [...ALGORITHMS],
    })
    // Only an attestation statement with a signature (not 'none') can fail this way.
    if (!verification.verified) return refusal('signature')
    const info = verification.registrationInfo
    if (info.credential.id !== response.id) return refusal('credential', CREDENTIAL_ID_MISMATCH)
    const { credentialBackedUp: backedUp, credentialDeviceType: deviceType, aaguid, credential: key } = info
    const transports = transportsOf(response.response.transports)
    const credential = { credentialId: key.id, publicKey: key.publicKey, counter: key.counter, transports }
    return { ok: true, credential, backedUp, deviceType, aaguid }
  } catch (error) {
    return refusal(...refusalOf(error))
  }
}

/**
 * Verifies an assertion of `credential` (its id must equal response.id, else 'credential');
 * requireUserVerification for password-less logins (user presence is always required). A
 * signature counter that does not increase (when either counter is non-zero) is 'counter', and
 * only for a valid signature. Never throws. Discoverable logins: the caller also compares
 * response.response.userHandle with the user handle of the account that owns the credential.
 */
export async function verifyAuthentication(
  rp: RelyingParty,
  response: AuthenticationResponseJSON,
  expectedChallenge: string,
  credential: StoredCredential,
  requireUserVerification: boolean,
): Promise<AuthenticationResult> {
  const { verifyAuthenticationResponse } = await webauthnLibrary()
  const clientData = readableAnswer(response, AUTHENTICATION_FIELDS)
  if (clientData === undefined) return refusal('malformed')
  if (response.id !== credential.credentialId) return refusal('credential')
  if (clientData.crossOrigin === true) return refusal('origin', CROSS_ORIGIN)
  try {
    const { verified, authenticationInfo } = await verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: [...rp.origins],
      expectedRPID: [rp.id],
      // Counter 0 turns the library's counter check off: it runs before the signature's, and
      // would call an unsigned answer a cloned passkey. Ours runs below, on signed answers only.
      credential: {
        id: credential.credentialId,
        publicKey: new Uint8Array(credential.publicKey),
        counter: 0,
      },
      requireUserVerification,
    })
    if (!verified) return refusal('signature')
    const { newCounter, userVerified } = authenticationInfo
    // An authenticator that does not count keeps 0; one that counts must go past the stored value.
    if (credential.counter > 0 && newCounter <= credential.counter) return refusal('counter')
    return { ok: true, newCounter, userVerified }
  } catch (error) {
    return refusal(...refusalOf(error))
  }
}

const MESSAGES: Record<WebAuthnRefusal, string> = {
  malformed: 'The passkey response could not be read.',
  challenge: 'The passkey response does not answer the challenge this server issued.',
  origin: 'The passkey response comes from a page this server does not accept.',
  rp_id: 'The passkey response was made for another site.',
  user_verification: 'The authenticator did not verify the user (PIN or biometrics).',
  user_presence: 'The authenticator did not confirm that the user was present.',
  signature: 'The passkey signature is not valid.',
  counter: "The passkey's signature counter went backwards: the passkey may have been copied.",
  credential: 'The passkey response is not from the expected passkey.',
}
const CROSS_ORIGIN = 'The passkey response comes from a frame embedded in another site.'
const CREDENTIAL_ID_MISMATCH = "The passkey response names a credential its authenticator data doesn't hold."
const UNSUPPORTED_ALGORITHM = 'The passkey uses a key type this server does not accept.'

/**
 * The library's refusals by the start of its messages (13.x: test/auth/webauthn.test.ts has a
 * case for each). Text a client chose (a type, an origin) only ever follows these prefixes. Any
 * other error means the answer could not be read: 'malformed' — a signature that is not even DER
 * too (its ASN.1 parser has a dozen ways to say so); 'signature' is a readable one that does not verify.
 */
const LIBRARY_REFUSALS: readonly [RegExp, WebAuthnRefusal, string?][] = [
  [/^Unexpected (registration|authentication) response challenge "/, 'challenge'],
  [/^Unexpected (registration|authentication) response origin "/, 'origin'],
  [/^Unexpected RP ID hash/, 'rp_id'],
  [/^User verification (was )?required/, 'user_verification'],
  [/^User (presence was required|not present)/, 'user_presence'],
  [/^Unexpected public key alg "/, 'credential', UNSUPPORTED_ALGORITHM],
]

function refusalOf(error: unknown): [WebAuthnRefusal, string?] {
  // Stryker disable next-line StringLiteral: any text no pattern matches is 'malformed', as '' is.
  const message = error instanceof Error ? error.message : ''
  const known = LIBRARY_REFUSALS.find(([pattern]) => pattern.test(message))
  return known ? [known[1], known[2]] : ['malformed']
}

function refusal(reason: WebAuthnRefusal, message = MESSAGES[reason]): Refusal {
  return { ok: false, reason, message }
}

type ClientData = Record<string, unknown>

/** The parsed clientDataJSON of an answer whose fields have the shape and size they must, else undefined. */
function readableAnswer(answer: unknown, fields: Readonly<Record<string, number>>): ClientData | undefined {
  if (!isObject(answer) || answer.type !== 'public-key' || answer.rawId !== answer.id) return undefined
  const { id, response: body } = answer
  if (id === '' || !isBase64Url(id, MAX_ID_CHARS) || !isObject(body)) return undefined
  if (!Object.entries(fields).every(([field, maxChars]) => isBase64Url(body[field], maxChars)))
    return undefined
  if (body.userHandle != null && !isBase64Url(body.userHandle, MAX_USER_HANDLE_CHARS)) return undefined
  return clientDataOf(body.clientDataJSON)
}

function clientDataOf(encoded: unknown): ClientData | undefined {
  if (!isBase64Url(encoded, MAX_CLIENT_DATA_CHARS)) return undefined
  try {
    const parsed: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
    // Stryker disable BlockStatement: an empty catch block falls through to the end of the function, which returns undefined too.
    return isObject(parsed) ? parsed : undefined
  } catch {
    // Stryker restore BlockStatement
    return undefined
  }
}

/** Unpadded base64url, as browsers send every binary field: the library's decoder reads any other character as zero bits. */
function isBase64Url(value: unknown, maxChars: number): value is string {
  return typeof value === 'string' && value.length <= maxChars && BASE64URL.test(value)
}

/** CBOR that the library's codec reads and writes back to the same bytes: nothing cut short, nothing after. */
function isExactCbor(codec: typeof isoCBOR, encoded: string): boolean {
  const bytes = Buffer.from(encoded, 'base64url')
  try {
    const decoded = codec.decodeFirst<Parameters<typeof codec.encode>[0]>(new Uint8Array(bytes))
    // Stryker disable BlockStatement: an empty catch block returns undefined, which the one caller reads as false.
    return Buffer.from(codec.encode(decoded)).equals(bytes)
  } catch {
    // Stryker restore BlockStatement
    return false
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The transports a browser reported that WebAuthn knows, once each: they are hints sent back in options. */
function transportsOf(reported: unknown): AuthenticatorTransportFuture[] {
  return Array.isArray(reported) ? TRANSPORTS.filter((transport) => reported.includes(transport)) : []
}

function descriptorOf(credential: StoredCredential) {
  const transports = transportsOf(credential.transports)
  return transports.length > 0 ? { id: credential.credentialId, transports } : { id: credential.credentialId }
}

/** Our own base64url values (challenge, user handle) as bytes; a programming error when not canonical. */
function bytesOf(text: string, what: string): Uint8Array<ArrayBuffer> {
  const bytes = Buffer.from(text, 'base64url')
  if (bytes.length === 0 || bytes.toString('base64url') !== text)
    throw new TypeError(`the ${what} must be non-empty, unpadded base64url`)
  return new Uint8Array(bytes)
}
