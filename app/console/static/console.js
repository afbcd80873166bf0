// Progressive enhancement only: every form works without it.
// Forms with data-confirm ask first (resend sends the guest a message).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  // One click, one action: a double click must not resend twice.
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.disabled = true;
  }
});
