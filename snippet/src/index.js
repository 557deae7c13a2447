// The Touchpoint snippet: <script async src="/tp/t.js"></script>.
//
// Pages may call the API before this file loads through the queue stub
//   window.touchpoint = window.touchpoint || function () {
//     (touchpoint.q = touchpoint.q || []).push(arguments) };
// which is replayed here. Nothing in this file may throw into the host page.

import { post } from './transport.js';
import { onExitIntent } from './exit-intent.js';
import { showPopup } from './popup.js';

var CATEGORIES = ['marketing', 'measurement', 'personalisation']; // sorted, as the server sorts

function warn(error) {
  if (window.console && console.warn) console.warn('touchpoint:', error && error.message ? error.message : error);
}

function start(base) {
  var consent = null; // what the server holds: {revision, granted, prompt}
  var wanted = null; // a consent answer the page gave that the server does not hold yet
  var disarm = null;
  var showing = false;
  var dismissed = {}; // campaigns closed or converted on this page view: never armed again

  var page = function () {
    return { path: location.pathname, title: document.title.slice(0, 512) };
  };

  var track = function (type, popup) {
    if (!consent || consent.granted.indexOf('marketing') < 0) return;
    post(base, '/v1/events', {
      events: [{ type: type, campaign: popup.campaign, variant: popup.variant, path: location.pathname }],
    }, { keepalive: true }).catch(warn);
  };

  var arm = function (popup) {
    if (disarm) disarm();
    disarm = null;
    if (!popup || dismissed[popup.campaign]) return;
    var done = function (type) {
      return function () {
        showing = false;
        dismissed[popup.campaign] = true;
        track(type, popup);
      };
    };
    var fire = function () {
      disarm = null;
      if (showing || dismissed[popup.campaign]) return;
      try {
        showing = showPopup(popup, { close: done('close'), convert: done('convert') });
        if (showing) track('impression', popup);
      } catch (error) {
        warn(error);
      }
    };
    var trigger = popup.trigger;
    if (trigger.exit_intent) {
      disarm = onExitIntent(trigger.exit_intent.min_seconds || 0, fire);
    } else if (trigger.after_seconds) {
      var timer = setTimeout(fire, trigger.after_seconds.seconds * 1000);
      disarm = function () { clearTimeout(timer); };
    }
  };

  var decide = function () {
    return post(base, '/v1/decide', { page: page() }).then(function (answer) {
      consent = answer.consent;
      if (differs()) return sendConsent();
      wanted = null;
      arm(answer.popup);
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
  // visitor's history (a popup closed on an earlier visit stays closed).
  var sendConsent = function () {
    var granted = wanted;
    wanted = null;
    return post(base, '/v1/consent', { granted: granted, method: 'api' }).then(function (answer) {
      // Known at once, so a popup open right now records its close under the new consent.
      consent = { revision: answer.revision, granted: answer.granted, prompt: false, known: answer.granted.length > 0 };
      if (!showing) return decide();
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
  decide().catch(warn);
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
