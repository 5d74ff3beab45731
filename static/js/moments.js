/* Times for people (integrations/templatetags/moments.py renders them on the server).
 *
 * Every <time class="moment" datetime="…Z"> gets its absolute time (the tooltip, and the
 * .moment-absolute text when shown) in the reader's own time zone and locale, and its relative
 * phrase ("in 42 minutes", "3 hours ago") kept fresh while the page stays open. The phrase
 * rules are the server's, so the text does not change when this script takes over.
 * Loaded with <script src defer>: the Content-Security-Policy allows no inline script.
 */
(function () {
  "use strict";

  // Longest first; a month and a year are their Gregorian averages (as on the server).
  var UNITS = [
    ["year", 31556952],
    ["month", 2629746],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  var NBSP = "\u00a0";
  var REFRESH_EVERY = 30 * 1000;

  function span(seconds) {
    seconds = Math.max(Math.abs(seconds), 60);
    for (var i = 0; i < UNITS.length; i++) {
      var name = UNITS[i][0];
      var size = UNITS[i][1];
      if (seconds >= size) {
        var count = Math.floor(seconds / size);
        return count + NBSP + name + (count === 1 ? "" : "s");
      }
    }
    return "";
  }

  function phrase(moment, now, pastPrefix) {
    var seconds = (moment - now) / 1000;
    if (seconds > 0 && seconds < 60) return "in under a minute";
    if (seconds > 0) return "in " + span(seconds);
    if (seconds > -60) return pastPrefix + "just now";
    return pastPrefix + span(seconds) + " ago";
  }

  var absolute;
  try {
    absolute = new Intl.DateTimeFormat(undefined, {
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short",
    });
  } catch (error) {
    absolute = null; // no Intl: the server's UTC text stays
  }

  function localise(element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) return;
    if (absolute) {
      var local = absolute.format(moment);
      element.title = local;
      var shown = element.querySelector(".moment-absolute");
      if (shown) shown.textContent = local;
    }
  }

  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time.moment[datetime]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      var relative = element.querySelector(".moment-relative");
      if (isNaN(moment.getTime()) || !relative) return;
      var text = phrase(moment.getTime(), now, element.getAttribute("data-past-prefix") || "");
      if (relative.textContent !== text) relative.textContent = text;
    });
  }

  function start() {
    document.querySelectorAll("time.moment[datetime]").forEach(localise);
    refresh();
    window.setInterval(refresh, REFRESH_EVERY);
  }

  // The phrase rules, for tests that hold them against the server's.
  window.CustodianMoments = Object.freeze({ phrase: phrase });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
