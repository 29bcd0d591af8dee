/**
 * The first part of /account.js: talking to the API, and signing in and out. Plain DOM
 * JavaScript (ES2020). The access token lives in a variable only, never in storage: a reload
 * asks to sign in again. Text from the API is written with textContent, never as HTML.
 * (A TypeScript template literal: the code below has no backtick, no dollar-brace and no backslash.)
 */
export const SIGN_IN_SCRIPT = `'use strict'
const $ = (id) => document.getElementById(id)
const webAuthn = typeof SimpleWebAuthnBrowser === 'object' && SimpleWebAuthnBrowser.browserSupportsWebAuthn()
let accessToken = null
let mfaToken = null

function show(text, ok) {
  $('status').textContent = text
  $('status').className = ok ? 'ok' : 'error'
}

/** A refusal of the API: its problem+json body, and a sentence for the person. */
class ApiError extends Error {
  constructor(status, problem) {
    const issue = problem && problem.errors && problem.errors[0]
    let text = (problem && problem.detail) || 'Something went wrong (' + status + '); try again.'
    if (issue && status === 422 && text.includes('see errors'))
      text = 'The ' + issue.field.split('_').join(' ') + ' ' + issue.message + '.'
    super(text)
    this.problem = problem || {}
  }
}

async function api(method, path, body) {
  const headers = {}
  if (accessToken) headers.authorization = 'Bearer ' + accessToken
  if (body !== undefined) headers['content-type'] = 'application/json'
  let response
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new Error('The server could not be reached; try again.')
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null)
  if (response.ok) return data
  if (response.status === 401 && accessToken) {
    signedOut()
    throw new Error('Your session has ended: sign in again.')
  }
  throw new ApiError(response.status, data)
}

/** Runs what a button does: the button is off meanwhile, and a failure is shown. */
async function act(button, work) {
  button.disabled = true
  show('', true)
  try {
    await work()
  } catch (error) {
    show((error && error.message) || String(error), false)
  } finally {
    button.disabled = false
  }
}

function onClick(id, work) {
  const button = $(id)
  button.addEventListener('click', () => act(button, work))
}

function onSubmit(id, work) {
  const form = $(id)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    act(form.querySelector('button[type=submit]'), () => work(form))
  })
}

/** A WebAuthn ceremony through @simplewebauthn/browser (start: startRegistration or startAuthentication). */
async function usePasskey(start, optionsJSON) {
  try {
    return await start({ optionsJSON })
  } catch (error) {
    if (error && error.name === 'NotAllowedError') throw new Error('No passkey was used: cancelled or timed out.')
    throw error
  }
}

/** Resolves to the password typed in the dialog, or null when it is cancelled. */
function askPassword() {
  const dialog = $('password-dialog')
  const form = $('password-form')
  form.reset()
  dialog.showModal()
  return new Promise((resolve) => {
    const finish = (password) => {
      form.removeEventListener('submit', submitted)
      dialog.removeEventListener('close', closed)
      dialog.close()
      resolve(password)
    }
    const submitted = (event) => {
      event.preventDefault()
      finish(form.elements.password.value)
    }
    const closed = () => finish(null)
    form.addEventListener('submit', submitted)
    dialog.addEventListener('close', closed)
  })
}
$('password-cancel').addEventListener('click', () => $('password-dialog').close())

/** A change that may need re-authentication: tried without, then with the password if the API asks. */
async function withReauthentication(send) {
  try {
    return await send({})
  } catch (error) {
    if (!(error instanceof ApiError) || error.problem.error !== 'reauthentication_required') throw error
    const password = await askPassword()
    if (password === null) throw new Error('Cancelled: nothing was changed.')
    return send({ password })
  }
}

function showOnly(id) {
  for (const section of ['sign-in', 'second-step', 'account']) $(section).hidden = section !== id
}

async function signedIn(pair) {
  accessToken = pair.access_token
  mfaToken = null
  for (const id of ['login-form', 'mfa-code-form', 'mfa-recovery-form']) $(id).reset()
  showOnly('account')
  await loadAccount()
}

function signedOut() {
  accessToken = null
  mfaToken = null
  for (const id of ['passkey-list', 'session-list', 'recovery-list', 'totp-qr', 'identity-list', 'identity-link'])
    $(id).replaceChildren()
  $('totp-secret').textContent = ''
  $('totp-setup').hidden = true
  $('recovery-codes').hidden = true
  showOnly('sign-in')
}

function askSecondFactor(challenge) {
  mfaToken = challenge.mfa_token
  const factors = challenge.factors || []
  $('mfa-code-form').hidden = !factors.includes('totp')
  $('mfa-recovery-form').hidden = !factors.includes('recovery_code')
  $('mfa-passkey').hidden = !factors.includes('passkey') || !webAuthn
  $('login-form').reset()
  showOnly('second-step')
}

onSubmit('login-form', async (form) => {
  const credentials = { username: form.elements.username.value.trim(), password: form.elements.password.value }
  try {
    await signedIn(await api('POST', '/login', credentials))
  } catch (error) {
    if (error instanceof ApiError && error.problem.error === 'mfa_required') return askSecondFactor(error.problem)
    throw error
  }
})
onSubmit('mfa-code-form', async (form) => {
  const code = form.elements.code.value.trim()
  await signedIn(await api('POST', '/login/mfa', { mfa_token: mfaToken, code }))
})
onSubmit('mfa-recovery-form', async (form) => {
  const recoveryCode = form.elements.recovery_code.value.trim()
  await signedIn(await api('POST', '/login/mfa', { mfa_token: mfaToken, recovery_code: recoveryCode }))
})
onClick('mfa-passkey', async () => {
  const options = await api('POST', '/login/mfa/passkey-options', { mfa_token: mfaToken })
  const passkey = await usePasskey(SimpleWebAuthnBrowser.startAuthentication, options)
  await signedIn(await api('POST', '/login/mfa', { mfa_token: mfaToken, passkey }))
})
onClick('mfa-cancel', async () => signedOut())
onClick('passkey-login', async () => {
  const options = await api('POST', '/login/passkey/options')
  const response = await usePasskey(SimpleWebAuthnBrowser.startAuthentication, options)
  await signedIn(await api('POST', '/login/passkey', { response }))
})
onClick('sign-out', async () => {
  await api('POST', '/logout')
  signedOut()
  show('You are signed out.', true)
})
`
