// The Touchpoint snippet: <script async src="/tp/t.js"></script>.
//
// Pages may call the API before this file loads through the queue stub
//   window.touchpoint = window.touchpoint || function () {
//     (touchpoint.q = touchpoint.q || []).push(arguments) };
// which is replayed here. Nothing in this file may throw into the host page.

import { post } from './transport.js';
import { arm, track } from './triggers.js';
import { showPopup } from './popup.js';
import { fillSlots, slotNames } from './slots.js';
import { emit } from './notify.js';

var CATEGORIES = ['marketing', 'measurement', 'personalisation']; // sorted, as the server sorts

function warn(error) {
  if (window.console && console.warn) console.warn('touchpoint:', error && error.message ? error.message : error);
}

// Callbacks the browser runs (timers, listeners) must not throw into the page either.
function safely(fn) {
  return function (value) {
    try {
      fn(value);
    } catch (error) {
      warn(error);
    }
  };
}

function start(base) {
  var consent = null; // what the server holds: {revision, granted, prompt, known}
  var wanted = null; // a consent answer the page gave that the server does not hold yet
  var context = {}; // touchpoint('context', ...), sent with every decide
  var counted = false; // a decide answer said this page view was counted
  var armed = []; // disarm functions of the popups waiting for their trigger
  var spent = false; // this page view's one popup was shown (or its holdout exposed)
  var vetoed = {}; // campaigns whose touchpoint:show the page cancelled: not armed again
  var settled = {}; // slots an answer filled, kept or had vetoed: not filled again

  var page = function () {
    return {
      path: location.pathname,
      title: document.title.slice(0, 512),
      query: location.search.slice(0, 2048),
      referrer: document.referrer.slice(0, 2048),
    };
  };

  // happened: [type, {campaign, variant}] pairs, sent in one request.
  var record = function (happened) {
    if (!happened.length || !consent || consent.granted.indexOf('marketing') < 0) return;
    var events = happened.map(function (pair) {
      return { type: pair[0], campaign: pair[1].campaign, variant: pair[1].variant, path: location.pathname };
    });
    post(base, '/v1/events', { events: events }, { keepalive: true }).catch(warn);
  };

  var disarmAll = function () {
    armed.forEach(function (disarm) {
      disarm();
    });
    armed = [];
  };

  // The first armed popup whose trigger fires is the page view's one popup; a holdout (control)
  // takes that place too, showing nothing. The page may veto either through touchpoint:show, so
  // a page that suppresses popups suppresses holdout exposures alike and the groups stay comparable.
  var show = function (popup) {
    if (spent) return;
    spent = true;
    var shown = popup.control && emit('show', { campaign: popup.campaign, variant: popup.variant, control: true });
    if (!popup.control) {
      try {
        shown = showPopup(popup, {
          close: function () { record([['close', popup]]); },
          convert: function () { record([['convert', popup]]); },
        });
      } catch (error) {
        warn(error);
      }
    }
    if (!shown) {
      spent = false;
      vetoed[popup.campaign] = true;
      return;
    }
    disarmAll();
    record([[popup.control ? 'exposure' : 'impression', popup]]);
  };

  var armAll = function (popups) {
    disarmAll();
    if (spent) return;
    (popups || []).forEach(function (popup) {
      if (vetoed[popup.campaign]) return;
      try {
        armed.push(arm(popup.trigger, safely(function () { show(popup); })));
      } catch (error) {
        warn(error); // this popup stays unarmed; the others still wait
      }
    });
  };

  var decide = function (count) {
    var request = { page: page(), context: context, slots: slotNames(), count: count };
    return post(base, '/v1/decide', request).then(function (answer) {
      consent = answer.consent;
      counted = counted || !!answer.counted;
      // The page's consent answer supersedes this one: decide again once the server holds it.
      if (differs()) return sendConsent();
      wanted = null;
      armAll(answer.popups); // first, so that a malformed slot cannot keep popups away
      record(fillSlots(answer.slots, settled));
    });
  };

  // Whether the page gave a consent answer the server does not hold yet. A refusal from a
  // visitor the server does not know changes nothing, so it is not sent on every page.
  var differs = function () {
    if (!wanted) return false;
    if (consent.granted.slice().sort().join() !== wanted.join()) return true;
    return consent.prompt && (wanted.length > 0 || consent.known);
  };

  // Sends the page's answer, then decides again: with consent the server may know this
  // visitor's history (a popup closed on an earlier visit stays closed), and may count the page
  // view if the first decide could not.
  var sendConsent = function () {
    var granted = wanted;
    wanted = null;
    return post(base, '/v1/consent', { granted: granted, method: 'api' }).then(function (answer) {
      // Known at once, so a popup open right now records its close under the new consent.
      consent = { revision: answer.revision, granted: answer.granted, prompt: false, known: answer.granted.length > 0 };
      return decide(!counted);
    });
  };

  var api = {
    // touchpoint('consent', {measurement: true, marketing: true}) or ('consent', [names]).
    consent: function (choice) {
      wanted = CATEGORIES.filter(function (name) {
        return Array.isArray(choice) ? choice.indexOf(name) >= 0 : !!(choice && choice[name]);
      });
      // Before the first answer from the server, decide() sends it.
      if (consent && differs()) sendConsent().catch(warn);
    },
    // touchpoint('context', {plan: 'pro'}): sent with the next decide; it does not decide again.
    context: function (values) {
      if (!values || typeof values !== 'object') return;
      Object.keys(values).forEach(function (key) {
        var value = values[key];
        var type = typeof value;
        if (type === 'string' || type === 'boolean' || (type === 'number' && isFinite(value))) context[key] = value;
      });
    },
    // touchpoint('track', 'signup-done'): fires `event` triggers; nothing is sent yet.
    track: function (name) {
      if (typeof name === 'string') track(name);
    },
  };

  var call = function (args) {
    try {
      var fn = api[args[0]];
      if (fn) fn.apply(null, Array.prototype.slice.call(args, 1));
      else warn('unknown command ' + args[0]);
    } catch (error) {
      warn(error);
    }
  };

  var queued = (window.touchpoint && window.touchpoint.q) || [];
  window.touchpoint = function () { call(arguments); };
  window.touchpoint.loaded = true;
  for (var i = 0; i < queued.length; i++) call(queued[i]);
  // Slots further down the page exist only once it is parsed; an async script can run sooner.
  var first = safely(function () {
    decide(true).catch(warn);
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', first);
  else first();
}

(function () {
  'use strict';
  try {
    if (window.touchpoint && window.touchpoint.loaded) return;
    var script = document.currentScript;
    var src = script && script.src ? script.src : location.origin + '/tp/t.js';
    start(src.replace(/\/t\.js(?:[?#].*)?$/, ''));
  } catch (error) {
    warn(error);
  }
})();
