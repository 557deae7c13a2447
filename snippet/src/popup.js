// Popups render inside a Shadow DOM root, so the host page's CSS cannot break them and theirs
// cannot leak out. The dialog is accessible: role="dialog", aria-modal, labelled by the
// template's first heading, focus moves in and is trapped, Esc closes, focus returns after.

import { emit } from './notify.js';

var CSS =
  ':host{all:initial}' +
  '.backdrop{position:fixed;inset:0;z-index:2147483000;display:flex;align-items:center;justify-content:center;' +
  'background:rgba(17,24,39,.55);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827}' +
  '.dialog{position:relative;box-sizing:border-box;width:min(92vw,440px);max-height:90vh;overflow:auto;background:#fff;' +
  'border-radius:12px;padding:28px 28px 20px;box-shadow:0 20px 50px rgba(0,0,0,.3)}' +
  '.dialog:focus{outline:none}' +
  'h1,h2,h3{margin:0 0 .5em;font-size:1.4em;line-height:1.25}p{margin:0 0 1em}' +
  '.x{position:absolute;top:8px;right:8px;width:36px;height:36px;border:0;border-radius:50%;background:transparent;' +
  'font-size:24px;line-height:1;cursor:pointer;color:#4b5563}.x:hover{background:#f3f4f6}' +
  '.tp-code{font:700 1.5em/1 ui-monospace,monospace;letter-spacing:.08em;text-align:center;padding:.6em;' +
  'border:2px dashed #9ca3af;border-radius:8px;user-select:all}' +
  '.tp-button{display:block;box-sizing:border-box;width:100%;padding:.75em 1em;border:0;border-radius:8px;' +
  'background:#111827;color:#fff;font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}' +
  '.tp-link{display:block;margin:.75em auto 0;border:0;background:none;color:#4b5563;font:inherit;' +
  'text-decoration:underline;cursor:pointer}' +
  ':focus-visible{outline:3px solid #2563eb;outline-offset:2px}';

var FOCUSABLE = 'a[href],button:not([disabled]),input:not([disabled]),select,textarea,[tabindex]:not([tabindex="-1"])';

function adoptStyles(root) {
  // A constructed stylesheet is not an inline <style>, so a CSP without 'unsafe-inline' in
  // style-src still allows it; older browsers fall back to a <style> element.
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
  }
}

// Shows `popup` ({campaign, variant, html}); `on.close()` and `on.convert()` report what the
// visitor did. Returns false when a page listener cancelled `touchpoint:show`.
export function showPopup(popup, on) {
  var detail = { campaign: popup.campaign, variant: popup.variant };
  if (!emit('show', detail)) return false;

  var host = document.createElement('div');
  host.setAttribute('data-tp-popup', popup.campaign);
  var root = host.attachShadow({ mode: 'open' });
  adoptStyles(root);
  var backdrop = document.createElement('div');
  backdrop.className = 'backdrop';
  backdrop.innerHTML =
    '<div class="dialog" role="dialog" aria-modal="true" tabindex="-1">' +
    '<button class="x" type="button" data-tp-close aria-label="Close">\u00d7</button>' +
    '<div class="body"></div></div>';
  root.appendChild(backdrop);
  var dialog = backdrop.firstChild;
  var body = dialog.lastChild;
  body.innerHTML = popup.html; // rendered by the server's autoescaping sandbox; scripts never run
  var heading = body.querySelector('h1,h2,h3,[data-tp-title]');
  if (heading) {
    heading.id = heading.id || 'tp-title';
    dialog.setAttribute('aria-labelledby', heading.id);
  } else {
    dialog.setAttribute('aria-label', popup.campaign);
  }

  var returnFocus = document.activeElement;
  var finish = function () {
    document.removeEventListener('keydown', onKey, true);
    host.remove();
    if (returnFocus && returnFocus.focus) returnFocus.focus();
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
    } else if (event.key === 'Tab') {
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
  backdrop.addEventListener('click', function (event) {
    var target = event.target;
    if (target === backdrop || target.closest('[data-tp-close]')) close();
    else if (target.closest('a[data-tp-convert],button[data-tp-convert]')) convert(event);
  });
  backdrop.addEventListener('submit', function (event) {
    if (event.target.matches('form[data-tp-convert]')) convert(event);
  });
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(host);
  var firstField = body.querySelector(FOCUSABLE);
  (firstField || dialog).focus();
  return true;
}
