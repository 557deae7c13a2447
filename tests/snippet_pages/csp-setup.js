// The queue stub and page context, from a file: a strict CSP allows no inline script.
window.touchpoint = window.touchpoint || function () { (touchpoint.q = touchpoint.q || []).push(arguments); };
touchpoint('context', { page_type: 'home' });
window.violations = [];
document.addEventListener('securitypolicyviolation', function (event) {
  window.violations.push(event.violatedDirective + ' ' + event.blockedURI);
});
