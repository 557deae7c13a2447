// Content slots: <div data-tp-slot="hero">default</div> elements whose content a campaign may
// replace (docs/embedding.md#content-slots).

import { emit } from './notify.js';

var NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/; // also keeps the attribute selector below well-formed
var MAX = 20;

function elements(name) {
  return document.querySelectorAll('[data-tp-slot="' + name + '"]');
}

// The distinct slot names on the page, as the decide request carries them.
export function slotNames() {
  var names = [];
  var found = document.querySelectorAll('[data-tp-slot]');
  for (var i = 0; i < found.length && names.length < MAX; i++) {
    var name = found[i].getAttribute('data-tp-slot');
    if (NAME.test(name) && names.indexOf(name) < 0) names.push(name);
  }
  return names;
}

// Slot elements an answer filled, kept or had vetoed: a later answer (after a consent change,
// or a single-page app's next view with the same layout) does not swap them under the reader.
var decided = new WeakSet();

function open(name) {
  return Array.prototype.filter.call(elements(name), function (element) {
    return !decided.has(element);
  });
}

// The page keeps its default content in these slots, whatever a later answer says.
export function keepDefaults(names) {
  names.forEach(function (name) {
    open(name).forEach(function (element) {
      decided.add(element);
    });
  });
}

// Fills the slots of a decide answer ({name: {campaign, variant, control, html}}) not decided
// yet, and returns what happened as [type, content] pairs, one per campaign: "impression" for
// content shown, "exposure" for a holdout that keeps the page's default.
export function fillSlots(answer) {
  var happened = [];
  var seen = {};
  Object.keys(answer || {}).forEach(function (name) {
    var content = answer[name];
    var found = NAME.test(name) ? open(name) : [];
    if (!found.length) return;
    keepDefaults([name]);
    // A holdout asks too, so a page that vetoes a fill vetoes its exposure alike.
    if (!emit('fill', { slot: name, campaign: content.campaign, variant: content.variant, control: !!content.control })) return;
    var type = 'exposure';
    if (!content.control) {
      for (var i = 0; i < found.length; i++) {
        found[i].innerHTML = content.html; // rendered by the server's autoescaping sandbox
        found[i].setAttribute('data-tp-filled', content.campaign);
      }
      type = 'impression';
    }
    if (seen[type + content.campaign]) return;
    seen[type + content.campaign] = true;
    happened.push([type, content]);
  });
  return happened;
}
