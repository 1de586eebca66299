// A client-side app: after the load event it fetches its data, then renders in two steps.
// The scanner must wait for the fetch and the DOM to go quiet before running axe-core.
window.addEventListener('load', () => {
  fetch('/assets/dashboard.json')
    .then((res) => res.json())
    .then((data) => {
      document.title = data.title;
      const app = document.getElementById('app');
      app.removeAttribute('aria-busy');
      app.innerHTML = '<header><nav aria-label="App"><a href="#overview">Overview</a> <a href="#reports">Reports</a></nav></header>' +
        '<main id="main"><h1>' + data.title + '</h1><section id="overview"><h2>Overview</h2><p>Loading figures…</p></section></main>';
      setTimeout(() => {
        const section = document.getElementById('overview');
        const rows = data.reports.map((r) => '<li><button type="button">Open ' + r + '</button></li>');
        // Two findings the app brings when it renders: an unlabelled search box and an icon-only button.
        section.innerHTML = '<h2>Overview</h2><input type="search" placeholder="Search"><button type="button"><svg width="12" height="12"><rect width="12" height="12"></rect></svg></button><ul>' + rows.join('') + '</ul>';
      }, 50);
    });
});
