/**
 * Passkeys (src/auth/webauthn.ts) against a software authenticator that answers as a browser
 * would (test/support/software-authenticator.ts): the options a browser is given, a registration
 * and the logins that follow it (password-less and second factor), every refusal with its reason,
 * answers no browser would send (tampered, truncated, not base64url, not JSON) refused as
 * 'malformed' without a throw, and the challenge an answer claims, read from hostile input.
 */
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { describe, test } from 'node:test'
import { cose, isoCBOR } from '@simplewebauthn/server/helpers'
import {
  authenticationOptions,
  claimedChallengeOf,
  newChallenge,
  registrationOptions,
  verifyAuthentication,
  verifyRegistration,
  WEBAUTHN_CHALLENGE_LIFETIME_SECONDS,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
  type RelyingParty,
  type StoredCredential,
  type WebAuthnRefusal,
} from '../../src/auth/webauthn.js'
import {
  createSoftwareAuthenticator,
  type AssertionOverrides,
  type CeremonyOverrides,
  type SoftwareAuthenticator,
  type SoftwareAuthenticatorOptions,
} from '../support/software-authenticator.js'

const ORIGIN = 'https://example.com'
const RP: RelyingParty = { id: 'example.com', name: 'Example', origins: [ORIGIN, 'https://app.example.com'] }

type CBORValue = Parameters<typeof isoCBOR.encode>[0]
const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, 'base64url'))

let accounts = 0
/** A new account, as the server would describe it: a random user handle, never the user id. */
function newAccount() {
  accounts += 1
  return {
    userHandle: randomBytes(32).toString('base64url'),
    name: `user${accounts}@example.com`,
    displayName: `User ${accounts}`,
  }
}

/** The software authenticator of a page at `origin` (default https://example.com). */
const authenticatorAt = (options: Partial<SoftwareAuthenticatorOptions> = {}) =>
  createSoftwareAuthenticator({ origin: ORIGIN, ...options })

/** A registration answer for a new account, with the challenge it answers. */
async function registrationAnswer(
  authenticator: SoftwareAuthenticator,
  overrides: CeremonyOverrides = {},
  rp: RelyingParty = RP,
) {
  const challenge = newChallenge()
  const options = await registrationOptions(rp, newAccount(), [], challenge)
  return { challenge, response: await authenticator.register(options, overrides) }
}

/** A credential registered and verified, as the server would store it. */
async function registered(authenticator: SoftwareAuthenticator = authenticatorAt(), rp: RelyingParty = RP) {
  const { challenge, response } = await registrationAnswer(authenticator, {}, rp)
  const result = await verifyRegistration(rp, response, challenge)
  assert.ok(result.ok, `registration refused: ${result.ok ? '' : result.reason}`)
  return { authenticator, credential: result.credential, result }
}

/** An assertion for a password-less login (allow undefined) or a second factor (the allowed credentials). */
async function assertionAnswer(
  authenticator: SoftwareAuthenticator,
  allow: readonly StoredCredential[] | undefined,
  overrides: AssertionOverrides = {},
  rp: RelyingParty = RP,
) {
  const challenge = newChallenge()
  const options = await authenticationOptions(rp, allow, allow ? 'preferred' : 'required', challenge)
  return { challenge, response: await authenticator.authenticate(options, overrides) }
}

