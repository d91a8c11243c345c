// The page's status line (an ARIA live region): results and refusals of
// steering actions, and failed reads.

import { h, replace } from './dom.js';
import { ApiError } from './api.js';

export function notify(message, kind = 'info') {
  const n = document.getElementById('notice');
  replace(n, message ? h('span', { class: kind }, message) : '');
}

export function report(err, what) {
  const text = err instanceof ApiError
    ? `${what}: ${err.status} ${err.code}: ${err.message}` : `${what}: ${err}`;
  notify(text, 'error');
}
