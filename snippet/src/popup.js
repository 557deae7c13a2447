// Popups render inside a Shadow DOM root, so the host page's CSS cannot break them and theirs
// cannot leak out. Styles (docs/exit-intent.md#popup-styles):
//   modal, fullscreen: modal dialogs (WAI-ARIA APG dialog pattern): aria-modal, focus moves in
//     and is trapped, Esc closes, focus returns to where it was.
//   slide-in, bar-top, bar-bottom: non-modal dialogs. They appear unasked, so they take no focus
//     from the page: a polite status message announces them, Tab reaches them in document order
//     (a top bar first, the others last), Esc closes them while focus is inside, and focus then
//     returns to where it came from.
// The styles themselves come from the server with the decide answer (server/assets/popup.css),
// so the snippet carries none.

import { emit } from './notify.js';

var STYLES = {
  modal: 'modal',
  fullscreen: 'modal fullscreen',
  'slide-in': 'slide-in',
  'bar-top': 'bar bar-top',
  'bar-bottom': 'bar bar-bottom',
};

var FOCUSABLE = 'a[href],button:not([disabled]),input:not([disabled]),select,textarea,[tabindex]:not([tabindex="-1"])';
var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
// A field people never see or reach; bots that fill every field fill it too.
var HONEYPOT = '<input class="sr" name="tp_hp" tabindex="-1" autocomplete="off" aria-hidden="true">';

var each = function (list, fn) {
  Array.prototype.forEach.call(list, fn);
};

// What the visitor can reach: not in a hidden step, not taken out of the tab order.
function focusables(root) {
  return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), function (item) {
    return item.tabIndex >= 0 && !item.closest('[hidden]');
  });
}

// A Shadow DOM host (marked with `attribute`) around a `.tp` frame of the class `kind` holding
// `html`, styled by `css` (the server's); the caller puts it in the page.
export function mount(attribute, value, kind, html, css) {
  var host = document.createElement('div');
  host.setAttribute(attribute, value);
  var root = host.attachShadow({ mode: 'open' });
  adoptStyles(root, css);
  var frame = document.createElement('div');
  frame.className = 'tp ' + kind;
  frame.innerHTML = html;
  root.appendChild(frame);
  return [host, root, frame];
}

// Modal dialogs: Tab and Shift+Tab cycle through what the visitor can reach in `dialog`.
export function cycle(event, dialog, root) {
  var items = focusables(dialog);
  var at = items.indexOf(root.activeElement);
  var to = event.shiftKey ? (at > 0 ? -1 : items.length - 1) : at < 0 || at === items.length - 1 ? 0 : -1;
  if (to >= 0 && items[to]) {
    event.preventDefault();
    items[to].focus();
  }
}

function adoptStyles(root, css) {
  // A constructed stylesheet is not an inline <style>, so a CSP without 'unsafe-inline' in
  // style-src still allows it; older browsers fall back to a <style> element.
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement('style');
    style.textContent = css;
    root.appendChild(style);
  }
}

