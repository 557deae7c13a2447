// Popups render inside a Shadow DOM root, so the host page's CSS cannot break them and theirs
// cannot leak out. Styles (docs/exit-intent.md#popup-styles):
//   modal, fullscreen: modal dialogs (WAI-ARIA APG dialog pattern): aria-modal, focus moves in
//     and is trapped, Esc closes, focus returns to where it was.
//   slide-in, bar-top, bar-bottom: non-modal dialogs. They appear unasked, so they take no focus
//     from the page: a polite status message announces them, Tab reaches them in document order
//     (a top bar first, the others last), Esc closes them while focus is inside, and focus then
//     returns to where it came from.

import { emit } from './notify.js';

var CSS =
  ':host{all:initial}' +
  '.tp{font:16px/1.5 system-ui,sans-serif;color:#111827}' +
  '.modal{position:fixed;inset:0;z-index:2147483000;display:flex;align-items:center;justify-content:center;' +
  'background:rgba(17,24,39,.55)}' +
  '.dialog{position:relative;box-sizing:border-box;max-height:90vh;overflow:auto;overscroll-behavior:contain;' +
  'background:#fff;padding:28px 28px 20px;box-shadow:0 20px 50px rgba(0,0,0,.3);border-radius:12px}' +
  '.modal .dialog{width:min(92vw,440px)}' +
  '.fullscreen .dialog{display:flex;width:100%;height:100%;max-height:none;border-radius:0}' +
  '.fullscreen .body{max-width:560px;margin:auto}' +
  '.slide-in .dialog,.bar .dialog{position:fixed;z-index:2147483000}' +
  '.slide-in .dialog{right:16px;bottom:16px;width:min(calc(100vw - 32px),360px);padding:24px 24px 16px}' +
  '.bar .dialog{left:0;right:0;border-radius:0;padding:12px 56px 12px 16px;box-shadow:0 0 24px rgba(0,0,0,.25)}' +
  '.bar-top .dialog{top:0}.bar-bottom .dialog{bottom:0}' +
  '.bar .body{display:flex;flex-wrap:wrap;align-items:center;justify-content:center;gap:8px 16px;text-align:center}' +
  '.bar .x{top:50%;transform:translateY(-50%)}' +
  '.bar h1,.bar h2,.bar h3,.bar p,.bar .tp-link{margin:0;font-size:1em}' +
  '.bar .tp-code{padding:.2em .6em;font-size:1.1em}.bar .tp-button{width:auto}' +
  '.dialog:focus{outline:none}' +
  'h1,h2,h3{margin:0 24px .5em 0;font-size:1.4em;line-height:1.25}p{margin:0 0 1em}' +
  '.x{position:absolute;top:8px;right:8px;width:36px;height:36px;border:0;border-radius:50%;background:transparent;' +
  'font-size:24px;line-height:1;cursor:pointer;color:#4b5563}.x:hover{background:#f3f4f6}' +
  '.tp-code{font:700 1.5em/1 ui-monospace,monospace;letter-spacing:.08em;text-align:center;padding:.6em;' +
  'border:2px dashed #9ca3af;border-radius:8px;user-select:all}' +
  '.tp-button{display:block;box-sizing:border-box;width:100%;padding:.75em 1em;border:0;border-radius:8px;' +
  'background:#111827;color:#fff;font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}' +
  '.tp-link{display:block;margin:.75em auto 0;border:0;background:none;color:#4b5563;font:inherit;' +
  'text-decoration:underline;cursor:pointer}' +
  ':focus-visible{outline:3px solid #2563eb;outline-offset:2px}' +
  'label{display:block;margin:0 0 .75em;font-weight:600}' +
  'input:not([type=checkbox]):not([type=radio]),select,textarea{display:block;box-sizing:border-box;' +
  'width:100%;margin-top:.25em;padding:.6em .75em;border:1px solid #6b7280;border-radius:8px;background:#fff;' +
  'font:inherit;font-weight:400}' +
  '[aria-invalid=true]{border-color:#b91c1c}.tp-error{margin:-.5em 0 .75em;color:#b91c1c;font-size:.9em}' +
  '[hidden]{display:none!important}' +
  '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
  '@media (prefers-reduced-motion:no-preference){.dialog{animation:tp-in .2s ease-out}}' +
  '@keyframes tp-in{from{opacity:0;transform:translateY(12px)}}';

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
// `html`, styled like every popup plus `css`; the caller puts it in the page.
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

// `extra`: more rules after the popup styles (the consent banner's).
function adoptStyles(root, extra) {
  var css = CSS + (extra || '');
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

// Shows `popup` ({campaign, variant, style, html}); `on.close()` and `on.convert(fields)` report
// what the visitor did (`fields`: what a form held, when one was sent). Returns false when a page
// listener cancelled `touchpoint:show`.
export function showPopup(popup, on) {
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
      '<div class="body"></div></div><div class="sr" role="status"></div>'
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
  // Multi-step templates (teaser, form, success) show one step at a time.
  var step = function (shown, focus) {
    each(steps, function (item) {
      item.hidden = item !== shown;
    });
    shown.hidden = false;
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
    if (fields.tp_hp) {
      event.preventDefault(); // a bot: it sees success, nothing is sent
      return succeed(event);
    }
    delete fields.tp_hp;
    convert(event, fields);
  };
  // data-tp-copy="ID": the text of the element with that id to the clipboard (a coupon code).
  var copy = function (button) {
    var source = root.getElementById(button.getAttribute('data-tp-copy'));
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
