/**
 * The QR code of an `otpauth://` URI (src/auth/totp.ts) as an SVG document, drawn here: the URI
 * carries the TOTP secret, so it never goes to a QR service or a CDN.
 *
 * The `qrcode` package draws one `<svg>` with two `<path>`s, the white background and the dark
 * modules as runs of horizontal strokes, from numbers and fixed colours only: the text encoded
 * never appears in the markup, so the SVG has no script, link or text to escape and can be put
 * inline in a page as it is. About 4 KB for a usual URI (version 8, 57 × 57 modules with the
 * margin). It has a `viewBox` and no size: the page sizes it. It carries the secret as much as
 * the URI does: answer it with `Cache-Control: no-store`.
 */
export async function otpauthQrCodeSvg(uri: string): Promise<string> {
  // Only what this module exists for: no caller turns a user's text into a QR code through it.
  if (!uri.startsWith('otpauth://')) throw new TypeError('expected an otpauth:// URI')
  // Loaded at the first TOTP enrolment: a few MB a server need not carry until then.
  const { default: QRCode } = await import('qrcode')
  return QRCode.toString(uri, {
    type: 'svg',
    // Level M (15 % of the symbol may be unreadable: glare on a screen, a camera at an angle) and
    // the 4-module quiet zone that the standard asks for. Both are the package's defaults today,
    // written out so that a new default cannot change the code silently.
    // Stryker disable next-line StringLiteral: "" falls back to the default, which is M today.
    errorCorrectionLevel: 'M',
    margin: 4,
  })
}
