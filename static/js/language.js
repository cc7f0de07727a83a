// The header's language picker (base.html): a <select> and its "Change"
// button, a plain POST form to Django's set_language (it works without
// JavaScript). With it, the button shows only once another language is
// chosen, so the header stays short on a phone; the page never changes by
// itself while someone steps through the options with the arrow keys.

const form = document.querySelector(".language-form");
if (form) {
  const select = form.querySelector("select");
  const button = form.querySelector("button[type=submit]");
  const current = select.value;
  const update = () => {
    button.hidden = select.value === current;
  };
  select.addEventListener("change", update);
  update();
}
