// The console's only script. Every page works without it (forms post and
// redirect); with it, the approvals list refreshes itself without a reload.
'use strict';

(function () {
  var live = document.getElementById('live');
  var body = document.getElementById('approval-rows');
  if (!live || !body || !live.dataset.poll) return;
  var url = live.dataset.poll;
  var every = 3000;

  function rowsOf(html) {
    var doc = new DOMParser().parseFromString('<table><tbody>' + html + '</tbody></table>', 'text/html');
    return Array.prototype.slice.call(doc.querySelectorAll('tbody > tr'));
  }

  // Rows are matched by approval id: a row whose status did not change stays
  // as it is, so a reason being typed (and the focus) survives the refresh.
  function merge(fresh) {
    var current = {};
    Array.prototype.forEach.call(body.querySelectorAll('tr'), function (tr) {
      current[tr.dataset.id] = tr;
    });
    var keep = {};
    fresh.forEach(function (tr, i) {
      var old = current[tr.dataset.id];
      var row = old && old.dataset.status === tr.dataset.status ? old : document.importNode(tr, true);
      keep[tr.dataset.id] = true;
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
      if (old && old !== row) old.remove();
    });
    Object.keys(current).forEach(function (id) {
      if (!keep[id] && current[id].parentNode === body) current[id].remove();
    });
  }

  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (res) {
        // Signed out meanwhile: the sign-in page came back; stop.
        if (!res.ok || res.redirected) throw new Error('stopped');
        return res.text();
      })
      .then(function (html) {
        merge(rowsOf(html));
        live.textContent = 'Updated ' + new Date().toLocaleTimeString() + '. The list refreshes itself every few seconds.';
        setTimeout(poll, every);
      })
      .catch(function () {
        live.textContent = 'Automatic refresh stopped; reload the page to see new calls.';
      });
  }
  setTimeout(poll, every);
})();
