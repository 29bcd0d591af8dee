/**
 * The third part of /account.js: signing in with the identity providers of OIDC_PROVIDERS, and
 * linking and unlinking them. A sign-in leaves the page for the provider and comes back to it with
 * a one-time code: the PKCE verifier that code needs waits in this tab's sessionStorage (never the
 * token, which lives in a variable only). A link keeps the page signed in: the provider opens in a
 * window of its own, whose return page hands the code back through a BroadcastChannel (the
 * provider's pages may cut the window's link to its opener), and this page finishes the link with
 * the verifier it kept in memory. The code leaves the address bar at once.
 * (A TypeScript template literal: the code below has no backtick, no dollar-brace and no backslash.)
 */
export const PROVIDERS_SCRIPT = `const PROVIDER_FLOW_KEY = 'fastauth.provider-sign-in'
const LINK_CHANNEL = 'fastauth.provider-link'
let providers = []
let pendingLink = null

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).split('+').join('-').split('/').join('_').split('=').join('')
}

function newVerifier() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)))
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return base64url(new Uint8Array(digest))
}

const accountAddress = () => location.origin + location.pathname

async function startProviderSignIn(provider) {
  const verifier = newVerifier()
  sessionStorage.setItem(PROVIDER_FLOW_KEY, JSON.stringify({ provider: provider.id, verifier }))
  const query = new URLSearchParams({
    code_challenge: await challengeOf(verifier),
    code_challenge_method: 'S256',
    return_to: accountAddress(),
  })
  location.assign(provider.login_url + '?' + query)
}

async function loadProviders() {
  try {
    providers = (await api('GET', '/login/providers')).providers
  } catch {
    providers = []
  }
  $('provider-sign-in').replaceChildren(
    ...providers.map((provider) => button('Sign in with ' + provider.name, async () => startProviderSignIn(provider))),
  )
}

function identityItem(identity) {
  const item = element('li', '')
  const what = identity.email ? ' as ' + identity.email : ''
  item.append(element('strong', identity.provider_name), element('span', what + ' ', 'muted'))
  item.append(
    button('Unlink', async () => unlinkProvider(identity), 'Unlink ' + identity.provider_name),
  )
  return item
}

async function refreshIdentities() {
  const { items } = await api('GET', '/users/me/identities')
  $('identity-list').replaceChildren(...items.map(identityItem))
  const linked = new Set(items.map((identity) => identity.provider))
  $('identity-link').replaceChildren(
    ...providers
      .filter((provider) => !linked.has(provider.id))
      .map((provider) => button('Link ' + provider.name, async () => linkProvider(provider))),
  )
  $('identities').hidden = providers.length === 0 && items.length === 0
}

async function linkProvider(provider) {
  const verifier = newVerifier()
  const challenge = await challengeOf(verifier)
  const started = await withReauthentication((proof) =>
    api('POST', '/users/me/identities/' + provider.id + '/authorization', {
      code_challenge: challenge,
      code_challenge_method: 'S256',
      return_to: accountAddress() + '?link=1',
      ...proof,
    }),
  )
  const popup = window.open(started.authorization_url, 'fastauth-provider-link', 'popup,width=520,height=680')
  if (!popup) throw new Error('Allow pop-up windows for this site to link a provider.')
  pendingLink = { provider: provider.id, verifier }
  show('Sign in with ' + provider.name + ' in the window that opened.', true)
}

async function finishLink(answer) {
  const link = pendingLink
  if (!link || answer.provider !== link.provider) return
  pendingLink = null
  if (answer.error) throw new Error(answer.error_description || 'The provider refused the link.')
  await api('POST', '/users/me/identities/' + link.provider, { code: answer.code, code_verifier: link.verifier })
  show('The provider is linked: you can sign in with it.', true)
  await refreshIdentities()
}

async function unlinkProvider(identity) {
  await api('DELETE', '/users/me/identities/' + identity.provider)
  show(identity.provider_name + ' is unlinked.', true)
  await refreshIdentities()
}

/** The page the provider sent the browser back to: a sign-in to finish, or a link to hand back. */
async function providerReturn() {
  const params = new URLSearchParams(location.search)
  if (!params.has('code') && !params.has('error')) return
  history.replaceState(null, '', location.pathname)
  const answer = {
    provider: params.get('provider'),
    code: params.get('code'),
    error: params.get('error'),
    error_description: params.get('error_description'),
  }
  if (params.get('link') === '1') {
    const channel = new BroadcastChannel(LINK_CHANNEL)
    channel.postMessage(answer)
    channel.close()
    showOnly('')
    show('Done: this window can be closed.', true)
    window.close()
    return
  }
  const flow = JSON.parse(sessionStorage.getItem(PROVIDER_FLOW_KEY) || 'null')
  sessionStorage.removeItem(PROVIDER_FLOW_KEY)
  if (answer.error) throw new Error(answer.error_description || 'The provider refused the sign-in.')
  if (!flow || !answer.provider) throw new Error('This sign-in was not started in this tab: start again.')
  const provider = providers.find((candidate) => candidate.id === flow.provider)
  if (!provider || flow.provider !== answer.provider) throw new Error('This sign-in was not started in this tab: start again.')
  await signedIn(await api('POST', '/login/' + provider.id + '/token', { code: answer.code, code_verifier: flow.verifier }))
}

const linkChannel = new BroadcastChannel(LINK_CHANNEL)
linkChannel.addEventListener('message', (event) => {
  finishLink(event.data).catch((error) => show((error && error.message) || String(error), false))
})

loadProviders()
  .then(providerReturn)
  .catch((error) => show((error && error.message) || String(error), false))
`