// Shows `popup` ({campaign, variant, style, html}) styled by `css`; `on.close()` and
// `on.convert(fields)` report what the visitor did (`fields`: what a form held, when one was
// sent), `on.reveal(fill)` asks for the coupon code and hands it to `fill`. Returns false when a
// page listener cancelled `touchpoint:show`.
export function showPopup(popup, css, on) {
  var detail = { campaign: popup.campaign, variant: popup.variant };
  if (!emit('show', detail)) return false;

  var kind = STYLES[popup.style] || STYLES.modal;
  var modal = kind.indexOf('modal') === 0;
  var parts = mount(
    'data-tp-popup',
    popup.campaign,
    kind,
    '<div class="dialog" role="dialog" tabindex="-1"' + (modal ? ' aria-modal="true">' : '>') +
      '<button class="x" type="button" data-tp-close aria-label="Close">\u00d7</button>' +
      '<div class="body"></div></div><div class="sr" role="status"></div>',
    css
  );
  var host = parts[0];
  var root = parts[1];
  var frame = parts[2];
  var dialog = frame.firstChild;
  var body = dialog.lastChild;
  var status = frame.lastChild;
  body.innerHTML = popup.html; // rendered by the server's autoescaping sandbox; scripts never run
  var steps = body.querySelectorAll('[data-tp-step]');
  // The same words again are a change too, so a second identical error is announced as well.
  var say = function (text) {
    status.textContent = status.textContent === text ? text + '\u00a0' : text;
  };
  var coupons = function (attribute, fn) {
    each(body.querySelectorAll('[data-tp-' + attribute + ']'), fn);
  };
  // A coupon code ({code, expires_at}) in place of the fallback texts of [data-tp-coupon], its
  // expiry date in [data-tp-coupon-expires] and the time left in [data-tp-countdown], counted
  // down each second; the code is announced.
  var fill = function (coupon) {
    var code = coupon.code;
    var end = coupon.expires_at * 1000;
    var lang;
    var days;
    var tick = function () {
      var left = Math.max(0, end - Date.now()) / 1000;
      var day = (left / 86400) | 0;
      var text = [left / 3600 % 24, left / 60 % 60, left % 60]
        .map(function (part) {
          return ('0' + (part | 0)).slice(-2);
        })
        .join(':');
      coupons('countdown', function (item) {
        item.textContent = day ? (days ? days.format(day) : day + 'd') + ' ' + text : text;
      });
      return left && host.isConnected;
    };
    if (!code) return;
    coupons('coupon', function (item) {
      item.textContent = code;
    });
    say(code);
    if (!end) return;
    try {
      lang = Intl.getCanonicalLocales(document.documentElement.lang); // else the browser's
    } catch (e) {}
    coupons('coupon-expires', function (item) {
      item.textContent = new Date(end).toLocaleDateString(lang, { day: 'numeric', month: 'long', year: 'numeric' });
    });
    try {
      days = new Intl.NumberFormat(lang, { style: 'unit', unit: 'day', unitDisplay: 'long' });
    } catch (e) {}
    var timer = tick() && setInterval(function () {
      if (!tick()) clearInterval(timer);
    }, 1000);
  };
  // A code is assigned when it is revealed (docs/rules.md#coupon-codes): once an element for it is
  // in sight, on show or when a later step shows it.
  var revealed = false;
  var reveal = function () {
    coupons('coupon', function (item) {
      if (revealed || item.closest('[hidden]')) return;
      revealed = true;
      on.reveal(fill);
    });
  };
  // Multi-step templates (teaser, form, success) show one step at a time.
  var step = function (shown, focus) {
    each(steps, function (item) {
      item.hidden = item !== shown;
    });
    shown.hidden = false;
    reveal();
    if (!focus) return;
    shown.tabIndex = -1;
    (focusables(shown)[0] || shown).focus();
  };
  if (steps.length) step(steps[0]);
  each(body.querySelectorAll('form[data-tp-convert]'), function (form) {
    form.noValidate = true; // the errors are shown inline, below (validate)
    form.insertAdjacentHTML('afterbegin', HONEYPOT);
  });
  var heading = body.querySelector('h1,h2,h3,[data-tp-title]');
  if (heading) {
    heading.id = heading.id || 'tp-title';
    dialog.setAttribute('aria-labelledby', heading.id);
  } else {
    dialog.setAttribute('aria-label', popup.campaign);
  }

  // Modal: focus returns to what had it before. Non-modal: to where focus came from into the
  // popup, and only when focus is inside it as it closes.
  var returnFocus = modal ? document.activeElement : null;
  var finish = function () {
    var inside = modal || root.activeElement;
    document.removeEventListener('keydown', onKey, true);
    host.remove();
    if (inside && returnFocus && returnFocus.focus) returnFocus.focus();
  };
  var close = function () {
    if (!emit('close', detail)) return;
    finish();
    on.close();
  };
  // After a form was sent: its success view (a success step, or [data-tp-success]), else closed.
  var succeed = function (event) {
    var success = body.querySelector('[data-tp-step=success],[data-tp-success]');
    // Without a success view, a form with an action of its own goes there (a newsletter
    // tool's signup page, say); one without stays on the page.
    if (!success && event.target.getAttribute('action') && !event.defaultPrevented) return finish();
    event.preventDefault();
    if (!success) return finish();
    event.target.hidden = true;
    step(success, true);
  };
  var convert = function (event, fields) {
    if (!emit('convert', detail)) {
      event.preventDefault();
      return;
    }
    on.convert(fields);
    if (fields) succeed(event);
    else finish();
  };
  // Each invalid field gets its message below it, aria-invalid and aria-describedby; the first
  // takes focus and its message is announced.
  var validate = function (form) {
    var first = null;
    each(form.elements, function (field, index) {
      var id = 'tp-error-' + index;
      var note = root.getElementById(id);
      if (note) note.remove();
      if (!field.name || field.name === 'tp_hp') return;
      // The browser's checks (required, type=email ...), and an e-mail needs a dot in its domain.
      var bad =
        !field.checkValidity() || (field.type === 'email' && field.value && !EMAIL.test(field.value));
      field.setAttribute('aria-invalid', !!bad);
      if (!bad) return field.removeAttribute('aria-describedby');
      note = document.createElement('p');
      note.id = id;
      note.className = 'tp-error';
      note.textContent = field.getAttribute('data-tp-error') || field.validationMessage ||
        'Please enter a valid e-mail address.';
      (field.closest('label') || field).after(note);
      field.setAttribute('aria-describedby', id);
      if (!first) {
        first = field;
        field.focus();
        say(note.textContent);
      }
    });
    return !first;
  };
  var submit = function (event) {
    var form = event.target;
    if (!form.matches('form[data-tp-convert]')) return;
    if (!validate(form)) return event.preventDefault();
    var fields = {};
    new FormData(form).forEach(function (value, name) {
      if (typeof value === 'string') fields[name] = value;
    });
    // A checkbox alone under its name is a yes or a no: true or false, also when not ticked
    // (FormData leaves an unticked box out). Boxes sharing a name keep their values.
    var boxes = {};
    each(form.elements, function (field) {
      if (field.type === 'checkbox') boxes[field.name] = (boxes[field.name] || 0) + 1;
    });
    each(form.elements, function (field) {
      if (field.type === 'checkbox' && field.name && boxes[field.name] === 1) fields[field.name] = field.checked;
    });
    if (fields.tp_hp) {
      event.preventDefault(); // a bot: it sees success, nothing is sent, no code is revealed
      revealed = true;
      return succeed(event);
    }
    delete fields.tp_hp;
    convert(event, fields);
  };
  // data-tp-copy="ID": the text of the element with that id to the clipboard; without an id,
  // the coupon code.
  var copy = function (button) {
    var source = root.getElementById(button.getAttribute('data-tp-copy')) || body.querySelector('[data-tp-coupon]');
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () {
      say((button.textContent = button.getAttribute('data-tp-copied') || 'Copied'));
    };
    var fallback = function () {
      var area = document.createElement('textarea');
      area.className = 'sr';
      area.value = text;
      frame.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
      button.focus();
      done();
    };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  };
  var onKey = function (event) {
    if (event.key === 'Escape') {
      event.stopPropagation();
      close();
    } else if (modal && event.key === 'Tab') {
      cycle(event, dialog, root);
    }
  };
  frame.addEventListener('click', function (event) {
    var target = event.target;
    var hit;
    if (target === frame || target.closest('[data-tp-close]')) close();
    else if (target.closest('a[data-tp-convert],button[data-tp-convert]')) convert(event);
    else if ((hit = target.closest('[data-tp-next]'))) {
      var at = Array.prototype.indexOf.call(steps, hit.closest('[data-tp-step]'));
      if (steps[at + 1]) step(steps[at + 1], true);
    } else if ((hit = target.closest('[data-tp-copy]'))) copy(hit);
  });
  frame.addEventListener('submit', submit);
  if (modal) {
    document.addEventListener('keydown', onKey, true);
  } else {
    root.addEventListener('keydown', onKey);
    root.addEventListener('focusin', function (event) {
      if (!root.contains(event.relatedTarget)) returnFocus = event.relatedTarget;
    });
  }
  // Tab order follows what the eye sees: a top bar comes before the page, the others after it.
  document.body.insertBefore(host, popup.style === 'bar-top' ? document.body.firstChild : null);
  reveal();
  if (modal) {
    (focusables(body)[0] || dialog).focus();
  } else {
    // A live region announces only changes made after it is in the page, hence the delay.
    setTimeout(function () {
      say(heading ? heading.textContent : popup.campaign);
    }, 100);
  }
  return true;
}
