// Copy buttons: <button data-copy="#id"> copies the text of the element it names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const text = source.innerText.trim();
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    // Plain-HTTP installs (the embedded default) have no Clipboard API.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }
});

// htmx swaps nothing on an error answer: say what went wrong instead of doing nothing.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  const text = status === 403 ? "You may not do that." : status === 404 ? "That no longer exists." : `The server answered ${status}.`;
  let box = document.querySelector(".messages");
  if (!box) {
    box = document.createElement("div");
    box.className = "messages";
    document.querySelector(".content").before(box);
  }
  const message = document.createElement("div");
  message.className = "message error";
  message.setAttribute("role", "alert");
  message.textContent = text;
  box.appendChild(message);
});
