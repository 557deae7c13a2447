// The built-in consent banner (consent mode `builtin`, docs/embedding.md#the-built-in-banner).
// The server sends its markup and styles (server/banner.py), so the snippet carries no texts. A
// modal dialog in a Shadow DOM root, styled like the popups: "Reject all" looks exactly like
// "Accept all"; "Settings" shows one switch per category, on only where already granted. Focus
// moves in and stays there (Tab cycles), and returns to where it was once the banner closes.

import { cycle, mount } from './popup.js';

// banner: {html, css} from the server; options: {granted, reopen, gpc}. answer(granted, method)
// receives the visitor's choice; closed() runs when the banner goes, answered or not.
export function showBanner(banner, options, answer, closed) {
  var parts = mount('data-tp-consent', '', 'modal consent', banner.html, banner.css);
  var host = parts[0];
  var root = parts[1];
  var frame = parts[2];
  var dialog = frame.firstChild;
  var find = function (selector) {
    return dialog.querySelector(selector);
  };
  var switches = [].slice.call(dialog.querySelectorAll('input[name]'));
  var checked = function (all) {
    return switches
      .filter(function (input) {
        return all || input.checked;
      })
      .map(function (input) {
        return input.name;
      });
  };
  switches.forEach(function (input) {
    input.checked = options.granted.indexOf(input.name) >= 0;
  });
  find('[data-gpc]').hidden = !options.gpc;
  find('[data-a=close]').hidden = !options.reopen;
  var returnFocus = document.activeElement;

  var settings = function () {
    find('.cats').hidden = false;
    find('[data-a=settings]').hidden = true;
    find('[data-a=save]').hidden = false;
    switches[0].focus();
  };
  var finish = function () {
    document.removeEventListener('keydown', onKey, true);
    host.remove();
    if (returnFocus && returnFocus.focus) returnFocus.focus();
    closed();
  };
  var actions = {
    close: finish,
    settings: settings,
    reject: function () {
      return [[], 'banner-reject-all'];
    },
    // Under Global Privacy Control "accept all" is no opt-in to profiling or marketing (the
    // server enforces the same): those need their switch in the settings.
    accept: function () {
      return [options.gpc ? ['measurement'] : checked(true), 'banner-accept-all'];
    },
    save: function () {
      return [checked(false), 'banner-custom'];
    },
  };
  var onKey = function (event) {
    if (event.key === 'Escape' && options.reopen) {
      event.stopPropagation();
      finish();
    } else if (event.key === 'Tab') {
      cycle(event, dialog, root);
    }
  };
  frame.addEventListener('click', function (event) {
    var action = actions[event.target.getAttribute('data-a')];
    var choice = action && action();
    if (choice) {
      finish();
      answer(choice[0], choice[1]);
    }
  });
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(host);
  if (options.reopen) settings();
  else dialog.focus();
}
