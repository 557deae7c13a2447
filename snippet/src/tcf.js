// Consent from an IAB TCF v2.2 consent management platform (consent mode `tcf`,
// docs/embedding.md#iab-tcf-v22). Touchpoint is the site's own tool, not a vendor of the Global
// Vendor List, so it reads the publisher's purpose consents (tcData.publisher.consents): the
// purposes the visitor allowed the site itself. A category needs all of its purposes.
// TCF v2.2 CMP API: https://github.com/InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework

var PURPOSES = {
  marketing: [1, 3, 4], // store information; create and use profiles for personalised advertising
  measurement: [1, 8], // store information; measure content performance
  personalisation: [1, 5, 6], // store information; create and use profiles for personalised content
};

// done(granted) on every final answer of the CMP (the stored choice when it has loaded, each new
// choice of the visitor); done(null) when the CMP has not responded at all after `timeout` ms.
export function listen(timeout, done) {
  var heard = false;
  setTimeout(function () {
    if (!heard) done(null);
  }, timeout);
  if (typeof window.__tcfapi !== 'function') return;
  window.__tcfapi('addEventListener', 2, function (data, ok) {
    if (!ok || !data) return;
    heard = true; // the CMP is there; showing its dialog may take the visitor a while
    // 'cmpuishown' means the visitor is still choosing: only these two carry an answer.
    if (data.eventStatus !== 'tcloaded' && data.eventStatus !== 'useractioncomplete') return;
    var consents = (data.publisher && data.publisher.consents) || {};
    done(
      Object.keys(PURPOSES).filter(function (name) {
        return PURPOSES[name].every(function (purpose) {
          return consents[purpose] === true;
        });
      }),
    );
  });
}
