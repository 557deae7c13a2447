// Desktop exit intent: the pointer leaves the document through its top edge, towards the tab
// bar, the address bar or the close button (docs/exit-intent.md).
//
// Only a `mouseout` with no element to go to (relatedTarget null) counts, so moving onto a
// fixed header, into a <select> dropdown or an autocomplete list does not: those either have a
// related element or are left at a clientY inside the viewport. In-site link clicks never fire
// it either: navigation is not pointer movement. Returns a function that disarms the listener.

export function onExitIntent(minSeconds, fire) {
  var armedAt = Date.now() + minSeconds * 1000;
  var handler = function (event) {
    if (event.relatedTarget || event.clientY > 0) return;
    if (Date.now() < armedAt) return;
    var tag = event.target && event.target.nodeName;
    if (tag === 'SELECT' || tag === 'OPTION') return;
    disarm();
    fire();
  };
  var disarm = function () {
    document.removeEventListener('mouseout', handler);
  };
  document.addEventListener('mouseout', handler);
  return disarm;
}
