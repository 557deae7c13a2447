// The Touchpoint snippet: <script async src="/tp/t.js"></script>.
//
// Pages may call the API before this file loads through the queue stub
//   window.touchpoint = window.touchpoint || function () {
//     (touchpoint.q = touchpoint.q || []).push(arguments) };
// which is replayed here. Nothing in this file may throw into the host page.

import { beacon, post } from './transport.js';
import { arm, track } from './triggers.js';
import { showPopup } from './popup.js';
import { fillSlots, keepDefaults, slotNames } from './slots.js';
import { emit } from './notify.js';
import { tracker } from './tracking.js';
import { showBanner } from './banner.js';
import { listen } from './tcf.js';
import { announceEnd, recheck } from './eligibility.js';

var CATEGORIES = ['marketing', 'measurement', 'personalisation']; // sorted, as the server sorts
var SLOT_BUDGET = 300; // ms a slot waits for its content; later, the page's default stays
// Calls that need consent (identify, track, reset) wait until the consent state is known; a
// server that has not told it after this many ms is taken as no consent, and they are dropped.
var HOLD_MS = 10000;
var HOLD = 100; // calls held at most: a page calling in a loop must not grow the list without bound

function warn(error) {
  console.warn('touchpoint:', error && error.message ? error.message : error);
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

// The decision trace of a preview link, for the marketer looking at the console.
function explain(preview) {
  console.info('touchpoint preview: ' + preview.campaign + ' / ' + preview.variant);
  (preview.trace || []).forEach(function (line) {
    console.info('touchpoint preview: ' + line);
  });
}

// The page's language for the banner's texts: <html lang>, else the browser's.
function language() {
  return (document.documentElement.lang || navigator.language || '').slice(0, 35);
}

function start(base) {
  var consent = null; // what the server holds: {revision, granted, prompt, known, mode, banner}
  var wanted = null; // a consent answer the page gave that the server does not hold yet
  var context = {}; // touchpoint('context', ...), sent with every decide
  var counted = false; // a decide answer said this page view was counted
  var armed = []; // disarm functions of the popups waiting for their trigger
  var spent = false; // this page view's one popup was shown (or its holdout exposed)
  var vetoed = {}; // campaigns whose touchpoint:show the page cancelled: not armed again
  var styles; // the popups' stylesheet, from the server
  var referrer = document.referrer; // the previous page; in a single-page app, its last view
  var where = location.pathname + location.search;
  var asking = false; // the consent banner is open
  var listening = false; // mode tcf: the consent tool's listener is registered
  var held = false; // mode tcf: nothing is recorded until the consent tool has answered on this page
  var gpc = navigator.globalPrivacyControl === true; // Global Privacy Control
  var known = false; // the consent state is known: held calls were applied, ready callbacks run
  var later = []; // what calls made before that do once it is known, in call order
  var readied = []; // touchpoint('ready', fn) callbacks
  var failsafe = 0;
  // A marketer's preview link (docs/rules.md#preview): one campaign shown, nothing recorded.
  var preview = /[?&]tp_preview=([^&#]+)/.exec(location.search);
  preview = preview && decodeURIComponent(preview[1]);

  var page = function () {
    return {
      path: location.pathname,
      title: document.title.slice(0, 512),
      query: location.search.slice(0, 2048),
      referrer: referrer.slice(0, 2048),
    };
  };

  var has = function (category) {
    return !preview && !held && !!consent && consent.granted.indexOf(category) >= 0;
  };

  // The consent state is known (docs/embedding.md#the-order-of-events): what calls held is done
  // now, with the consent as it is, then the ready callbacks run. Once per page.
  var settle = function () {
    if (known) return;
    known = true;
    clearTimeout(failsafe);
    later.splice(0).forEach(function (fn) {
      safely(fn)();
    });
    readied.splice(0).forEach(function (fn) {
      safely(fn)({ granted: CATEGORIES.filter(has) });
    });
  };
  // Known once the server has answered, unless a TCF consent tool has yet to answer on this page.
  var settled = function () {
    if (!held) settle();
  };
  // A server that does not answer (a request hanging, not failing) must not hold calls forever.
  var wait = function () {
    clearTimeout(failsafe);
    failsafe = setTimeout(settled, HOLD_MS);
  };
  var hold = function (fn) {
    if (known) fn();
    else if (later.length < HOLD) later.push(fn);
  };

  // Behaviour is tracked with the measurement or the personalisation consent, and stops the
  // moment it is withdrawn: what is queued then is dropped.
  var tracking = tracker(
    function (events, leaving) {
      return (leaving ? beacon : post)(base, '/v1/events', { events: events });
    },
    function () {
      return has('measurement') || has('personalisation');
    },
    warn,
  );

  // happened: [type, {campaign, variant}] pairs, sent in one request.
  var record = function (happened) {
    if (!happened.length || !has('marketing')) return;
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
    // Never on top of the consent banner; answering it decides again and re-arms the popups.
    if (spent || asking) return;
    spent = true;
    var shown = popup.control && emit('show', { campaign: popup.campaign, variant: popup.variant, control: true });
    if (!popup.control) {
      try {
        shown = showPopup(popup, styles, {
          close: function () {
            announceEnd(popup.campaign);
            record([['close', popup]]);
          },
          convert: function (fields) {
            announceEnd(popup.campaign);
            record([['convert', popup]]);
            if (fields) submitted(popup, fields);
          },
          // A preview shows a sample code. The server assigns a visitor's own code with the
          // marketing consent only (a shared code needs none) and answers 403 otherwise.
          reveal: function (fill) {
            if (preview) Promise.resolve({ code: 'SAMPLE-CODE', expires_at: Date.now() / 1000 + 604800 }).then(safely(fill));
            else post(base, '/v1/coupons/reveal', { campaign: popup.campaign, variant: popup.variant }).then(safely(fill), warn);
          },
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

  // A popup's form was sent: its e-mail and name identify the visitor (with the personalisation
  // consent); the other fields go with a form_submit activity (docs/rules.md#forms).
  var submitted = function (popup, fields) {
    api.identify(fields);
    var props = {};
    Object.keys(fields).forEach(function (key) {
      if (!/mail|name|phone|tel|pass/i.test(key)) props[key] = fields[key];
    });
    tracking.event(popup.campaign, props, 'form_submit');
    tracking.flush();
  };

  var armAll = function (popups) {
    disarmAll();
    if (spent) return;
    (popups || []).forEach(function (popup) {
      if (vetoed[popup.campaign]) return;
      try {
        armed.push(arm(popup.trigger, safely(function () {
          recheck(base, popup, has('marketing'), safely(function () { show(popup); }));
        })));
      } catch (error) {
        warn(error); // this popup stays unarmed; the others still wait
      }
    });
  };

  var decide = function (count) {
    var slots = slotNames();
    var request = { page: page(), context: context, slots: slots, count: count && !preview, lang: language() };
    if (preview) request.preview = preview;
    var asked = Date.now();
    return post(base, '/v1/decide', request).then(function (answer) {
      consent = answer.consent;
      counted = counted || !!answer.counted;
      if (answer.preview) explain(answer.preview);
      // The page's consent answer supersedes this one: decide again once the server holds it.
      if (differs()) return sendConsent();
      wanted = null;
      if (!preview) ask();
      styles = answer.css || styles;
      armAll(answer.popups); // first, so that a malformed slot cannot keep popups away
      // Content that comes too late would move the page under the reader: the defaults stay.
      if (Date.now() - asked > SLOT_BUDGET) keepDefaults(slots);
      record(fillSlots(answer.slots));
      settled();
    });
  };

  // A single-page app showed another page (history.pushState, or back and forward): a new
  // page view with its own decision, popups and slots.
  var navigated = function () {
    var next = location.pathname + location.search;
    if (next === where) return; // only the hash or the state changed
    referrer = location.origin + where;
    where = next;
    tracking.navigate(location.pathname);
    disarmAll();
    spent = false;
    vetoed = {};
    decide(true).catch(warn);
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
  var sendConsent = function (method) {
    var granted = wanted;
    wanted = null;
    // What is withdrawn stops now, before the server has answered.
    consent.granted = consent.granted.filter(function (name) {
      return granted.indexOf(name) >= 0;
    });
    wait();
    return post(base, '/v1/consent', { granted: granted, method: method || 'api' }).then(function (answer) {
      // Known at once, so a popup open right now records its close under the new consent.
      consent = { revision: answer.revision, granted: answer.granted, prompt: false, known: answer.granted.length > 0 };
      settled();
      return decide(!counted);
    }, function (error) {
      settled(); // with what is granted both here and on the server
      throw error;
    });
  };

  // An answer from the banner or the TCF consent tool. The banner's is always sent: the server
  // logs it, and remembers a refusal so that the banner does not ask on every page.
  var answered = function (granted, method) {
    wanted = granted.slice().sort();
    if (method !== 'tcf' || differs()) return sendConsent(method).catch(warn);
  };

  var open = function (banner, reopen) {
    showBanner(banner, { granted: consent.granted, reopen: reopen, gpc: gpc }, answered, function () {
      asking = false;
    });
    asking = true; // not before: a banner that failed to show must not hold the popups back
  };

  // How the site asks for consent (site.yaml consent.mode): the built-in banner while a prompt is
  // due, the TCF consent tool once per page, or the site's own tool through the API (nothing here).
  var ask = function () {
    if (consent.mode === 'tcf' && !listening) {
      listening = held = true;
      listen(consent.timeout, function (granted) {
        if (!granted) return settle(); // no answer in time: no consent on this page
        held = false;
        if (!answered(granted, 'tcf')) settle();
      });
    } else if (consent.banner && !asking && !wanted) {
      open(consent.banner, false);
    }
  };

  // Any element with data-tp-consent-settings reopens the banner at its settings.
  document.addEventListener(
    'click',
    safely(function (event) {
      var link = event.target.closest && event.target.closest('[data-tp-consent-settings]');
      if (!link || !consent || consent.mode !== 'builtin' || asking || preview) return;
      event.preventDefault();
      if (consent.banner) return open(consent.banner, true);
      fetch(base + '/v1/consent?lang=' + encodeURIComponent(language()), { credentials: 'include' })
        .then(function (response) {
          return response.json();
        })
        .then(safely(function (banner) {
          if (!asking) open(banner, true);
        }), warn);
    }),
  );

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
    // touchpoint('track', 'video-played', {seconds: 30}): fires `event` triggers and, with
    // consent, is recorded (docs/embedding.md#tracking).
    track: function (name, props) {
      if (typeof name !== 'string' || !name) return;
      track(name); // triggers need no consent: at once
      hold(function () {
        tracking.event(name, props);
      });
    },
    // touchpoint('identify', {email, customer_id, first_name, verification}): ties this visitor
    // to a known person (docs/embedding.md#identification); with the shop's signature
    // (docs/security.md#verified-identity) to the profile that already holds them. Needs the
    // personalisation consent.
    identify: function (who) {
      var body = {};
      ['email', 'customer_id', 'first_name'].forEach(function (key) {
        if (who && typeof who[key] === 'string' && who[key]) body[key] = who[key].slice(0, 256);
      });
      if (who && who.verification) body.verification = who.verification;
      hold(function () {
        if (has('personalisation') && Object.keys(body).length) post(base, '/v1/identify', body).catch(warn);
      });
    },
    // touchpoint('reset'): logout on a shared computer. The next person starts as a new,
    // anonymous visitor with the same consent; nothing of the last one carries over.
    reset: function () {
      hold(function () {
        tracking.flush(false);
        if (consent && consent.known) post(base, '/v1/reset', {}).catch(warn);
      });
    },
    // touchpoint('ready', fn): fn({granted: [categories]}) once the consent state is known and
    // the calls made before were applied; at once when it already is.
    ready: function (fn) {
      if (typeof fn !== 'function') return;
      if (known) safely(fn)({ granted: CATEGORIES.filter(has) });
      else readied.push(fn);
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
  wait();
  for (var i = 0; i < queued.length; i++) call(queued[i]);
  var pushState = history.pushState;
  history.pushState = function () {
    var result = pushState.apply(this, arguments);
    safely(navigated)();
    return result;
  };
  window.addEventListener('popstate', safely(navigated));
  // Slots further down the page exist only once it is parsed; an async script can run sooner.
  var first = safely(function () {
    decide(true).catch(function (error) {
      warn(error);
      settle(); // no answer: no consent known, so what was held is dropped
    });
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
