/**
 * The QR code of an otpauth URI (src/auth/qr-code.ts): an SVG document of exactly the shape that
 * is safe to put inline in a page (one <svg>, two <path>s, numbers and fixed colours: no script,
 * link, text or event handler), small, and drawing the very symbol of the URI. The symbol is
 * checked module by module against the one the `qrcode` package computes for the URI at level M
 * (decoding it independently would need a QR decoder, which the project does not carry).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import QRCode from 'qrcode'
import { otpauthQrCodeSvg } from '../../src/auth/qr-code.js'
import { generateTotpSecret, totpUri } from '../../src/auth/totp.js'

const MARGIN = 4
const uri = totpUri(generateTotpSecret(), { issuer: 'FastAuth API', label: 'alice@example.com' })

/**
 * The whole document, as the package writes it: anything else (an element, an attribute, text)
 * fails to match. Group 1 is the side of the view box, group 2 the dark modules' path.
 */
const SVG_DOCUMENT =
  /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1" shape-rendering="crispEdges"><path fill="#ffffff" d="M0 0h\1v\1H0z"\/><path stroke="#000000" d="([Mmh0-9. ]+)"\/><\/svg>\n$/

/** The dark modules the path draws, row by row, without the margin. */
function modulesDrawn(path: string, side: number): boolean[][] {
  const size = side - 2 * MARGIN
  const rows = Array.from({ length: size }, () => Array<boolean>(size).fill(false))
  let x = 0
  let y = 0
  for (const [, command, first, second] of path.matchAll(/([Mmh])([0-9.]+)(?: ([0-9.]+))?/g)) {
    const [a, b] = [Number(first), Number(second ?? 0)]
    if (command === 'M') [x, y] = [a, b]
    else if (command === 'm') [x, y] = [x + a, y + b]
    else {
      // A horizontal stroke one module wide, centred on the row's middle (y = row + 0.5).
      const row = rows[y - 0.5 - MARGIN]!
      for (let column = x - MARGIN; column < x - MARGIN + a; column++) row[column] = true
      x += a
    }
  }
  return rows
}

/** The symbol the package computes for `text`, row by row. */
function symbolOf(text: string, errorCorrectionLevel: 'L' | 'M'): boolean[][] {
  const { modules } = QRCode.create(text, { errorCorrectionLevel })
  return Array.from({ length: modules.size }, (_, row) =>
    Array.from({ length: modules.size }, (_, column) => modules.get(row, column) === 1),
  )
}

test('the SVG is one <svg> with a background and one path of dark modules, nothing else', async () => {
  const svg = await otpauthQrCodeSvg(uri)
  const match = SVG_DOCUMENT.exec(svg)
  assert.ok(match, `unexpected markup: ${svg.slice(0, 200)}`)
})

test('no script, event handler, link, text or the URI itself anywhere in the markup', async () => {
  const svg = await otpauthQrCodeSvg(uri)
  assert.doesNotMatch(svg, /script|\bon[a-z]+=|href|<text|<foreignObject|<!|url\(/i)
  assert.equal(svg.includes('otpauth'), false)
  assert.equal(svg.includes(new URL(uri).searchParams.get('secret')!), false, 'the secret is not in the text')
  assert.equal((svg.match(/</g) ?? []).length, 4, 'svg, two paths and the closing tag')
})

test('it draws, module by module, the level-M symbol of the URI with a 4-module margin', async () => {
  const svg = await otpauthQrCodeSvg(uri)
  const [, side, path] = SVG_DOCUMENT.exec(svg)!
  const symbol = symbolOf(uri, 'M')
  assert.equal(Number(side), symbol.length + 2 * MARGIN, 'the view box is the symbol and its margins')
  assert.deepEqual(modulesDrawn(path!, Number(side)), symbol)
  // Level L would draw another symbol for the same URI: the comparison above tells them apart.
  assert.notDeepEqual(symbolOf(uri, 'L'), symbol)
})

test('another URI, another drawing', async () => {
  const other = totpUri(generateTotpSecret(), { issuer: 'FastAuth API', label: 'alice@example.com' })
  const [, side, path] = SVG_DOCUMENT.exec(await otpauthQrCodeSvg(other))!
  assert.deepEqual(modulesDrawn(path!, Number(side)), symbolOf(other, 'M'))
  assert.notDeepEqual(modulesDrawn(path!, Number(side)), symbolOf(uri, 'M'))
})

test('small: under 6 KB for a usual URI, under 10 KB for a long account name', async () => {
  const svg = await otpauthQrCodeSvg(uri)
  assert.ok(svg.length < 6 * 1024, `${svg.length} bytes`)
  const long = totpUri(generateTotpSecret(), {
    issuer: 'FastAuth API',
    label: `${'a'.repeat(100)}@example.com`,
  })
  const longSvg = await otpauthQrCodeSvg(long)
  assert.ok(longSvg.length < 10 * 1024, `${longSvg.length} bytes`)
})

test('only otpauth URIs: any other text is a TypeError', async () => {
  for (const text of [
    'https://example.com/',
    'javascript:alert(1)',
    '',
    'OTPAUTH://totp/x',
    ' otpauth://totp/x',
  ])
    await assert.rejects(otpauthQrCodeSvg(text), { name: 'TypeError', message: 'expected an otpauth:// URI' })
  assert.match(await otpauthQrCodeSvg('otpauth://totp/x?secret=AAAA'), SVG_DOCUMENT)
})
