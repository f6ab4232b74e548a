/* Swap processing placeholders for the real images once their job is done.
 *
 * Images rendered by {% attachment_img %} (and the admin widget) while processing
 * carry data-attachment-status (a signed status URL) and data-attachment-style.
 * Each distinct status URL is polled with a growing delay until the attachment is
 * ready or failed; then every image of it gets its style's URL (the failed
 * placeholder if it failed), its data-attachment-state, and polling stops; an
 * image in a <picture> (attachment_picture) gets its style's sources and srcset.
 * Around an image, an element marked data-attachment-preview gets data-state,
 * and shows only its [data-attachment-label] elements naming the new state (a
 * label naming none is the processing one). No framework.
 *
 * While processing, an image shows the attachment's preview (a tiny image,
 * blurred, marked data-attachment-blurred) as soon as there is one: rendered so,
 * or from a status reply that brings it. The blur goes once the style has loaded.
 */
(function () {
  "use strict";

  var FIRST_DELAY = 500;
  var MAX_DELAY = 10000;
  var GIVE_UP_AFTER = 30 * 60 * 1000;

  // As status.img_attrs renders it: about half a preview pixel (24 a side) as displayed.
  function blur(img, preview) {
    var side = Math.max(img.width, img.height) || 200;
    var radius = Math.min(Math.max(Math.ceil(side / 48), 2), 40);
    img.src = preview;
    img.style.filter = "blur(" + radius + "px)";
    img.style.clipPath = "inset(0)";
    img.style.objectFit = "cover";
    // The style's shape, where the page lets images take their own (height: auto).
    var width = img.getAttribute("width"), height = img.getAttribute("height");
    if (width && height) {
      img.style.aspectRatio = width + " / " + height;
    }
    img.setAttribute("data-attachment-blurred", "");
  }

  function unblur(img) {
    img.style.filter = "";
    img.style.clipPath = "";
    img.style.objectFit = "";
    img.style.aspectRatio = "";
    img.removeAttribute("data-attachment-blurred");
  }

  function showPreview(images, preview) {
    images.forEach(function (img) {
      if (!img.hasAttribute("data-attachment-blurred")) {
        blur(img, preview);
      }
    });
  }

  function settle(images, data) {
    images.forEach(function (img) {
      var style = img.getAttribute("data-attachment-style");
      img.setAttribute("data-attachment-state", data.state);
      if (data.pictures && data.pictures[style] && img.parentNode.nodeName === "PICTURE") {
        fillPicture(img, data.pictures[style]);
      }
      var url = data.urls && data.urls[style];
      if (img.hasAttribute("data-attachment-blurred")) {
        if (url) {
          // The preview stays, blurred, until the style is there to replace it.
          var done = function () { unblur(img); };
          img.addEventListener("load", done, { once: true });
          img.addEventListener("error", done, { once: true });
        } else {
          unblur(img);
        }
      }
      if (url) {
        img.src = url;
      }
      img.removeAttribute("data-attachment-status");
      var preview = img.closest("[data-attachment-preview]");
      if (preview) {
        preview.setAttribute("data-state", data.state);
        preview.querySelectorAll("[data-attachment-label]").forEach(function (label) {
          label.hidden = (label.getAttribute("data-attachment-label") || "processing") !== data.state;
        });
      }
      img.dispatchEvent(new CustomEvent("attachment:" + data.state, { bubbles: true, detail: data }));
    });
  }

  /* A responsive style's <picture>: its sources, best format first, then the
   * <img>'s own srcset, all before its src changes, so the browser picks once. */
  function fillPicture(img, picture) {
    // Made in the request already (only_process), the <img> has its sizes.
    var sizes = img.getAttribute("data-attachment-sizes") || img.getAttribute("sizes") || "100vw";
    img.parentNode.querySelectorAll("source").forEach(function (old) { old.remove(); });
    picture.sources.forEach(function (data) {
      var source = document.createElement("source");
      source.type = data.type;
      source.sizes = sizes;
      source.srcset = data.srcset;
      img.parentNode.insertBefore(source, img);
    });
    img.sizes = sizes;
    img.srcset = picture.srcset;
    img.removeAttribute("data-attachment-sizes");
  }

  function poll(url, images, delay, started) {
    if (Date.now() - started > GIVE_UP_AFTER) {
      return;
    }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status >= 400 && response.status < 500) {
            return { state: "gone" };
          }
          return response.ok ? response.json() : null;
        })
        .catch(function () {
          return null; // offline or server restarting: keep trying
        })
        .then(function (data) {
          if (data && data.state === "gone") {
            return;
          }
          if (data && (data.state === "ready" || data.state === "failed")) {
            settle(images, data);
            return;
          }
          if (data && data.preview) {
            showPreview(images, data.preview);
          }
          poll(url, images, Math.min(delay * 1.5, MAX_DELAY), started);
        });
    }, delay);
  }

  function start(root) {
    var byUrl = {};
    root.querySelectorAll("img[data-attachment-status]").forEach(function (img) {
      var url = img.getAttribute("data-attachment-status");
      (byUrl[url] = byUrl[url] || []).push(img);
    });
    Object.keys(byUrl).forEach(function (url) {
      poll(url, byUrl[url], FIRST_DELAY, Date.now());
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { start(document); });
  } else {
    start(document);
  }
})();
