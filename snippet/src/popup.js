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
  '.tp{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827}' +
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

export var FOCUSABLE = 'a[href],button:not([disabled]),input:not([disabled]),select,textarea,[tabindex]:not([tabindex="-1"])';

// `extra`: more rules after the popup styles (the consent banner's).
export function adoptStyles(root, extra) {
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

// Shows `popup` ({campaign, variant, style, html}); `on.close()` and `on.convert()` report what
// the visitor did. Returns false when a page listener cancelled `touchpoint:show`.
export function showPopup(popup, on) {
  var detail = { campaign: popup.campaign, variant: popup.variant };
  if (!emit('show', detail)) return false;

  var kind = STYLES[popup.style] || STYLES.modal;
  var modal = kind.indexOf('modal') === 0;
  var host = document.createElement('div');
  host.setAttribute('data-tp-popup', popup.campaign);
  var root = host.attachShadow({ mode: 'open' });
  adoptStyles(root);
  var frame = document.createElement('div');
  frame.className = 'tp ' + kind;
  frame.innerHTML =
    '<div class="dialog" role="dialog" tabindex="-1"' + (modal ? ' aria-modal="true">' : '>') +
    '<button class="x" type="button" data-tp-close aria-label="Close">\u00d7</button>' +
    '<div class="body"></div></div>' + (modal ? '' : '<div class="sr" role="status"></div>');
  root.appendChild(frame);
  var dialog = frame.firstChild;
  var body = dialog.lastChild;
  body.innerHTML = popup.html; // rendered by the server's autoescaping sandbox; scripts never run
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
  var convert = function (event) {
    if (!emit('convert', detail)) {
      event.preventDefault();
      return;
    }
    on.convert();
    var success = body.querySelector('[data-tp-success]');
    if (success && event.type === 'submit') {
      event.preventDefault();
      success.hidden = false;
      event.target.hidden = true;
    } else {
      finish();
    }
  };
  var onKey = function (event) {
    if (event.key === 'Escape') {
      event.stopPropagation();
      close();
    } else if (modal && event.key === 'Tab') {
      var items = dialog.querySelectorAll(FOCUSABLE);
      if (!items.length) return;
      var first = items[0];
      var last = items[items.length - 1];
      var active = root.activeElement;
      if (event.shiftKey && (active === first || !active)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || !active)) {
        event.preventDefault();
        first.focus();
      }
    }
  };
  frame.addEventListener('click', function (event) {
    var target = event.target;
    if (target === frame || target.closest('[data-tp-close]')) close();
    else if (target.closest('a[data-tp-convert],button[data-tp-convert]')) convert(event);
  });
  frame.addEventListener('submit', function (event) {
    if (event.target.matches('form[data-tp-convert]')) convert(event);
  });
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
    (body.querySelector(FOCUSABLE) || dialog).focus();
  } else {
    // A live region announces only changes made after it is in the page, hence the delay.
    setTimeout(function () {
      frame.lastChild.textContent = heading ? heading.textContent : popup.campaign;
    }, 100);
  }
  return true;
}
