// The demo shop's own consent tool, standing in for whatever consent manager a real site runs.
// It keeps the visitor's choice in its own storage and hands it to Touchpoint on every page
// through the JS API, exactly as a site with an existing consent tool integrates Touchpoint.
(function () {
  'use strict';
  var KEY = 'demo-shop-consent';
  var ALL = { measurement: true, personalisation: true, marketing: true };
  var NONE = { measurement: false, personalisation: false, marketing: false };

  function tell(choice) {
    window.touchpoint('consent', choice);
  }

  function ask() {
    var box = document.createElement('div');
    box.id = 'cmp';
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-labelledby', 'cmp-title');
    box.innerHTML =
      '<p id="cmp-title"><strong>Cookies at Greenfield Outdoor</strong><br>' +
      'May we remember you to measure visits, personalise offers and not show you the same offer twice?</p>' +
      '<div class="choices"><button type="button" data-choice="reject">Reject all</button>' +
      '<button type="button" data-choice="accept">Accept all</button></div>';
    box.addEventListener('click', function (event) {
      var choice = event.target.getAttribute('data-choice');
      if (!choice) return;
      var value = choice === 'accept' ? ALL : NONE;
      try { localStorage.setItem(KEY, JSON.stringify(value)); } catch (e) { /* private mode */ }
      box.remove();
      tell(value);
    });
    document.body.appendChild(box);
  }

  var stored = null;
  try { stored = JSON.parse(localStorage.getItem(KEY) || 'null'); } catch (e) { stored = null; }
  if (stored) tell(stored);
  else ask();

  document.addEventListener('click', function (event) {
    if (event.target.closest && event.target.closest('[data-cmp-settings]')) {
      event.preventDefault();
      if (!document.getElementById('cmp')) ask();
    }
  });
})();
