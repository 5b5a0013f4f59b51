// Alert actions: the Acknowledge and Resolve buttons sit in a table that the page re-renders
// every few seconds. A Dash n_clicks on a button that is replaced while its click is on its way
// arrives as 0 on the new button and is lost. So the click is caught here, on the document, and
// handed to a store outside the table (dashboard/pages/alerts.py, callback `act`).
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-alert-action]");
  if (!button || !window.dash_clientside || !window.dash_clientside.set_props) {
    return;
  }
  window.dash_clientside.set_props("alerts-click", {
    data: {
      alert: Number(button.getAttribute("data-alert-id")),
      action: button.getAttribute("data-alert-action"),
      at: Date.now(), // a second click on the same button is a new value
    },
  });
});