/** A refusal with exactly this reason, and a message fit for a client: one sentence, no data of the answer. */
function assertRefused(
  result: { ok: boolean; reason?: WebAuthnRefusal; message?: string },
  reason: WebAuthnRefusal,
) {
  assert.equal(result.ok, false, `accepted where '${reason}' was expected`)
  assert.equal(result.reason, reason)
  assert.match(result.message ?? '', /^The [^"\n{}<>]+\.$/)
}

function withClientData<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(
  response: T,
  change: (clientData: Record<string, unknown>) => unknown,
): T {
  const clientData = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8'))
  const clientDataJSON = Buffer.from(JSON.stringify(change(clientData))).toString('base64url')
  return { ...response, response: { ...response.response, clientDataJSON } }
}

function withResponse<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(
  response: T,
  fields: Partial<T['response']> | Record<string, unknown>,
): T {
  return { ...response, response: { ...response.response, ...fields } }
}

/** The answer with its attestation object's authenticator data rewritten (attestation 'none' signs nothing). */
function withAuthData(
  response: RegistrationResponseJSON,
  change: (authData: Buffer) => Buffer,
): RegistrationResponseJSON {
  const attestation = isoCBOR.decodeFirst<Map<string, CBORValue>>(
    bytesOf(response.response.attestationObject),
  )
  const authData = Buffer.from(attestation.get('authData') as Uint8Array)
  attestation.set('authData', new Uint8Array(change(authData)))
  return withResponse(response, { attestationObject: base64url(isoCBOR.encode(attestation)) })
}

describe('options', () => {
  test('a challenge is 32 random bytes in unpadded base64url, and no two are alike', () => {
    const challenges = Array.from({ length: 50 }, newChallenge)
    for (const challenge of challenges) {
      assert.match(challenge, /^[A-Za-z0-9_-]{43}$/)
      assert.equal(Buffer.from(challenge, 'base64url').length, 32)
    }
    assert.equal(new Set(challenges).size, challenges.length)
  })

  test('registration options: resident key and user verification required, attestation none, EdDSA, ES256, RS256, 5 minutes', async () => {
    const account = newAccount()
    const challenge = newChallenge()
    const options = await registrationOptions(RP, account, [], challenge)
    assert.equal(options.challenge, challenge, 'the challenge byte for byte, not re-encoded')
    assert.deepEqual(options.rp, { id: 'example.com', name: 'Example' })
    assert.deepEqual(options.user, {
      id: account.userHandle,
      name: account.name,
      displayName: account.displayName,
    })
    assert.deepEqual(options.authenticatorSelection, {
      residentKey: 'required',
      requireResidentKey: true,
      userVerification: 'required',
    })
    assert.equal(options.attestation, 'none')
    assert.deepEqual(options.pubKeyCredParams, [
      { alg: -8, type: 'public-key' },
      { alg: -7, type: 'public-key' },
      { alg: -257, type: 'public-key' },
    ])
    assert.equal(options.timeout, WEBAUTHN_CHALLENGE_LIFETIME_SECONDS * 1000)
    assert.equal(WEBAUTHN_CHALLENGE_LIFETIME_SECONDS, 300)
    assert.deepEqual(options.excludeCredentials, [])
  })

  test("registration options exclude the account's credentials, with their transports when known", async () => {
    const withTransports = { ...(await registered()).credential }
    const without = { ...(await registered()).credential, transports: [] }
    assert.deepEqual(withTransports.transports, ['internal'])
    const options = await registrationOptions(RP, newAccount(), [withTransports, without], newChallenge())
    assert.deepEqual(options.excludeCredentials, [
      { id: withTransports.credentialId, transports: ['internal'], type: 'public-key' },
      { id: without.credentialId, type: 'public-key' },
    ])
  })

  test('an authenticator holding an excluded credential refuses to register another for the account', async () => {
    const { authenticator, credential } = await registered()
    const options = await registrationOptions(RP, newAccount(), [credential], newChallenge())
    await assert.rejects(authenticator.register(options), { name: 'InvalidStateError' })
    const other = authenticatorAt()
    await other.register(options)
    assert.equal(other.credentials.length, 1, 'another authenticator may')
  })

  test('a challenge or user handle that is not canonical base64url is a TypeError naming it, never a changed value', async () => {
    const badChallenge = { name: 'TypeError', message: 'the challenge must be non-empty, unpadded base64url' }
    const badHandle = { name: 'TypeError', message: 'the user handle must be non-empty, unpadded base64url' }
    for (const bad of ['', 'abd', 'ab+/', 'abc=', 'a', 'ab cd']) {
      await assert.rejects(async () => registrationOptions(RP, newAccount(), [], bad), badChallenge, bad)
      const account = { ...newAccount(), userHandle: bad }
      await assert.rejects(async () => registrationOptions(RP, account, [], newChallenge()), badHandle, bad)
      await assert.rejects(
        async () => authenticationOptions(RP, undefined, 'required', bad),
        badChallenge,
        bad,
      )
    }
  })

  test('password-less login options: no allowCredentials (any passkey of the site), user verification required', async () => {
    const challenge = newChallenge()
    const options = await authenticationOptions(RP, undefined, 'required', challenge)
    assert.equal(options.allowCredentials, undefined)
    assert.equal(options.rpId, 'example.com')
    assert.equal(options.challenge, challenge)
    assert.equal(options.userVerification, 'required')
    assert.equal(options.timeout, 300_000)
  })

  test("second-factor options list the account's credentials, user verification preferred; an empty list is a RangeError", async () => {
    const { credential } = await registered()
    const options = await authenticationOptions(RP, [credential], 'preferred', newChallenge())
    assert.deepEqual(options.allowCredentials, [
      { id: credential.credentialId, transports: ['internal'], type: 'public-key' },
    ])
    assert.equal(options.userVerification, 'preferred')
    await assert.rejects(async () => authenticationOptions(RP, [], 'preferred', newChallenge()), {
      name: 'RangeError',
      message: 'a second factor needs at least one credential to allow',
    })
  })
})

describe('registration, then login', () => {
  test('a registration is verified: the credential id, a COSE ES256 key, counter 0, its transports, device-bound', async () => {
    const authenticator = authenticatorAt()
    const { challenge, response } = await registrationAnswer(authenticator)
    const result = await verifyRegistration(RP, response, challenge)
    assert.ok(result.ok)
    assert.equal(result.credential.credentialId, authenticator.credentials[0]?.id)
    assert.equal(result.credential.counter, 0)
    assert.deepEqual(result.credential.transports, ['internal'])
    assert.equal(result.deviceType, 'singleDevice')
    assert.equal(result.backedUp, false)
    assert.equal(result.aaguid, '00000000-0000-0000-0000-000000000000')
    const key = isoCBOR.decodeFirst<Map<number, CBORValue>>(new Uint8Array(result.credential.publicKey))
    assert.equal(key.get(cose.COSEKEYS.kty), cose.COSEKTY.EC2)
    assert.equal(key.get(cose.COSEKEYS.alg), cose.COSEALG.ES256)
    assert.equal((key.get(cose.COSEKEYS.x) as Uint8Array).length, 32)
  })

  test('the transports kept are those WebAuthn knows, once each', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const reported = ['usb', 'internal', 'carrier-pigeon', 'internal', 'nfc']
    const result = await verifyRegistration(
      RP,
      withResponse(response, { transports: reported } as Record<string, unknown>),
      challenge,
    )
    assert.ok(result.ok)
    assert.deepEqual(result.credential.transports, ['internal', 'nfc', 'usb'])
  })

  test('transports not reported as a list are none; a stored credential without a list is allowed without any', async () => {
    for (const transports of [undefined, null, 'usb', { 0: 'usb', length: 1 }]) {
      const { challenge, response } = await registrationAnswer(authenticatorAt())
      const answer = withResponse(response, { transports } as Record<string, unknown>)
      const result = await verifyRegistration(RP, answer, challenge)
      assert.ok(result.ok, JSON.stringify(transports))
      assert.deepEqual(result.credential.transports, [], JSON.stringify(transports))
    }
    const { credential } = await registered()
    const unlisted = { ...credential, transports: 'usb' as unknown as StoredCredential['transports'] }
    const options = await authenticationOptions(RP, [unlisted], 'preferred', newChallenge())
    assert.deepEqual(options.allowCredentials, [{ id: credential.credentialId, type: 'public-key' }])
  })

  test('the registered credential logs in without a password; its counter goes up with each login', async () => {
    const { authenticator, credential } = await registered()
    const first = await assertionAnswer(authenticator, undefined)
    const one = await verifyAuthentication(RP, first.response, first.challenge, credential, true)
    assert.deepEqual(one, { ok: true, newCounter: 1, userVerified: true })
    const second = await assertionAnswer(authenticator, undefined)
    const two = await verifyAuthentication(
      RP,
      second.response,
      second.challenge,
      { ...credential, counter: 1 },
      true,
    )
    assert.deepEqual(two, { ok: true, newCounter: 2, userVerified: true })
    assert.equal(first.response.response.userHandle, authenticator.credentials[0]?.userHandle)
  })

  test('a registered credential serves as a second factor, from a page on another allowed origin', async () => {
    const { credential } = await registered()
    const authenticator = authenticatorAt({ origin: 'https://app.example.com' })
    const { credential: appCredential } = await registered(authenticator)
    assert.notEqual(appCredential.credentialId, credential.credentialId)
    const { challenge, response } = await assertionAnswer(authenticator, [credential, appCredential])
    assert.equal(response.id, appCredential.credentialId, 'the one of the allowed this authenticator holds')
    const result = await verifyAuthentication(RP, response, challenge, appCredential, false)
    assert.deepEqual(result, { ok: true, newCounter: 1, userVerified: true })
  })

  test('an assertion without user verification: accepted as a second factor, refused for a password-less login', async () => {
    const { authenticator, credential } = await registered()
    // The user was not verified this time (a security key whose PIN was not asked for).
    const { challenge, response } = await assertionAnswer(authenticator, [credential], {
      userVerified: false,
    })
    assert.deepEqual(await verifyAuthentication(RP, response, challenge, credential, false), {
      ok: true,
      newCounter: 1,
      userVerified: false,
    })
    const login = await assertionAnswer(authenticator, undefined, { userVerified: false })
    const stored = { ...credential, counter: 1 }
    assertRefused(
      await verifyAuthentication(RP, login.response, login.challenge, stored, true),
      'user_verification',
    )
  })

  test('an Ed25519 (EdDSA) passkey registers and logs in', async () => {
    const { authenticator, credential } = await registered(authenticatorAt({ algorithm: 'EdDSA' }))
    const key = isoCBOR.decodeFirst<Map<number, CBORValue>>(new Uint8Array(credential.publicKey))
    assert.equal(key.get(cose.COSEKEYS.alg), cose.COSEALG.EdDSA)
    const { challenge, response } = await assertionAnswer(authenticator, undefined)
    assert.deepEqual(await verifyAuthentication(RP, response, challenge, credential, true), {
      ok: true,
      newCounter: 1,
      userVerified: true,
    })
  })

  test('a synced passkey is multi-device and backed up, and its counter of 0 is accepted at every login', async () => {
    const { authenticator, credential, result } = await registered(authenticatorAt({ synced: true }))
    assert.equal(result.deviceType, 'multiDevice')
    assert.equal(result.backedUp, true)
    assert.deepEqual(credential.transports, ['hybrid', 'internal'])
    for (let login = 0; login < 2; login += 1) {
      const { challenge, response } = await assertionAnswer(authenticator, undefined)
      assert.deepEqual(await verifyAuthentication(RP, response, challenge, credential, true), {
        ok: true,
        newCounter: 0,
        userVerified: true,
      })
    }
  })

  test('a development server: RP ID localhost, origin http://localhost with a port', async () => {
    const local: RelyingParty = { id: 'localhost', name: 'Dev', origins: ['http://localhost:8000'] }
    const { authenticator, credential } = await registered(
      authenticatorAt({ origin: 'http://localhost:8000' }),
      local,
    )
    const { challenge, response } = await assertionAnswer(authenticator, undefined, {}, local)
    assert.equal((await verifyAuthentication(local, response, challenge, credential, true)).ok, true)
    const other = await assertionAnswer(authenticator, undefined, {}, local)
    const elsewhere = { ...local, origins: ['http://localhost:3000'] }
    assertRefused(
      await verifyAuthentication(elsewhere, other.response, other.challenge, credential, true),
      'origin',
    )
  })
})

describe('refusals of a registration', () => {
  const refusedWith = async (overrides: CeremonyOverrides, reason: WebAuthnRefusal) => {
    const { challenge, response } = await registrationAnswer(authenticatorAt(), overrides)
    assertRefused(await verifyRegistration(RP, response, challenge), reason)
  }

  test('from an origin not in the list (another site, another scheme or port, a look-alike host): origin', async () => {
    for (const origin of [
      'https://evil.example',
      'http://example.com',
      'https://example.com:8443',
      'https://example.com.evil.example',
      'https://EXAMPLE.com',
      'null',
    ])
      await refusedWith({ origin }, 'origin')
  })

  test('for another RP ID (a phishing site relaying our options): rp_id', async () => {
    await refusedWith({ rpId: 'evil.example' }, 'rp_id')
    await refusedWith({ rpId: 'app.example.com' }, 'rp_id')
  })

  test('answering another challenge than the one spent: challenge, and the message shows neither', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const expected = newChallenge()
    const result = await verifyRegistration(RP, response, expected)
    assertRefused(result, 'challenge')
    assert.ok(!result.ok && !result.message.includes(challenge) && !result.message.includes(expected))
    await refusedWith({ challenge: newChallenge() }, 'challenge')
  })

  test('without user verification: user_verification; without user presence: user_presence', async () => {
    await refusedWith({ userVerified: false }, 'user_verification')
    const withoutUv = createSoftwareAuthenticator({ origin: ORIGIN, userVerification: false })
    const { challenge, response } = await registrationAnswer(withoutUv)
    assertRefused(await verifyRegistration(RP, response, challenge), 'user_verification')
    await refusedWith({ userPresent: false, userVerified: true }, 'user_presence')
  })

  test('a packed self attestation is checked: signed by the key it registers, accepted; by another key: signature', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt(), { attestation: 'packed' })
    assert.equal((await verifyRegistration(RP, response, challenge)).ok, true, 'signed by its own key')
    const next = await registrationAnswer(authenticatorAt(), { attestation: 'packed' })
    const attestation = isoCBOR.decodeFirst<Map<string, CBORValue>>(
      bytesOf(next.response.response.attestationObject),
    )
    const clientDataHash = createHash('sha256')
      .update(bytesOf(next.response.response.clientDataJSON))
      .digest()
    const signedData = Buffer.concat([attestation.get('authData') as Uint8Array, clientDataHash])
    const { privateKey: otherKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    attestation.set(
      'attStmt',
      new Map<string, CBORValue>([
        ['alg', cose.COSEALG.ES256],
        ['sig', new Uint8Array(sign('sha256', signedData, otherKey))],
      ]),
    )
    const forged = withResponse(next.response, { attestationObject: base64url(isoCBOR.encode(attestation)) })
    assertRefused(await verifyRegistration(RP, forged, next.challenge), 'signature')
  })

  test('a credential id other than the one in the authenticator data: credential', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const other = randomBytes(16).toString('base64url')
    assertRefused(
      await verifyRegistration(RP, { ...response, id: other, rawId: other }, challenge),
      'credential',
    )
  })

  test('a key of an algorithm the options did not offer (RSA with SHA-1, which the library knows): credential', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const changed = withAuthData(response, (authData) => {
      // rpIdHash, flags, counter (37 bytes), AAGUID (16), id length (2), id, then the COSE key.
      const keyStart = 55 + authData.readUInt16BE(53)
      const key = isoCBOR.decodeFirst<Map<number, CBORValue>>(new Uint8Array(authData.subarray(keyStart)))
      key.set(cose.COSEKEYS.alg, cose.COSEALG.RS1)
      return Buffer.concat([authData.subarray(0, keyStart), isoCBOR.encode(key)])
    })
    assertRefused(await verifyRegistration(RP, changed, challenge), 'credential')
  })

  test('from a frame embedded in another site (crossOrigin true): origin', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const framed = withClientData(response, (data) => ({ ...data, crossOrigin: true }))
    assertRefused(await verifyRegistration(RP, framed, challenge), 'origin')
  })
})

