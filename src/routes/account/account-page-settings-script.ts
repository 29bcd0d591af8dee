/**
 * The second part of /account.js: what a signed-in user sees and changes (second factors,
 * passkeys, sessions). It uses the helpers of the first part (account-page-sign-in-script.ts).
 * (A TypeScript template literal: the code below has no backtick, no dollar-brace and no backslash.)
 */
export const SETTINGS_SCRIPT = `const TOTP_STATES = {
  none: 'Off.',
  pending: 'Set-up started, not confirmed yet.',
  active: 'On: signing in with your password also asks for a code of the app.',
}

function element(tag, text, className) {
  const node = document.createElement(tag)
  node.textContent = text
  if (className) node.className = className
  return node
}

function button(label, work, description) {
  const node = element('button', label)
  node.type = 'button'
  if (description) node.setAttribute('aria-label', description)
  node.addEventListener('click', () => act(node, work))
  return node
}

const dateText = (iso) => new Date(iso).toLocaleString()

async function loadAccount() {
  const [user, factors] = await Promise.all([api('GET', '/current-user'), api('GET', '/mfa')])
  $('user-name').textContent = user.name
  $('user-email').textContent = user.email
  renderFactors(factors)
  await refreshPasskeys()
  await refreshIdentities()
  // An admin who must enrol a second factor may do nothing else first (REQUIRE_MFA_FOR_ADMINS).
  if (factors.enrolment_required) show('Your account needs a second factor: set up an app or add a passkey.', false)
  else await refreshSessions()
}

function renderFactors(status) {
  $('totp-status').textContent = TOTP_STATES[status.totp]
  $('totp-start').hidden = status.totp === 'active' || !$('totp-setup').hidden
  $('totp-disable').hidden = status.totp !== 'active'
  const hasFactor = status.totp === 'active' || status.passkeys > 0
  $('recovery-status').textContent = hasFactor
    ? status.recovery_codes_left + ' unused recovery codes left.'
    : 'You get recovery codes with your first authenticator app or passkey.'
  $('recovery-regenerate').hidden = !hasFactor
}
const refreshFactors = async () => renderFactors(await api('GET', '/mfa'))

/** The server's QR code (an <svg> of <path>s drawn by the qrcode package) as elements of this page. */
function qrCode(markup) {
  const parsed = new DOMParser().parseFromString(markup, 'image/svg+xml')
  const svg = parsed.documentElement
  if (svg.localName !== 'svg' || svg.querySelector(':not(path)')) throw new Error('The QR code cannot be shown: type the key.')
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', 'QR code of the key')
  return document.importNode(svg, true)
}

function showRecoveryCodes(codes) {
  $('recovery-list').replaceChildren(...codes.map((code) => element('li', code)))
  $('recovery-codes').hidden = false
  $('recovery-codes').scrollIntoView({ block: 'nearest' })
}

onClick('totp-start', async () => {
  const enrolment = await api('POST', '/mfa/totp')
  $('totp-secret').textContent = enrolment.secret
  $('totp-setup').hidden = false
  $('totp-qr').replaceChildren(qrCode(enrolment.qr_svg))
  await refreshFactors()
})
onSubmit('totp-confirm-form', async (form) => {
  const answer = await api('POST', '/mfa/totp/confirm', { code: form.elements.code.value.trim() })
  form.reset()
  $('totp-setup').hidden = true
  $('totp-qr').replaceChildren()
  $('totp-secret').textContent = ''
  showRecoveryCodes(answer.recovery_codes)
  show('The authenticator app is on.', true)
  await refreshFactors()
})
onClick('totp-disable', async () => {
  await withReauthentication((proof) => api('DELETE', '/mfa/totp', proof))
  show('The authenticator app is off.', true)
  await refreshFactors()
})
onClick('recovery-regenerate', async () => {
  const answer = await withReauthentication((proof) => api('POST', '/mfa/recovery-codes', proof))
  showRecoveryCodes(answer.recovery_codes)
  show('Here are new recovery codes: the earlier ones no longer work.', true)
  await refreshFactors()
})
onClick('recovery-done', async () => {
  $('recovery-codes').hidden = true
  $('recovery-list').replaceChildren()
})

function passkeyItem(passkey) {
  const item = element('li', '')
  const used = passkey.last_used_at ? 'last used ' + dateText(passkey.last_used_at) : 'not used yet'
  item.append(
    element('strong', passkey.name),
    element('span', ' added ' + dateText(passkey.created_at) + ', ' + used + ' ', 'muted'),
    button('Rename', async () => renameForm(item, passkey), 'Rename ' + passkey.name),
    button('Remove', async () => removePasskey(passkey), 'Remove ' + passkey.name),
  )
  return item
}

function renameForm(item, passkey) {
  const form = document.createElement('form')
  const input = document.createElement('input')
  Object.assign(input, { name: 'name', value: passkey.name, maxLength: 100, required: true })
  input.setAttribute('aria-label', 'New name of ' + passkey.name)
  const save = element('button', 'Save')
  save.type = 'submit'
  form.append(input, save, button('Cancel', async () => item.replaceWith(passkeyItem(passkey))))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    act(save, async () => {
      await api('PATCH', '/passkeys/' + passkey.id, { name: input.value.trim() })
      show('The passkey is renamed.', true)
      await refreshPasskeys()
    })
  })
  item.replaceChildren(form)
  input.focus()
}

async function removePasskey(passkey) {
  await withReauthentication((proof) => api('DELETE', '/passkeys/' + passkey.id, proof))
  show('The passkey “' + passkey.name + '” is removed.', true)
  await Promise.all([refreshPasskeys(), refreshFactors()])
}

async function refreshPasskeys() {
  const { items } = await api('GET', '/passkeys')
  $('passkey-list').replaceChildren(...items.map(passkeyItem))
  if (items.length === 0) $('passkey-list').append(element('li', 'No passkey yet.', 'muted'))
}

onSubmit('passkey-add-form', async (form) => {
  const options = await api('POST', '/passkeys/registration-options')
  const response = await usePasskey(SimpleWebAuthnBrowser.startRegistration, options)
  const name = form.elements.name.value.trim()
  const answer = await api('POST', '/passkeys', name ? { response, name } : { response })
  form.reset()
  show('The passkey “' + answer.passkey.name + '” is added.', true)
  if (answer.recovery_codes) showRecoveryCodes(answer.recovery_codes)
  await Promise.all([refreshPasskeys(), refreshFactors()])
})

function sessionItem(session) {
  const item = element('li', '')
  const where = (session.ip ? ' from ' + session.ip : '') + ', last active ' + dateText(session.last_used_at) + ' '
  item.append(element('strong', session.user_agent || 'Unknown browser'), element('span', where, 'muted'))
  if (session.current) item.append(element('em', '(this browser)'))
  else item.append(button('End', async () => endSession(session.id), 'End this session'))
  return item
}

async function endSession(id) {
  await api('DELETE', '/sessions/' + id)
  show('The session is ended: its device is signed out.', true)
  await refreshSessions()
}

async function refreshSessions() {
  const { items } = await api('GET', '/sessions')
  $('session-list').replaceChildren(...items.map(sessionItem))
}

if (!webAuthn) for (const node of document.querySelectorAll('.passkey-only')) node.hidden = true
signedOut()
`
