import { tokenFromFragment } from './signaling.js';

/**
 * On the viewer (/): a token given as `/#token=...` is carried to the links to other pages, so
 * that it is typed once. The fragment never leaves the browser.
 */
const token = tokenFromFragment();
if (token !== undefined) {
  for (const link of document.querySelectorAll<HTMLAnchorElement>('a[data-page]'))
    link.hash = new URLSearchParams({ token }).toString();
}
