/** The product's name and icon, as the landing page, the docs and the browser's tab show them. */
export const PRODUCT_NAME = 'FastAuth API'

/** A key in a rounded square: the icon of the tab (/favicon.ico) and of the docs' top bar. */
export const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="${PRODUCT_NAME}">
<rect width="64" height="64" rx="14" fill="#1f4f8f"/>
<circle cx="24" cy="32" r="11" fill="none" stroke="#fff" stroke-width="6"/>
<path d="M35 32h20v9M47 32v7" fill="none" stroke="#fff" stroke-width="6" stroke-linecap="round" stroke-linejoin="round"/>
</svg>
`
