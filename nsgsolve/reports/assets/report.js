(function(){
  var data = JSON.parse(document.getElementById('cells-data').textContent);
  var detail = document.getElementById('detail');
  function el(tag, text, cls){var e=document.createElement(tag); if(text!=null) e.textContent=text; if(cls) e.className=cls; return e;}
  function packet(w){
    var p = w.protocol + ' ' + w.src + (w.src_nic ? ' (nic '+w.src_nic+')' : '') + ' \u2192 ' + w.dst + (w.dst_nic ? ' (nic '+w.dst_nic+')' : '');
    if (w.sport != null) p += ' sport ' + w.sport + ' dport ' + w.dport;
    return p;
  }
  function trace(w){
    var t = el('table'); var h = el('tr');
    ['Layer','Direction','Decided by','Access'].forEach(function(x){h.appendChild(el('th', x));});
    t.appendChild(h);
    (w.trace || []).forEach(function(i){
      var s = data.steps[i];
      var r = el('tr');
      r.appendChild(el('td', s.nsg ? s.nsg + ' on ' + s.attached_to : s.attached_to));
      r.appendChild(el('td', s.direction));
      var c = el('td');
      if (s.anchor){ var a = el('a', s.rule); a.href = '#' + s.anchor; c.appendChild(a); } else { c.textContent = s.rule; }
      if (s.priority != null) c.appendChild(document.createTextNode(' (priority ' + s.priority + ')'));
      if (s.evaluated === false) c.appendChild(el('em', ' not evaluated'));
      r.appendChild(c); r.appendChild(el('td', s.access)); t.appendChild(r);
    });
    if (!(w.trace || []).length){ var r = el('tr'); var c = el('td', 'no NSG on the path'); c.colSpan = 4; r.appendChild(c); t.appendChild(r); }
    return t;
  }
  function show(idx){
    var c = data.cells[idx]; var row = data.rows[c.row], col = data.columns[c.col];
    detail.innerHTML = '';
    detail.appendChild(el('h3', 'can ' + row.name + ' reach ' + col.name));
    if (data.diff){
      var d = data.diff[c.row + ',' + c.col];
      detail.appendChild(el('p', d ? ((d.opened ? 'opens ' + d.opened + '. ' : '') + (d.closed ? 'closes ' + d.closed + '.' : '')) : 'no change', 'diff'));
    }
    if (c.verdict == null){ detail.appendChild(el('p', 'n/a: ' + c.error.code + ' ' + c.error.message, 'verdict')); return; }
    detail.appendChild(el('p', 'verdict: ' + c.verdict + (c.summary ? ' \u2014 allowed: ' + c.summary : ''), 'verdict'));
    if (c.allowed && c.allowed.length){
      detail.appendChild(el('h4', 'Exact allowed set'));
      var ul = el('ul', null, 'exact');
      c.allowed.forEach(function(b){ ul.appendChild(el('li', b)); });
      if (c.more) ul.appendChild(el('li', c.more + ' more: nsgsolve query --exact lists every one'));
      detail.appendChild(ul);
    }
    [['allowed_witness','Allowed, for example'],['blocked_witness','Blocked, for example']].forEach(function(k){
      var w = c[k[0]]; if (!w) return;
      var box = el('div', null, k[0].replace('_','-'));
      box.appendChild(el('h4', k[1]));
      box.appendChild(el('p', w.decision.toUpperCase() + '  ' + packet(w), 'packet'));
      box.appendChild(trace(w));
      detail.appendChild(box);
    });
  }
  var selected = null;
  function pick(td){
    if (selected) selected.classList.remove('selected');
    selected = td; td.classList.add('selected'); show(+td.getAttribute('data-cell'));
  }
  document.querySelectorAll('td[data-cell]').forEach(function(td){
    td.addEventListener('click', function(){ pick(td); });
    td.addEventListener('keydown', function(e){ if (e.key === 'Enter' || e.key === ' '){ e.preventDefault(); pick(td); } });
  });
  document.querySelectorAll('tbody .toggle').forEach(function(b){
    b.addEventListener('click', function(){
      var open = b.getAttribute('aria-expanded') !== 'true';
      b.setAttribute('aria-expanded', open ? 'true' : 'false');
      var body = b.closest('tbody');
      body.querySelectorAll('tr[data-row]').forEach(function(r){ r.classList.toggle('hidden', !open); });
    });
  });
  var filter = document.getElementById('filter');
  filter.addEventListener('input', function(){
    var q = filter.value.toLowerCase();
    var colShown = data.columns.map(function(c){ return !q || c.name.toLowerCase().indexOf(q) >= 0; });
    var rowShown = data.rows.map(function(r){ return !q || r.name.toLowerCase().indexOf(q) >= 0; });
    var anyCol = colShown.some(Boolean), anyRow = rowShown.some(Boolean);
    document.querySelectorAll('[data-col]').forEach(function(e){ e.classList.toggle('hidden', anyCol && !colShown[+e.getAttribute('data-col')]); });
    document.querySelectorAll('tr[data-row]').forEach(function(e){ e.classList.toggle('hidden', anyRow && !rowShown[+e.getAttribute('data-row')]); });
  });
  // A link to one cell (report.html#cell=12) opens its detail: for sharing a finding, and for tests.
  var m = /^#cell=(\d+)$/.exec(location.hash);
  if (m){ var td = document.querySelector('td[data-cell="' + m[1] + '"]'); if (td) pick(td); }
  document.documentElement.setAttribute('data-ready', 'true');
})();