describe('refusals of an assertion', () => {
  const refusedWith = async (overrides: AssertionOverrides, reason: WebAuthnRefusal, requireUv = true) => {
    const { authenticator, credential } = await registered()
    const { challenge, response } = await assertionAnswer(authenticator, undefined, overrides)
    assertRefused(await verifyAuthentication(RP, response, challenge, credential, requireUv), reason)
  }

  test('from an origin not in the list: origin', async () => {
    for (const origin of [
      'https://evil.example',
      'http://example.com',
      'https://example.com:444',
      'https://xexample.com',
    ])
      await refusedWith({ origin }, 'origin')
  })

  test('for another RP ID: rp_id', async () => {
    await refusedWith({ rpId: 'evil.example' }, 'rp_id')
  })

  test('answering another challenge (a replayed assertion): challenge', async () => {
    const { authenticator, credential } = await registered()
    const { response } = await assertionAnswer(authenticator, undefined)
    assertRefused(await verifyAuthentication(RP, response, newChallenge(), credential, true), 'challenge')
    await refusedWith({ challenge: newChallenge() }, 'challenge')
  })

  test('without user verification when required: user_verification; without user presence, even as a second factor: user_presence', async () => {
    await refusedWith({ userVerified: false }, 'user_verification')
    await refusedWith({ userPresent: false }, 'user_presence', false)
  })

  test('a signature counter not above the stored one: counter; above it: accepted', async () => {
    const { authenticator, credential } = await registered()
    const stored = { ...credential, counter: 5 }
    for (const counter of [5, 4, 0]) {
      const { challenge, response } = await assertionAnswer(authenticator, undefined, { counter })
      assertRefused(await verifyAuthentication(RP, response, challenge, stored, true), 'counter')
    }
    const { challenge, response } = await assertionAnswer(authenticator, undefined, { counter: 6 })
    assert.deepEqual(await verifyAuthentication(RP, response, challenge, stored, true), {
      ok: true,
      newCounter: 6,
      userVerified: true,
    })
  })

  test('the assertion of another credential: credential', async () => {
    const { credential } = await registered()
    const { authenticator: other } = await registered()
    const { challenge, response } = await assertionAnswer(other, undefined)
    assertRefused(await verifyAuthentication(RP, response, challenge, credential, true), 'credential')
  })

  test("another key's signature under the stored credential's id: signature, and never counter", async () => {
    const { credential } = await registered()
    const { authenticator: thief } = await registered()
    const forged = await assertionAnswer(thief, undefined, { responseId: credential.credentialId })
    assertRefused(
      await verifyAuthentication(RP, forged.response, forged.challenge, credential, true),
      'signature',
    )
    // The library checks the counter before the signature: an unsigned answer must not pass for a clone.
    const stale = await assertionAnswer(thief, undefined, { responseId: credential.credentialId, counter: 0 })
    const stored = { ...credential, counter: 9 }
    assertRefused(await verifyAuthentication(RP, stale.response, stale.challenge, stored, true), 'signature')
  })

  test('a signed field changed after signing (signature, authenticator data, client data bytes): signature', async () => {
    const { authenticator, credential } = await registered()
    const answers = [
      (response: AuthenticationResponseJSON) => {
        const signature = Buffer.from(response.response.signature, 'base64url')
        signature.writeUInt8(signature.readUInt8(signature.length - 1) ^ 0x01, signature.length - 1)
        return withResponse(response, { signature: signature.toString('base64url') })
      },
      (response: AuthenticationResponseJSON) => {
        const authData = Buffer.from(response.response.authenticatorData, 'base64url')
        authData.writeUInt32BE(1000, 33)
        return withResponse(response, { authenticatorData: authData.toString('base64url') })
      },
      // The same members, re-serialised with a space: another hash.
      (response: AuthenticationResponseJSON) => {
        const text = Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8')
        const clientDataJSON = Buffer.from(text.replace('{', '{ ')).toString('base64url')
        return withResponse(response, { clientDataJSON })
      },
    ]
    for (const tamper of answers) {
      const { challenge, response } = await assertionAnswer(authenticator, undefined)
      assert.equal(
        (await verifyAuthentication(RP, response, challenge, credential, true)).ok,
        true,
        'untouched',
      )
      const { challenge: next, response: fresh } = await assertionAnswer(authenticator, undefined)
      const stored = { ...credential, counter: 0 }
      assertRefused(await verifyAuthentication(RP, tamper(fresh), next, stored, true), 'signature')
    }
  })

  test('from a frame embedded in another site (crossOrigin true): origin', async () => {
    const { authenticator, credential } = await registered()
    const { challenge, response } = await assertionAnswer(authenticator, undefined)
    const framed = withClientData(response, (data) => ({ ...data, crossOrigin: true }))
    assertRefused(await verifyAuthentication(RP, framed, challenge, credential, true), 'origin')
  })
})

