import { SETTINGS_SCRIPT } from './account-page-settings-script.js'
import { PROVIDERS_SCRIPT } from './account-page-providers-script.js'
import { SIGN_IN_SCRIPT } from './account-page-sign-in-script.js'

/**
 * The account page (GET /account): signing in (password, second factor, passkey, identity
 * providers) and the user's second factors, passkeys, linked providers and sessions. Static
 * HTML; its code comes from its own URL and the WebAuthn helper from the server's copy of
 * @simplewebauthn/browser, so the strict policy of pages.ts holds (no inline script, nothing from another site). The QR code of a TOTP enrolment
 * is the server's SVG, inserted as elements: no image source is needed.
 */
export const ACCOUNT_SCRIPT_PATH = '/account.js'
export const WEBAUTHN_SCRIPT_PATH = '/vendor/simplewebauthn-browser.js'

const STYLE = `
  body { font-family: system-ui, sans-serif; line-height: 1.5; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
  label { display: block; margin: 0.75rem 0 0.25rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.45rem; font-size: 1rem; }
  button { margin: 0.75rem 0.5rem 0 0; padding: 0.4rem 1rem; font-size: 1rem; }
  li button { margin-top: 0.25rem; padding: 0.2rem 0.6rem; font-size: 0.9rem; }
  li form { display: flex; gap: 0.5rem; align-items: end; } li form input { flex: 1; }
  ul, ol { padding-left: 1.25rem; } li { margin: 0.5rem 0; }
  #status { position: sticky; top: 0; background: #fff; margin: 0; padding: 0.25rem 0; min-height: 1.5rem; }
  #totp-qr svg { width: 12rem; height: 12rem; display: block; }
  #totp-secret, #recovery-list { font-family: ui-monospace, monospace; font-size: 1.05rem; word-break: break-all; }
  .note { background: #fff6d6; padding: 0.5rem 0.75rem; }
  .muted { color: #666; } .ok { color: #176f2c; } .error { color: #b00020; }
  [hidden] { display: none !important; }
`

const SIGN_IN_HTML = `    <section id="sign-in" hidden>
      <h2>Sign in</h2>
      <form id="login-form">
        <label for="login-username">Name or email</label>
        <input id="login-username" name="username" autocomplete="username" maxlength="320" required>
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" maxlength="1024" required>
        <button type="submit">Sign in</button>
      </form>
      <button id="passkey-login" type="button" class="passkey-only">Sign in with a passkey</button>
      <div id="provider-sign-in"></div>
    </section>
    <section id="second-step" hidden>
      <h2>Second step</h2>
      <p>Your password is right. Now show it is you with one of these.</p>
      <form id="mfa-code-form" hidden>
        <label for="mfa-code">Code of your authenticator app</label>
        <input id="mfa-code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required>
        <button type="submit">Verify the code</button>
      </form>
      <button id="mfa-passkey" type="button" class="passkey-only" hidden>Use a passkey</button>
      <form id="mfa-recovery-form" hidden>
        <label for="mfa-recovery">Or one of your recovery codes</label>
        <input id="mfa-recovery" name="recovery_code" autocomplete="off" maxlength="64" required>
        <button type="submit">Use the recovery code</button>
      </form>
      <button id="mfa-cancel" type="button">Start again</button>
    </section>`

const ACCOUNT_HTML = `    <div id="account" hidden>
      <p>Signed in as <strong id="user-name"></strong> (<span id="user-email"></span>)</p>
      <button id="sign-out" type="button">Sign out</button>
      <h2>Authenticator app</h2>
      <p id="totp-status"></p>
      <button id="totp-start" type="button" hidden>Set up an authenticator app</button>
      <button id="totp-disable" type="button" hidden>Turn off the authenticator app</button>
      <div id="totp-setup" hidden>
        <p>Scan this QR code with your authenticator app, or type this key in it:</p>
        <div id="totp-qr"></div>
        <p><code id="totp-secret"></code></p>
        <form id="totp-confirm-form">
          <label for="totp-code">The 6-digit code the app shows now</label>
          <input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required>
          <button type="submit">Turn on</button>
        </form>
      </div>
      <h2>Recovery codes</h2>
      <p id="recovery-status"></p>
      <button id="recovery-regenerate" type="button" hidden>Get new recovery codes</button>
      <div id="recovery-codes" hidden>
        <p class="note">Keep these recovery codes somewhere safe (printed, or in a password manager): each one
          signs you in once if you lose your authenticator app or passkeys. They are not shown again.</p>
        <ol id="recovery-list"></ol>
        <button id="recovery-done" type="button">I have saved them</button>
      </div>
      <h2>Passkeys</h2>
      <ul id="passkey-list"></ul>
      <form id="passkey-add-form" class="passkey-only">
        <label for="passkey-name">Name of a new passkey (optional)</label>
        <input id="passkey-name" name="name" maxlength="100" placeholder="e.g. Work laptop">
        <button type="submit">Add a passkey</button>
      </form>
      <section id="identities" hidden>
        <h2>Other sign-in providers</h2>
        <ul id="identity-list"></ul>
        <div id="identity-link"></div>
      </section>
      <h2>Sessions</h2>
      <p class="muted">Where you are signed in.</p>
      <ul id="session-list"></ul>
    </div>
    <dialog id="password-dialog">
      <form id="password-form">
        <p>This change needs your password.</p>
        <label for="reauth-password">Password</label>
        <input id="reauth-password" name="password" type="password" autocomplete="current-password" maxlength="1024" required>
        <button type="submit">Confirm</button>
        <button id="password-cancel" type="button">Cancel</button>
      </form>
    </dialog>`

export const ACCOUNT_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>Your account</title>
    <style>${STYLE}</style>
    <script src="${WEBAUTHN_SCRIPT_PATH}" defer></script>
    <script src="${ACCOUNT_SCRIPT_PATH}" defer></script>
  </head>
  <body>
    <h1>Your account</h1>
    <p id="status" role="status"></p>
${SIGN_IN_HTML}
${ACCOUNT_HTML}
    <noscript><p class="error">This page needs JavaScript.</p></noscript>
  </body>
</html>
`

/** The parts run as one script, in this order (the later parts use the sign-in part's helpers). */
export const ACCOUNT_SCRIPT = `${SIGN_IN_SCRIPT}\n${SETTINGS_SCRIPT}\n${PROVIDERS_SCRIPT}`
