/* The focal point picker of the attachment widget (widgets.py).
 *
 * Clicking the picture moves the marker there and writes the point, as
 * fractions of the picture's width and height, into the hidden input the
 * form reads ("x,y"). The picture shows the whole frame, so fractions of it
 * are fractions of the original. From the keyboard, the arrow keys move the
 * point by a fiftieth of the picture (a tenth with Shift).
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

    function place(x, y) {
      x = clamp(x);
      y = clamp(y);
      input.value = x.toFixed(4) + "," + y.toFixed(4);
      marker.style.left = (x * 100).toFixed(2) + "%";
      marker.style.top = (y * 100).toFixed(2) + "%";
      marker.hidden = false;
    }

    image.addEventListener("click", function (event) {
      var box = image.getBoundingClientRect();
      place((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
    });
    image.addEventListener("keydown", function (event) {
      var moves = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
      var move = moves[event.key];
      if (!move) {
        return;
      }
      event.preventDefault();
      var step = event.shiftKey ? 0.1 : 0.02;
      var x = parseFloat(marker.style.left) / 100;
      var y = parseFloat(marker.style.top) / 100;
      place(x + move[0] * step, y + move[1] * step);
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