describe('malformed answers are refused, never thrown', () => {
  const notJson = Buffer.from('not json at all').toString('base64url')
  const clientDataVariants = [
    notJson,
    '%%%%',
    'ab+/cd==',
    'abcde',
    '',
    Buffer.from('null').toString('base64url'),
    Buffer.from('[1,2]').toString('base64url'),
    Buffer.from('"a string"').toString('base64url'),
    'A'.repeat(20_000),
  ]
  const envelopes = (response: object): unknown[] => [
    null,
    undefined,
    42,
    'a string',
    [],
    {},
    { ...response, response: null },
    { ...response, response: 'x' },
    { ...response, id: undefined, rawId: undefined },
    { ...response, rawId: 'c29tZXRoaW5nIGVsc2U' },
    { ...response, type: 'password' },
    { ...response, id: 'not base64!', rawId: 'not base64!' },
    { ...response, id: '', rawId: '' },
    { ...response, id: 'A'.repeat(2_000), rawId: 'A'.repeat(2_000) },
  ]

  test('registration: garbage, non-base64url or non-JSON client data, a broken envelope: malformed', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const answers = [
      ...clientDataVariants.map((clientDataJSON) => withResponse(response, { clientDataJSON })),
      ...envelopes(response),
      withResponse(response, { clientDataJSON: 42 }),
      withResponse(response, { attestationObject: undefined }),
    ]
    for (const answer of answers) {
      const result = await verifyRegistration(RP, answer as RegistrationResponseJSON, challenge)
      assertRefused(result, 'malformed')
    }
  })

  test('a malformed answer is malformed even when it is framed as well or names another credential: nothing else of it is judged', async () => {
    const otherId = randomBytes(16).toString('base64url')
    const registration = await registrationAnswer(authenticatorAt())
    // Well formed, this answer would be refused for coming from a frame of another site.
    const framed = withClientData(registration.response, (data) => ({ ...data, crossOrigin: true }))
    const attestation = Buffer.from(framed.response.attestationObject, 'base64url')
    for (const answer of [
      { ...framed, type: 'password' },
      { ...framed, type: 'public-key ' },
      { ...framed, rawId: otherId },
      { ...framed, id: 'abcde', rawId: 'abcde' },
      withResponse(framed, { attestationObject: '' }),
      withResponse(framed, { attestationObject: attestation.subarray(0, 20).toString('base64url') }),
      withResponse(framed, { attestationObject: Buffer.from([0xff]).toString('base64url') }),
    ])
      assertRefused(
        await verifyRegistration(RP, answer as RegistrationResponseJSON, registration.challenge),
        'malformed',
      )
    assertRefused(await verifyRegistration(RP, framed, registration.challenge), 'origin')

    const { authenticator, credential } = await registered()
    const assertion = await assertionAnswer(authenticator, undefined)
    // Well formed, this answer would be refused for naming another credential than the stored one.
    const stranger = { ...assertion.response, id: otherId, rawId: otherId }
    for (const answer of [
      { ...stranger, type: 'password' },
      { ...stranger, type: 'public-key ' },
      { ...assertion.response, rawId: otherId },
      { ...stranger, id: 'abcde', rawId: 'abcde' },
      withResponse(stranger, { signature: 'A'.repeat(3_000) }),
      withResponse(stranger, { authenticatorData: '%%%%' }),
    ])
      assertRefused(
        await verifyAuthentication(
          RP,
          answer as AuthenticationResponseJSON,
          assertion.challenge,
          credential,
          true,
        ),
        'malformed',
      )
    assertRefused(
      await verifyAuthentication(RP, stranger, assertion.challenge, credential, true),
      'credential',
    )
  })

  test('a field padded with "=", which the library would read, is malformed: signature, authenticator data', async () => {
    const { authenticator, credential } = await registered()
    for (const field of ['signature', 'authenticatorData'] as const) {
      const { challenge, response } = await assertionAnswer(authenticator, undefined)
      const padded = withResponse(response, { [field]: `${response.response[field]}=` })
      assertRefused(await verifyAuthentication(RP, padded, challenge, credential, true), 'malformed')
    }
  })

  test('a credential id of 1023 bytes is read and one of 1024 is not; a user handle of 64 bytes is, and of 65 is not', async () => {
    const { authenticator, credential } = await registered()
    const randomOf = (bytes: number) => randomBytes(bytes).toString('base64url')
    const { challenge, response } = await assertionAnswer(authenticator, undefined)
    const named = (id: string) => ({ ...response, id, rawId: id })
    // Read, then refused for naming another credential than the stored one; one byte more is not read.
    assert.equal(randomOf(1023).length, 1364)
    assertRefused(
      await verifyAuthentication(RP, named(randomOf(1023)), challenge, credential, true),
      'credential',
    )
    assertRefused(
      await verifyAuthentication(RP, named(randomOf(1024)), challenge, credential, true),
      'malformed',
    )
    // The user handle is not signed: with the longest one the assertion is accepted.
    const login = await assertionAnswer(authenticator, undefined)
    const userHandle = randomOf(64)
    assert.equal(userHandle.length, 86)
    const longest = withResponse(login.response, { userHandle })
    assert.equal((await verifyAuthentication(RP, longest, login.challenge, credential, true)).ok, true)
    const tooLong = withResponse(login.response, { userHandle: randomOf(65) })
    assertRefused(await verifyAuthentication(RP, tooLong, login.challenge, credential, true), 'malformed')
  })

  test('client data whose type reads like a refusal of the library is malformed, not that refusal', async () => {
    const { authenticator, credential } = await registered()
    // The library's message ends with the type the client wrote: only its start says which check failed.
    for (const type of [
      'Unexpected registration response challenge "',
      'Unexpected authentication response challenge "',
      'Unexpected registration response origin "',
      'Unexpected authentication response origin "',
      'Unexpected RP ID hash',
      'User verification required',
      'User verification was required',
      'User presence was required',
      'User not present',
      'Unexpected public key alg "',
    ]) {
      const registration = await registrationAnswer(authenticatorAt())
      const created = withClientData(registration.response, (data) => ({ ...data, type }))
      assertRefused(await verifyRegistration(RP, created, registration.challenge), 'malformed')
      const login = await assertionAnswer(authenticator, undefined)
      const got = withClientData(login.response, (data) => ({ ...data, type }))
      assertRefused(await verifyAuthentication(RP, got, login.challenge, credential, true), 'malformed')
    }
  })

  test('registration: a truncated, padded, extended or non-CBOR attestation object: malformed', async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const attestation = Buffer.from(response.response.attestationObject, 'base64url')
    const variants = [
      attestation.subarray(0, attestation.length - 1),
      attestation.subarray(0, attestation.length - 8),
      attestation.subarray(0, 60),
      attestation.subarray(0, 20),
      Buffer.alloc(0),
      Buffer.concat([attestation, Buffer.from([0x00])]),
      Buffer.from(isoCBOR.encode(42)),
      Buffer.from(isoCBOR.encode(new Map([['fmt', 'none']]))),
      Buffer.from('{"fmt":"none"}'),
    ]
    for (const bytes of variants) {
      const answer = withResponse(response, { attestationObject: bytes.toString('base64url') })
      assertRefused(await verifyRegistration(RP, answer, challenge), 'malformed')
    }
    for (const attestationObject of ['!!!!', `${response.response.attestationObject}=`, 'A'.repeat(70_000)])
      assertRefused(
        await verifyRegistration(RP, withResponse(response, { attestationObject }), challenge),
        'malformed',
      )
    assert.equal((await verifyRegistration(RP, response, challenge)).ok, true, 'the untouched answer')
  })

  test("registration: an assertion's client data (webauthn.get): malformed", async () => {
    const { authenticator } = await registered()
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const { response: assertion } = await assertionAnswer(authenticator, undefined)
    const mixed = withResponse(response, { clientDataJSON: assertion.response.clientDataJSON })
    assertRefused(await verifyRegistration(RP, mixed, challenge), 'malformed')
  })

  test('assertion: garbage client data, a broken envelope, unreadable authenticator data or signature: malformed', async () => {
    const { authenticator, credential } = await registered()
    const { challenge, response } = await assertionAnswer(authenticator, undefined)
    const answers = [
      ...clientDataVariants.map((clientDataJSON) => withResponse(response, { clientDataJSON })),
      ...envelopes(response),
      withResponse(response, { authenticatorData: 'AAAA' }),
      withResponse(response, { authenticatorData: '%%%%' }),
      withResponse(response, { authenticatorData: `${response.response.authenticatorData}AA` }),
      withResponse(response, { signature: '' }),
      withResponse(response, { signature: 'AAAAAAAA' }),
      withResponse(response, { signature: Buffer.from('not a DER signature at all').toString('base64url') }),
      withResponse(response, { signature: 'A'.repeat(3_000) }),
      withResponse(response, { userHandle: 42 }),
      withResponse(response, { userHandle: 'not base64!' }),
    ]
    for (const answer of answers) {
      const result = await verifyAuthentication(
        RP,
        answer as AuthenticationResponseJSON,
        challenge,
        credential,
        true,
      )
      assertRefused(result, 'malformed')
    }
    assert.equal(
      (await verifyAuthentication(RP, response, challenge, credential, true)).ok,
      true,
      'untouched',
    )
  })

  test("assertion: a registration's answer (webauthn.create): malformed", async () => {
    const { challenge, response } = await registrationAnswer(authenticatorAt())
    const { credential } = await registered()
    const confused = {
      ...response,
      id: credential.credentialId,
      rawId: credential.credentialId,
      response: {
        ...response.response,
        authenticatorData: response.response.authenticatorData,
        signature: 'MEQCIA',
      },
    }
    const result = await verifyAuthentication(
      RP,
      confused as AuthenticationResponseJSON,
      challenge,
      credential,
      true,
    )
    assertRefused(result, 'malformed')
  })

  test('a stored public key that is not a key: malformed, not a throw', async () => {
    const { authenticator, credential } = await registered()
    const { challenge, response } = await assertionAnswer(authenticator, undefined)
    const broken = { ...credential, publicKey: new Uint8Array([0xa0]) }
    assertRefused(await verifyAuthentication(RP, response, challenge, broken, true), 'malformed')
  })
})

