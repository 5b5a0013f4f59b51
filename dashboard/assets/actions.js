// Alert actions: the Acknowledge, Resolve and Assign buttons sit in a table that the page
// re-renders every few seconds. A Dash n_clicks on a button that is replaced while its click is
// on its way arrives as 0 on the new button and is lost. So the click is caught here, on the
// document, and handed to a store outside the table (dashboard/pages/alerts.py, callback `act`),
// with the comment typed and the person picked in the SAME row as the button: a comment
// belongs to its alert and cannot land on another one.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-alert-action]");
  if (!button || !window.dash_clientside || !window.dash_clientside.set_props) {
    return;
  }
  var alertId = button.getAttribute("data-alert-id");
  var row = button.closest("tr");
  var comment = row && row.querySelector('[data-alert-comment="' + alertId + '"]');
  var assignee = row && row.querySelector('[data-alert-assignee="' + alertId + '"]');
  window.dash_clientside.set_props("alerts-click", {
    data: {
      alert: Number(alertId),
      action: button.getAttribute("data-alert-action"),
      comment: comment ? comment.value : null,
      assignee: assignee ? assignee.value : null,
      at: Date.now(), // a second click on the same button is a new value
    },
  });
});

// What is typed in a row's comment box, or picked in its list, must survive the page's refresh:
// Dash mounts the table's rows afresh each time it re-renders them (every few seconds), which
// would empty the boxes and drop the focus under the person's fingers. So drafts are kept here,
// by element id, and put back (with the focus and the caret) as soon as the new rows appear.
// The ids change when a person has acted on the alert (dashboard/pages/alert_rows.py), so an
// acknowledged alert's box starts empty.
(function () {
  var drafts = {};
  var focused = null; // {id, start, end} of the box being typed in

  function remember(target) {
    if (!target || !target.id) {
      return;
    }
    if (target.matches("[data-alert-comment], [data-alert-assignee]")) {
      drafts[target.id] = target.value;
    }
  }
  document.addEventListener("input", function (event) {
    remember(event.target);
  });
  document.addEventListener("change", function (event) {
    remember(event.target);
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-alert-comment], [data-alert-assignee]")) {
      focused = { id: event.target.id, start: null, end: null };
    }
  });
  document.addEventListener("selectionchange", function () {
    var el = document.activeElement;
    if (focused && el && el.id === focused.id && el.selectionStart !== undefined) {
      focused.start = el.selectionStart;
      focused.end = el.selectionEnd;
    }
  });
  document.addEventListener("focusout", function (event) {
    // Leaving the box on purpose (not the box being replaced under the focus).
    if (focused && event.target.id === focused.id && event.relatedTarget) {
      focused = null;
    }
  });

  function restore() {
    Object.keys(drafts).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.value !== drafts[id]) {
        el.value = drafts[id];
      }
    });
    if (focused && document.activeElement && document.activeElement.id !== focused.id) {
      var el = document.getElementById(focused.id);
      if (el && (document.activeElement === document.body || !document.activeElement.id)) {
        el.focus();
        if (focused.start !== null && el.setSelectionRange) {
          el.setSelectionRange(focused.start, focused.end);
        }
      }
    }
  }
  new MutationObserver(restore).observe(document.documentElement, {
    childList: true,
    subtree: true,
  });
})();
