// Exit intent (docs/exit-intent.md#exit-intent), from three signals a campaign can switch off
// one by one:
//   desktop: the pointer leaves the document upwards through its top edge, towards the tab bar,
//     the address bar or the close button, and stays out for a moment;
//   mobile: on a touch screen, a fast swipe back up after reading down the page;
//   tab_return: the visitor comes back to the tab after a few seconds in another one.
// Never from link or button clicks, <select> lists, autocomplete lists, a fixed header or a
// context menu; the back button is never touched. Returns a function that disarms it all.

var LISTEN = { capture: true, passive: true };
var TOP = 10; // px: leaving at or above this clientY is leaving through the top edge
var GRACE = 150; // ms the pointer may come back within, cancelling the exit
// A real exit moves up with some speed: the pointer rose at least RISE px over its last RECENT
// ms of movement, up to where it left. A pointer drifting out of the top (Chromium reports such
// a mouseout at clientY -1, above the last mousemove) rises a pixel or two at most.
var RECENT = 150;
var RISE = 20;
var MENU = 1000; // ms after a context menu opened during which leaving does not count
var FLICK = 250; // px scrolled back up ...
var FLICK_MS = 300; // ... within this many ms is a fast swipe up
var READ = 0.25; // share of the page scrolled through before a swipe up counts
var SWIPE_MS = 1000; // a scroll counts as the visitor's own this long after a touchmove
var AWAY = 3000; // ms away from the tab before a return counts

// `samples` ([position, time] pairs) of the last `ms` before `now`.
function recent(samples, ms, now) {
  return samples.filter(function (sample) {
    return now - sample[1] <= ms;
  });
}

// The largest position among `samples` (-Infinity for none).
function peak(samples) {
  return Math.max.apply(Math, samples.map(function (sample) {
    return sample[0];
  }));
}

export function onExitIntent(options, fire) {
  var armedAt = Date.now() + (options.min_seconds || 0) * 1000;
  var touch = matchMedia('(hover: none), (pointer: coarse)').matches;
  var stops = [];
  var timer = 0;
  var on = function (target, type, handler) {
    target.addEventListener(type, handler, LISTEN);
    stops.push(function () {
      target.removeEventListener(type, handler, LISTEN);
    });
  };
  var go = function () {
    if (Date.now() < armedAt) return;
    disarm();
    fire();
  };
  var disarm = function () {
    clearTimeout(timer);
    stops.forEach(function (stop) {
      stop();
    });
  };

  if (options.desktop !== false && !touch) {
    var path = []; // [clientY, time] of the pointer's last RECENT ms
    var movedAt = 0;
    var menuAt = 0; // when a context menu opened; pointer events pause while it is open
    var back = function () {
      clearTimeout(timer);
    };
    on(document, 'mousemove', function (event) {
      movedAt = Date.now();
      path = recent(path, RECENT, movedAt);
      path.push([event.clientY, movedAt]);
      back();
    });
    on(document, 'mouseover', back);
    on(document, 'contextmenu', function () {
      menuAt = movedAt = Date.now();
    });
    on(document, 'mouseout', function (event) {
      var now = Date.now();
      if (
        event.relatedTarget || // onto another element: a fixed header, a menu, an iframe
        event.clientY > TOP ||
        peak(recent(path, RECENT, now)) - event.clientY < RISE || // not moving up, or too slowly
        (menuAt && (now - menuAt < MENU || movedAt === menuAt)) ||
        /^(SELECT|OPTION)$/.test(event.target.nodeName) // into an open list, in some browsers
      ) return;
      clearTimeout(timer);
      timer = setTimeout(go, GRACE);
    });
  }

  if (options.mobile !== false && touch) {
    var deepest = 0;
    var swipedAt = 0;
    var samples = []; // [scroll position, time] over the last FLICK_MS
    on(document, 'touchmove', function () {
      swipedAt = Date.now();
    });
    on(window, 'scroll', function () {
      var now = Date.now();
      var top = window.pageYOffset;
      var max = document.documentElement.scrollHeight - window.innerHeight;
      if (max > 0) deepest = Math.max(deepest, top / max);
      samples = recent(samples, FLICK_MS, now);
      samples.push([top, now]);
      // A jump to the top from a link or script is not a swipe: a finger must have moved.
      if (deepest >= READ && peak(samples) - top >= FLICK && now - swipedAt < SWIPE_MS) go();
    });
  }

  if (options.tab_return !== false) {
    var hiddenAt = 0;
    // Leaving the page (an in-site link, then back) is not leaving the tab: bfcache would
    // bring the page back visible.
    on(window, 'pagehide', function () {
      hiddenAt = 0;
    });
    on(document, 'visibilitychange', function () {
      var now = Date.now();
      if (document.visibilityState === 'hidden') hiddenAt = now;
      else if (hiddenAt && now - hiddenAt >= AWAY) go();
      else hiddenAt = 0;
    });
  }
  return disarm;
}
