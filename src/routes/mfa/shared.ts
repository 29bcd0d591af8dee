import type { AuthenticationResponseJSON } from '../../auth/webauthn.js'
import type { SecondFactorProof } from '../../services/factor-proofs.js'

/** The second factor a request body carries: a TOTP code, a recovery code or a passkey assertion. */
export function proofOf(
  body: { code: string } | { recovery_code: string } | { passkey: unknown },
): SecondFactorProof {
  if ('code' in body) return { code: body.code }
  if ('recovery_code' in body) return { recoveryCode: body.recovery_code }
  // The schema checked its shape; the WebAuthn module checks everything in it.
  return { passkey: body.passkey as AuthenticationResponseJSON }
}
