// The count of open, unacknowledged alerts (dashboard/nav_alerts.py): in the tab title, and,
// when this browser opted in with the bell, a short sound and a desktop notification when it
// grows. Client-side only, and a file of its own: the app's CSP allows no inline script.
//
// The server refreshes the count in #nav-alert-count (empty for none; the class "ready" once it
// has been counted). This script watches the page for changes rather than polling: the count
// and the page's heading (the title says which page) are both redrawn by Dash.
//
// * Title: "(3) Fleet · Cold chain"; without alerts "Fleet · Cold chain"; the count is left out
//   until it is known.
// * The opt-in is per browser (localStorage "coldchain.alertNotify" = "on"), switched by the
//   bell (#nav-alert-bell, aria-pressed). Turning it on asks for the notification permission and
//   unlocks sound (browsers allow audio only after a click). The first count of a page load is
//   never announced, only a rise after it; each announcement bumps data-alerts-announced on
//   <html> (what was announced, for people debugging it and for the browser tests).
(function () {
  "use strict";
  var KEY = "coldchain.alertNotify";
  var BRAND = "Cold chain";
  var last = null; // the count last seen since this page loaded; null until the first one
  var audio = null;
  var scheduled = false;

  function enabled() {
    try {
      return window.localStorage.getItem(KEY) === "on";
    } catch (e) {
      return false; // storage refused (private mode, policy): no opt-in
    }
  }

  function setEnabled(on) {
    try {
      window.localStorage.setItem(KEY, on ? "on" : "off");
    } catch (e) {
      /* not remembered, but still on for this page */
    }
  }

  function syncBell() {
    var bell = document.getElementById("nav-alert-bell");
    if (!bell) {
      return;
    }
    var on = enabled() ? "true" : "false";
    if (bell.getAttribute("aria-pressed") !== on) {
      bell.setAttribute("aria-pressed", on);
      bell.classList.toggle("on", on === "true");
    }
  }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) {
        return;
      }
      audio = audio || new Context();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (e) {
      /* no sound here: the notification and the title still say it */
    }
  }

  function notify(count) {
    try {
      if ("Notification" in window && window.Notification.permission === "granted") {
        new window.Notification(BRAND + ": " + count + " alert" + (count === 1 ? "" : "s") +
          " not acknowledged", { tag: "coldchain-alerts", body: "Open the Alerts page to act." });
      }
    } catch (e) {
      /* notifications unavailable (e.g. a service-worker-only browser) */
    }
  }

  function announce(count) {
    var root = document.documentElement;
    var announced = Number(root.getAttribute("data-alerts-announced") || 0) + 1;
    root.setAttribute("data-alerts-announced", String(announced));
    beep();
    notify(count);
  }

  function pageTitle(count) {
    var heading = document.querySelector("main h1");
    var name = heading ? heading.textContent.trim() : "";
    var base = name ? name + " · " + BRAND : BRAND + " · control tower";
    return count > 0 ? "(" + count + ") " + base : base;
  }

  function update() {
    scheduled = false;
    syncBell();
    var badge = document.getElementById("nav-alert-count");
    var known = badge && badge.classList.contains("ready");
    var count = known ? Number(badge.textContent.trim() || 0) : null;
    var title = pageTitle(count || 0);
    if (document.title !== title) {
      document.title = title;
    }
    if (count === null) {
      return;
    }
    if (last !== null && count > last && enabled()) {
      announce(count);
    }
    last = count;
  }

  function schedule() {
    if (!scheduled) {
      scheduled = true;
      window.setTimeout(update, 0); // not requestAnimationFrame: paused in a background tab
    }
  }

  document.addEventListener("click", function (event) {
    var bell = event.target.closest && event.target.closest("#nav-alert-bell");
    if (!bell) {
      return;
    }
    var on = !enabled();
    setEnabled(on);
    if (on) {
      beep(); // in the click itself: this is what lets the browser play sound later
      if ("Notification" in window && window.Notification.permission === "default") {
        window.Notification.requestPermission();
      }
    }
    syncBell();
  });

  function start() {
    new MutationObserver(schedule).observe(document.body, {
      childList: true,
      subtree: true,
      characterData: true,
      attributes: true,
      attributeFilter: ["class"],
    });
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
