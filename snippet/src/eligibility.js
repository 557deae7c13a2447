// The last check before a popup shows (docs/exit-intent.md#eligibility-recheck). A popup waits
// for its trigger after the decision; meanwhile the visitor may have closed or converted it in
// another tab of the site. Tabs tell each other on a BroadcastChannel (in memory: nothing is
// stored), and with the marketing consent the server is asked, within a short budget.

import { post } from './transport.js';

var BUDGET = 300; // ms the server may take; later, the popup shows as decided
var ended = {}; // campaigns closed or converted in another tab during this tab's life
var channel = null;
try {
  channel = new BroadcastChannel('touchpoint');
  channel.onmessage = function (message) {
    if (message.data && message.data.campaign) ended[message.data.campaign] = true;
  };
} catch (error) {
  channel = null; // no BroadcastChannel (Safari before 15.4): the server check remains
}

// Tells the site's other tabs that the visitor closed or converted `campaign` here.
export function announceEnd(campaign) {
  if (channel) channel.postMessage({ campaign: campaign }); // open for the tab's life
}

// Calls show() unless the popup may no longer show. `ask`: whether to ask the server too.
export function recheck(base, popup, ask, show) {
  if (ended[popup.campaign]) return;
  if (!ask || popup.trigger.on === 'load') return show();
  var done = false;
  var answer = function (eligible) {
    if (!done) {
      done = true;
      if (eligible && !ended[popup.campaign]) show();
    }
  };
  setTimeout(answer, BUDGET, true);
  post(base, '/v1/eligible', { campaign: popup.campaign }).then(
    function (body) {
      answer(body.eligible !== false);
    },
    function () {
      answer(true);
    },
  );
}
