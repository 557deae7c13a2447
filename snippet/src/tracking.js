// Behaviour tracking (docs/embedding.md#tracking): visible dwell time, the deepest scroll, clicks
// on elements marked data-tp-track and custom events, queued and sent in batches: every few
// seconds while the page is open, and with sendBeacon when it is hidden or left. Nothing is
// queued while `allowed()` is false (no measurement or personalisation consent).

var LISTEN = { capture: true, passive: true };
var FLUSH_MS = 5000;
var BATCH = 50; // the server takes at most 50 events per request
var QUEUE = 200; // a page that tracks in a loop must not grow the queue without bound
// Batches the server could not store (503: its disk is full; 429) or could not be reached for
// are kept, at most this many, and sent again after its Retry-After (30 s when it gives none).
var UNSENT = 4;
var NAME = /^[A-Za-z0-9_-]{1,64}$/;

// Custom event properties: at most 10 flat values, as the server accepts them.
function clean(props) {
  var out = {};
  var count = 0;
  Object.keys(props && typeof props === 'object' ? props : {}).forEach(function (key) {
    var value = props[key];
    var type = typeof value;
    if (count >= 10 || !NAME.test(key)) return;
    if (type === 'string') value = value.slice(0, 256);
    else if (!(type === 'boolean' || (type === 'number' && isFinite(value)))) return;
    out[key] = value;
    count++;
  });
  return out;
}

// send(events, leaving): deliver one batch, a promise; `leaving` when the page may be gone next.
export function tracker(send, allowed, warn) {
  var queue = [];
  var unsent = [];
  var retry = 0;
  var timer = 0;
  var path = location.pathname;
  var visibleSince = 0; // when the page last became visible; 0 while hidden
  var dwell = 0; // visible milliseconds not reported yet
  var depth = 0; // deepest scroll of this page view, in percent of the document
  var reported = 0; // the depth last reported
  var frame = 0;

  var visible = function () {
    return document.visibilityState === 'visible';
  };
  var add = function (event) {
    if (!allowed()) return;
    event.path = path;
    if (queue.length < QUEUE) queue.push(event);
    timer = timer || setTimeout(flush, FLUSH_MS);
  };
  // The page view's dwell time and depth so far, as events.
  var summarise = function () {
    var now = Date.now();
    if (visibleSince) dwell += now - visibleSince;
    visibleSince = visible() ? now : 0;
    var seconds = Math.floor(dwell / 1000);
    if (seconds > 0) {
      add({ type: 'dwell', value: seconds });
      dwell -= seconds * 1000;
    }
    if (depth > reported) {
      add({ type: 'scroll', value: depth });
      reported = depth;
    }
  };
  var keep = function (batch, error) {
    var status = error && error.status;
    if (status && status !== 503 && status !== 429) return warn(error); // refused: never again
    unsent.push(batch);
    if (unsent.length > UNSENT) unsent.shift();
    retry = retry || setTimeout(function () {
      retry = 0;
      flush(false);
    }, Math.min(300, (error && error.retryAfter) || 30) * 1000);
  };
  var deliver = function (batch, leaving) {
    send(batch, leaving).catch(function (error) {
      if (leaving) warn(error);
      else keep(batch, error);
    });
  };
  var flush = function (leaving) {
    clearTimeout(timer);
    timer = 0;
    leaving = leaving === true;
    // Withdrawn consent drops what is queued and what waits to be sent again.
    if (!allowed()) queue = unsent = [];
    unsent.splice(0).forEach(function (batch) {
      deliver(batch, leaving);
    });
    while (queue.length) deliver(queue.splice(0, BATCH), leaving);
  };
  var measure = function () {
    frame = 0;
    var root = document.documentElement;
    var seen = ((window.pageYOffset + window.innerHeight) / Math.max(root.scrollHeight, 1)) * 100;
    depth = Math.max(depth, Math.min(100, Math.round(seen)));
  };
  var leave = function () {
    summarise();
    flush(true);
  };

  document.addEventListener('scroll', function () {
    frame = frame || requestAnimationFrame(measure);
  }, LISTEN);
  document.addEventListener('click', function (event) {
    var target = event.target && event.target.closest && event.target.closest('[data-tp-track]');
    if (!target) return;
    var name = target.getAttribute('data-tp-track') || (target.textContent || '').trim();
    add({ type: 'click', name: name.slice(0, 64) });
  }, LISTEN);
  document.addEventListener('visibilitychange', function () {
    if (visible()) visibleSince = Date.now();
    else leave();
  });
  window.addEventListener('pagehide', leave);
  visibleSince = visible() ? Date.now() : 0;
  measure();

  return {
    event: function (name, props, type) {
      add({ type: type || 'custom', name: name.slice(0, 64), props: clean(props) });
    },
    // A single-page app moved to `next`: the last view's time and depth are reported under
    // its own path, and the new view starts from zero.
    navigate: function (next) {
      summarise();
      path = next;
      dwell = depth = reported = 0;
      measure();
      flush(false);
    },
    flush: flush,
  };
}
