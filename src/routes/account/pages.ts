import type { FastifyReply } from 'fastify'

/**
 * The two pages the emailed links open, for deployments without a frontend of their own. Each is
 * static HTML with its script served from its own URL: no inline script, no external asset, so
 * the strict policy below holds. The token never enters the HTML; the script reads it from the
 * address (query or fragment) and posts it to the API.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "connect-src 'self'",
  "style-src 'unsafe-inline'",
  // The forms are sent by the script as JSON; a native submission would have nowhere to go.
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ')

const STYLE = `
  body { font-family: system-ui, sans-serif; line-height: 1.5; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  label { display: block; margin: 1rem 0 0.25rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.5rem; font-size: 1rem; }
  button { margin-top: 1.25rem; padding: 0.5rem 1.25rem; font-size: 1rem; }
  .ok { color: #176f2c; } .error { color: #b00020; }
`

function page(title: string, body: string, scriptPath: string): string {
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>${title}</title>
    <style>${STYLE}</style>
    <script src="${scriptPath}" defer></script>
  </head>
  <body>
    <h1>${title}</h1>
${body}
    <noscript><p class="error">This page needs JavaScript.</p></noscript>
  </body>
</html>
`
}

export const RESET_PASSWORD_SCRIPT_PATH = '/reset-password.js'
export const VERIFY_EMAIL_SCRIPT_PATH = '/verify-email.js'

export function resetPasswordPage(passwordMinLength: number): string {
  return page(
    'Choose a new password',
    `    <form id="reset-form" method="post" hidden>
      <label for="new-password">New password (at least ${passwordMinLength} characters)</label>
      <input id="new-password" name="new_password" type="password" autocomplete="new-password" minlength="${passwordMinLength}" maxlength="1024" required>
      <label for="repeat-password">The same password again</label>
      <input id="repeat-password" name="repeat" type="password" autocomplete="new-password" required>
      <button type="submit">Save the new password</button>
    </form>
    <p id="status" role="status"></p>`,
    RESET_PASSWORD_SCRIPT_PATH,
  )
}

export const VERIFY_EMAIL_PAGE = page(
  'Email verification',
  '    <p id="status" role="status">Verifying your email address…</p>',
  VERIFY_EMAIL_SCRIPT_PATH,
)

/** Shared by both scripts: the token from `?token=` or `#token=`, and a status line. */
const SCRIPT_PRELUDE = `'use strict'
const params = new URLSearchParams(location.search)
const token = params.get('token') || new URLSearchParams(location.hash.slice(1)).get('token')
const statusLine = document.getElementById('status')
function show(text, ok) {
  statusLine.textContent = text
  statusLine.className = ok ? 'ok' : 'error'
}
async function problemText(response) {
  const problem = await response.json().catch(() => null)
  const issue = problem && problem.errors && problem.errors[0]
  if (issue) return 'The ' + issue.field.replace('_', ' ') + ' ' + issue.message + '.'
  return (problem && problem.detail) || 'Something went wrong (' + response.status + '); try again.'
}
`

export const RESET_PASSWORD_SCRIPT = `${SCRIPT_PRELUDE}
const form = document.getElementById('reset-form')
if (!token) {
  show('This link is incomplete: open the link from the email again, or ask for a new one.', false)
} else {
  form.hidden = false
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const password = form.elements.new_password.value
    if (password !== form.elements.repeat.value) return show('The two passwords are not the same.', false)
    const button = form.querySelector('button')
    button.disabled = true
    show('Saving…', true)
    try {
      const response = await fetch('/reset-password', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, new_password: password }),
      })
      if (response.status === 204) {
        form.hidden = true
        show('Your password is changed, and every session was logged out. Log in with the new password.', true)
      } else {
        show(await problemText(response), false)
      }
    } catch {
      show('The server could not be reached; try again.', false)
    } finally {
      button.disabled = false
    }
  })
}
`

export const VERIFY_EMAIL_SCRIPT = `${SCRIPT_PRELUDE}
async function verify() {
  if (!token) return show('This link is incomplete: open the link from the email again.', false)
  try {
    const response = await fetch('/verify-email', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    })
    if (response.status === 204) show('Your email address is verified. You can close this page.', true)
    else show(await problemText(response), false)
  } catch {
    show('The server could not be reached; reload the page to try again.', false)
  }
}
verify()
`

/**
 * The page's address holds a token: it must not reach other sites (Referer), caches or frames.
 */
export function sendPage(reply: FastifyReply, html: string) {
  return reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .send(html)
}

export function sendScript(reply: FastifyReply, script: string) {
  return reply
    .type('text/javascript; charset=utf-8')
    .header('cache-control', 'public, max-age=3600')
    .header('x-content-type-options', 'nosniff')
    .send(script)
}
