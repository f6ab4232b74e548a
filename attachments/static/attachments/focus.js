/* The focal point picker of the attachment widget (widgets.py).
 *
 * Clicking the picture moves the marker there and writes the point, as
 * fractions of the picture's width and height, into the hidden input the
 * form reads ("x,y"). The picture shows the whole frame, so fractions of it
 * are fractions of the original.
 */
(function () {
  "use strict";

  function clamp(value) {
    return Math.min(1, Math.max(0, value));
  }

  function setUp(picker) {
    var image = picker.querySelector("[data-attachment-focus-image]");
    var marker = picker.querySelector("[data-attachment-focus-marker]");
    var input = picker.querySelector("input[type=hidden]");
    if (!image || !marker || !input || picker.hasAttribute("data-attachment-focus-ready")) {
      return;
    }
    picker.setAttribute("data-attachment-focus-ready", "");
    image.addEventListener("click", function (event) {
      var box = image.getBoundingClientRect();
      var x = clamp((event.clientX - box.left) / box.width);
      var y = clamp((event.clientY - box.top) / box.height);
      input.value = x.toFixed(4) + "," + y.toFixed(4);
      marker.style.left = (x * 100).toFixed(2) + "%";
      marker.style.top = (y * 100).toFixed(2) + "%";
      marker.hidden = false;
    });
  }

  function setUpAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-attachment-focus]"), setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }
})();
