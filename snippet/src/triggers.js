// When an armed popup shows: one function per trigger kind of the decide answer
// (docs/exit-intent.md#triggers). arm(trigger, fire) calls fire() at most once and returns a
// function that disarms the trigger; it throws for a trigger it cannot arm (an unknown kind, an
// invalid click selector), which the caller reports and skips.

import { onExitIntent } from './exit-intent.js';

var LISTEN = { capture: true, passive: true };
var ACTIVITY = ['mousemove', 'keydown', 'scroll', 'touchstart', 'pointerdown'];

var tracked = {}; // names the page tracked on this page view
var waiting = []; // armed event triggers: {name, fire}

// touchpoint('track', name): fires the event triggers waiting for `name`. A name tracked before
// the decide answer arrived fires its trigger as soon as it is armed.
export function track(name) {
  tracked[name] = true;
  waiting.slice().forEach(function (entry) {
    if (entry.name === name) entry.fire();
  });
}

function listen(target, types, handler) {
  types.forEach(function (type) {
    target.addEventListener(type, handler, LISTEN);
  });
  return function () {
    types.forEach(function (type) {
      target.removeEventListener(type, handler, LISTEN);
    });
  };
}

function after(ms, fire) {
  var timer = setTimeout(fire, Math.max(0, ms));
  return function () {
    clearTimeout(timer);
  };
}

// Past `percent` of the document's scrollable height. A page that cannot scroll never gets past
// any percent above 0. The +1 px forgives the fractional scroll offsets of zoomed pages, which
// can end just short of the bottom.
function onScroll(percent, fire) {
  var frame = 0;
  var check = function () {
    frame = 0;
    var max = document.documentElement.scrollHeight - window.innerHeight;
    if (percent <= 0 || (max > 0 && window.pageYOffset + 1 >= (max * percent) / 100)) fire();
  };
  var stop = listen(document, ['scroll'], function () {
    frame = frame || requestAnimationFrame(check);
  });
  frame = requestAnimationFrame(check); // the visitor may have scrolled before the answer came
  return function () {
    stop();
    cancelAnimationFrame(frame);
  };
}

// No activity for `seconds`. Activity only moves a timestamp: the timer, when it runs out,
// sleeps again for whatever is left, so a moving mouse costs no timer churn.
function onInactivity(seconds, fire) {
  var last = Date.now();
  var timer;
  var tick = function () {
    var left = last + seconds * 1000 - Date.now();
    if (left > 0) timer = setTimeout(tick, left);
    else fire();
  };
  var stop = listen(document, ACTIVITY, function () {
    last = Date.now();
  });
  timer = setTimeout(tick, seconds * 1000);
  return function () {
    stop();
    clearTimeout(timer);
  };
}

// A click on or inside an element matching `selector`, seen in the capture phase so that a
// page handler stopping propagation does not hide it.
function onClick(selector, fire) {
  document.documentElement.matches(selector); // throws now for an invalid selector, not per click
  return listen(document, ['click'], function (event) {
    var target = event.target;
    if (target && target.closest && target.closest(selector)) fire();
  });
}

function onTrack(name, fire) {
  if (tracked[name]) return after(0, fire);
  var entry = { name: name, fire: fire };
  waiting.push(entry);
  return function () {
    var at = waiting.indexOf(entry);
    if (at >= 0) waiting.splice(at, 1);
  };
}

export function arm(trigger, fire) {
  var disarm;
  var once = function () {
    disarm();
    fire();
  };
  var on = trigger.on;
  if (on === 'load') disarm = after(0, once);
  // Seconds on the page: counted from the navigation, so a popup armed again after a consent
  // answer keeps its time.
  else if (on === 'seconds') disarm = after(trigger.seconds * 1000 - performance.now(), once);
  else if (on === 'scroll') disarm = onScroll(trigger.percent, once);
  else if (on === 'inactivity') disarm = onInactivity(trigger.seconds, once);
  else if (on === 'exit_intent') disarm = onExitIntent(trigger, once);
  else if (on === 'click') disarm = onClick(trigger.selector, once);
  else if (on === 'event') disarm = onTrack(trigger.name, once);
  else throw new Error('unknown trigger ' + on);
  return disarm;
}
