// Hanko's verification page: optional comforts only. The form works without this
// script (a plain multipart POST answered with an HTML report).
(function () {
  "use strict";
  // Tells the stylesheet (and the tests) that the script ran.
  document.documentElement.classList.add("js");
  var drop = document.getElementById("drop");
  var input = document.getElementById("file");
  var form = document.getElementById("verify-form");
  if (!drop || !input || !form) { return; }
  ["dragenter", "dragover"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    var files = e.dataTransfer && e.dataTransfer.files;
    if (!files || files.length === 0) { return; }
    var first = new DataTransfer();
    first.items.add(files[0]);
    input.files = first.files;
    if (files.length > 1) {
      var data = document.getElementById("data");
      var rest = new DataTransfer();
      for (var i = 1; i < files.length; i++) { rest.items.add(files[i]); }
      if (data) { data.files = rest.files; }
    }
  });
  // When printing, the technical checks are shown open.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.checks").forEach(function (d) { d.open = true; });
  });
})();
