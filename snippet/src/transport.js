// Requests to the Touchpoint server. Everything is same-origin behind the site's reverse proxy
// (docs/embedding.md), so the server-set HttpOnly cookie travels with each request. The body is
// sent as text/plain: a "simple" request that never needs a CORS preflight.

var RETRIES = 2;

export function post(base, path, body, options) {
  var keepalive = !!(options && options.keepalive);
  var attempt = function (left) {
    return fetch(base + path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'text/plain' },
      credentials: 'include',
      // keepalive lets a close or convert event finish while the page navigates away.
      keepalive: keepalive,
    }).then(
      function (response) {
        if (!response.ok) {
          var error = new Error('touchpoint: ' + path + ' answered ' + response.status);
          error.status = response.status;
          error.retryAfter = +response.headers.get('Retry-After') || 0;
          throw error;
        }
        return response.json();
      },
      function (error) {
        // Only network failures are retried, a bounded number of times with a short backoff.
        if (left <= 0) throw error;
        return new Promise(function (resolve) {
          setTimeout(resolve, 300 * (RETRIES - left + 1));
        }).then(function () {
          return attempt(left - 1);
        });
      },
    );
  };
  return attempt(RETRIES);
}

// For a page being hidden or left: the browser delivers a beacon even after the page is gone.
// A beacon it refuses (too large, queue full) goes as a keepalive request instead.
export function beacon(base, path, body) {
  var sent = false;
  try {
    sent = navigator.sendBeacon(base + path, new Blob([JSON.stringify(body)], { type: 'text/plain' }));
  } catch (error) {
    sent = false;
  }
  return sent ? Promise.resolve() : post(base, path, body, { keepalive: true });
}