describe('the challenge an answer claims', () => {
  test('is the challenge of the options it answers, registration or login', async () => {
    const authenticator = authenticatorAt()
    const registration = await registrationAnswer(authenticator)
    assert.equal(claimedChallengeOf(registration.response), registration.challenge)
    const login = await assertionAnswer(authenticator, undefined)
    assert.equal(claimedChallengeOf(login.response), login.challenge)
  })

  test('is undefined for hostile input, without a throw', () => {
    const encode = (text: string) => Buffer.from(text).toString('base64url')
    const ofClientData = (clientDataJSON: unknown) => ({ response: { clientDataJSON } })
    const hostile: unknown[] = [
      null,
      undefined,
      42,
      'text',
      [],
      {},
      { response: null },
      { response: [] },
      { response: {} },
      ofClientData(42),
      ofClientData(null),
      ofClientData(''),
      ofClientData('%%%%'),
      ofClientData('abcde'),
      ofClientData(`${encode(JSON.stringify({ challenge: newChallenge() }))}==`),
      ofClientData(encode('not json')),
      ofClientData(encode('"just a string"')),
      ofClientData(encode('null')),
      ofClientData(encode('[]')),
      ofClientData(encode('{}')),
      ofClientData(encode('{"challenge":42}')),
      ofClientData(encode('{"challenge":["a"]}')),
      ofClientData(encode(JSON.stringify({ challenge: [newChallenge()] }))),
      ofClientData(encode('{"challenge":""}')),
      ofClientData(encode(JSON.stringify({ challenge: newChallenge().slice(1) }))),
      ofClientData(encode(JSON.stringify({ challenge: `${newChallenge()}A` }))),
      ofClientData(encode(JSON.stringify({ challenge: `${newChallenge().slice(1)}=` }))),
      ofClientData(encode(JSON.stringify({ challenge: `${newChallenge().slice(1)}+` }))),
      ofClientData(encode(JSON.stringify({ challenge: newChallenge(), padding: 'x'.repeat(20_000) }))),
      ofClientData('A'.repeat(1_000_000)),
    ]
    for (const input of hostile)
      assert.equal(
        claimedChallengeOf(input as { response: { clientDataJSON: string } }),
        undefined,
        JSON.stringify(input)?.slice(0, 80),
      )
    const challenge = newChallenge()
    assert.equal(
      claimedChallengeOf({ response: { clientDataJSON: encode(JSON.stringify({ challenge })) } }),
      challenge,
      'the control',
    )
  })
})

describe('the software authenticator refuses what a browser refuses', () => {
  test('an IP address as RP ID, a page not on the RP ID, an http page off localhost', async () => {
    const options = (rpId: string) =>
      registrationOptions({ ...RP, id: rpId }, newAccount(), [], newChallenge())
    await assert.rejects(
      authenticatorAt({ origin: 'http://127.0.0.1:8000' }).register(await options('127.0.0.1')),
      {
        name: 'SecurityError',
      },
    )
    await assert.rejects(authenticatorAt().register(await options('other.example')), {
      name: 'SecurityError',
    })
    await assert.rejects(authenticatorAt().register(await options('ample.com')), { name: 'SecurityError' })
    await assert.rejects(
      authenticatorAt({ origin: 'http://example.com' }).register(await options('example.com')),
      {
        name: 'SecurityError',
      },
    )
    await authenticatorAt({ origin: 'https://app.example.com' }).register(await options('example.com'))
  })

  test('a login with no credential it holds for the site or in allowCredentials', async () => {
    const { authenticator } = await registered()
    const { credential: elsewhere } = await registered()
    const options = await authenticationOptions(RP, [elsewhere], 'preferred', newChallenge())
    await assert.rejects(authenticator.authenticate(options), { name: 'NotAllowedError' })
    const empty = authenticatorAt()
    await assert.rejects(
      empty.authenticate(await authenticationOptions(RP, undefined, 'required', newChallenge())),
      {
        name: 'NotAllowedError',
      },
    )
  })
})
