/* heapcapture's report page (report_page.rb): draws the report's data (the JSON in #heap-data)
 * with the DOM and, for the dominator tree, d3-flame-graph (vendor/flamegraph.js). Text from the
 * dump only ever goes in through textContent. window.heapReport is left for the curious (and the
 * tests): the data and the chart. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("heap-data").textContent);
  var report = document.getElementById("report");
  window.heapReport = { data: data, chart: null };

  var UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  function human(bytes) {
    if (bytes === undefined || bytes === null) return "";
    var v = bytes, i = 0;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return i === 0 ? v + " bytes" : v.toFixed(1) + " " + UNITS[i];
  }
  function count(n) { return n === undefined || n === null ? "" : Number(n).toLocaleString("en-US"); }
  function percent(part, whole) { return whole ? (100 * part / whole).toFixed(1) + "%" : ""; }
  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function section(id, title, note) {
    var s = el("section");
    s.id = id;
    s.appendChild(el("h2", null, title));
    if (note) s.appendChild(el("p", "note", note));
    report.appendChild(s);
    return s;
  }
  function site(o) { return o.file ? o.file + ":" + o.line : ""; }
  function what(o) {
    if (o.root) return "ROOT " + o.root;
    var name = o.name || o["class"] || o.imemo_type || "";
    return (o.type || "") + (name ? " " + name : "");
  }

  /* One bar a type: what a root reaches (retained) and what awaits GC; without the analysis
   * (analysed false), the memsize alone, never called held. */
  function typeBars(parent, byType, analysed) {
    var types = Object.keys(byType || {}).map(function (t) { return { type: t, v: byType[t] }; });
    var held = function (t) { return t.v.retained_memsize === undefined ? t.v.memsize : t.v.retained_memsize; };
    types.sort(function (a, b) { return held(b) - held(a) || b.v.memsize - a.v.memsize; });
    var legend = el("p", "note legend");
    var keys = analysed ? [["held", "retained"], ["garbage", "awaiting GC"]] : [["own", "memsize (what is retained is not known: garbage included)"]];
    keys.forEach(function (k) {
      var sw = el("span", "bar " + k[0]);
      sw.style.background = { held: "#d9534f", garbage: "#b9c7d6", own: "#9e9e9e" }[k[0]];
      legend.appendChild(sw);
      legend.appendChild(document.createTextNode(k[1]));
    });
    parent.appendChild(el("h3", null, "By type"));
    parent.appendChild(legend);
    var bars = el("div", "bars");
    var widest = types.reduce(function (m, t) { return Math.max(m, t.v.memsize); }, 1);
    if (types.length > 8) { /* the rest in one row: a page is read from the top */
      var rest = types.splice(7);
      var sum = { memsize: 0, retained_memsize: 0 };
      rest.forEach(function (t) { sum.memsize += t.v.memsize; sum.retained_memsize += held(t); });
      types.push({ type: rest.length + " other types", v: sum });
    }
    types.forEach(function (t) {
      bars.appendChild(el("span", null, t.type));
      var bar = el("div", "bar");
      if (!analysed) {
        var m = el("span", "own"); m.style.width = (100 * t.v.memsize / widest) + "%"; bar.appendChild(m);
        bars.appendChild(bar);
        bars.appendChild(el("span", "note", human(t.v.memsize) + " (garbage included)"));
        return;
      }
      var h = held(t), g = Math.max(0, t.v.memsize - h);
      var a = el("span", "held"); a.style.width = (100 * h / widest) + "%"; bar.appendChild(a);
      var b = el("span", "garbage"); b.style.width = (100 * g / widest) + "%"; bar.appendChild(b);
      bar.title = t.type + ": " + human(h) + " retained, " + human(g) + " awaiting GC";
      bars.appendChild(bar);
      bars.appendChild(el("span", "note", human(h) + " retained" + (g ? ", " + human(g) + " awaiting GC" : "")));
    });
    parent.appendChild(bars);
  }

  /* A path from a root, root first, drawn as a chain of hops (length: the whole path's, which may
   * be longer than the hops written: the cut is said in the middle). */
  function chain(path, length) {
    var c = el("div", "chain");
    (path || []).forEach(function (hop, i) {
      if (i) c.appendChild(el("span", "arrow", "\u2192"));
      var h = el("span", "hop" + (i === path.length - 1 ? " target" : ""), what(hop) + (hop.address ? " " + hop.address : "") +
        (site(hop) ? " (" + site(hop) + ")" : "") + (hop.retained_memsize !== undefined ? ", retains " + human(hop.retained_memsize) : ""));
      c.appendChild(h);
      if (length > path.length && i === Math.floor(path.length / 2) - 1) {
        c.appendChild(el("span", "arrow", "\u2192 \u2026 " + (length - path.length) + " hops not shown \u2026"));
      }
    });
    return c;
  }

  /* A row of big figures under parent; add(label, value) puts one in. */
  function totalsRow(parent) {
    var row = el("div", "totals");
    parent.appendChild(row);
    return function (label, value) {
      var d = el("div");
      d.appendChild(el("b", null, value));
      d.appendChild(document.createTextNode(label));
      row.appendChild(d);
    };
  }

  /* A sortable table of rows under a section of its own (none when there are no rows). */
  function table(id, title, note, rows, columns) {
    if (!rows || !rows.length) return;
    var s = section(id, title, note);
    var t = el("table"), head = el("thead"), body = el("tbody"), tr = el("tr");
    var order = { col: columns.findIndex(function (c) { return c.sorted; }), desc: true };
    columns.forEach(function (c, i) {
      var th = el("th", c.num ? "num" : "", c.label);
      th.addEventListener("click", function () {
        order = { col: i, desc: order.col === i ? !order.desc : true };
        fill();
      });
      tr.appendChild(th);
    });
    head.appendChild(tr);
    t.appendChild(head);
    t.appendChild(body);
    function fill() {
      var c = columns[order.col];
      var sorted = rows.slice();
      if (c) sorted.sort(function (a, b) {
        var x = c.key(a), y = c.key(b);
        var r = c.num ? x - y : String(x).localeCompare(String(y));
        return order.desc ? -r : r;
      });
      Array.prototype.forEach.call(head.querySelectorAll("th"), function (th, i) {
        th.className = (columns[i].num ? "num " : "") + (i === order.col ? (order.desc ? "sorted-desc" : "sorted-asc") : "");
      });
      body.textContent = "";
      sorted.forEach(function (r) {
        var row = el("tr");
        columns.forEach(function (col) { row.appendChild(el("td", col.num ? "num" : "text", (col.show || col.key)(r))); });
        body.appendChild(row);
      });
    }
    fill();
    s.appendChild(t);
  }
  var num = function (key, label, show, sorted) {
    return { key: function (r) { return r[key] || 0; }, label: label, num: true, show: show ? function (r) { return show(r[key]); } : function (r) { return count(r[key]); }, sorted: sorted };
  };
  var text = function (label, fn) { return { key: fn, label: label }; };

  document.getElementById("dump-name").textContent = data.name + " \u2014 " + data.made_by;

  if (data.error) {
    section("problem", "No report").appendChild(el("p", "problem", data.error));
    return;
  }

  /* --- a diff: what grew between the dumps, and what holds it --- */
  function drawDiff() {
    var names = data.names || [];
    var glance = section("growth", "The growth at a glance",
      "Objects in " + names[1] + " whose address " + names[0] + " does not have" +
      (names[2] ? ", still in " + names[2] + " (as it has them: whether they are held is judged there)" : "") + ".");
    var total = totalsRow(glance);
    total("new objects (" + human(data.memsize) + ")", count(data.objects));
    if (data.growth) {
      total("retained: reachable from a root (" + count(data.growth.retained.objects) + " objects)", human(data.growth.retained.memsize));
      total("awaiting GC: freed by the next GC, not growth that stays (" + count(data.growth.garbage.objects) + " objects)",
            human(data.growth.garbage.memsize));
      if (data.growth.own && data.growth.own.objects) {
        total("of it heapcapture's own (" + count(data.growth.own.objects) + " objects)", human(data.growth.own.memsize));
      }
    }
    if (data.caveat) glance.appendChild(el("p", "problem", data.caveat));
    if (!data.growth) {
      glance.appendChild(el("p", "problem", "No retention analysis: " + (data.retention || "none") +
                                             ". The figures below count every new object, garbage included."));
    }
    typeBars(glance, data.types, !!data.growth);

    if (data.growth) {
      var hold = section("holder", "What is holding the growth",
        "The deepest object on the dominator chain holding at least 80% of the most any object holds " +
        "(typically an old object, a cache, holding the new ones), and its shortest path from a root, root first.");
      var h = data.holder;
      if (!h) {
        hold.appendChild(el("p", "note", "Nothing: no root reaches a new object."));
      } else {
        var box = el("div", "suspect");
        box.id = "growth-holder";
        box.appendChild(el("h3", null, what(h) + " " + h.address + " holds " + human(h.growth_memsize) + " of the growth (" +
          (100 * h.growth_share).toFixed(1) + "% of what is retained)"));
        box.appendChild(el("p", "note", count(h.growth_objects) + " new objects" + (site(h) ? "; it was allocated at " + site(h) : "")));
        box.appendChild(chain(h.path, h.path_length));
        hold.appendChild(box);
      }
    }
    var growthCols = function (bySite) {
      var cols = [bySite ? text("site", site) : text("class", function (r) { return r["class"]; }),
        num("retained_memsize", "retained", human, true), num("retained_objects", "retained objects"),
        num("memsize", "memsize", human), num("objects", "objects")];
      if (bySite) cols.push(text("note", function (r) { return r.estimated ? "estimate: " + r.sampled + " sampled" : ""; }));
      return cols;
    };
    table("holders", "Holders of the growth", "Each object and the new objects' memsize it keeps alive (the deepest of each chain).",
          data.holders,
          [text("object", what), text("address", function (r) { return r.address; }), text("site", site),
           num("growth_memsize", "growth held", human, true), num("growth_objects", "new objects"),
           num("growth_share", "share", function (v) { return (100 * v).toFixed(1) + "%"; })]);
    if (data.growth) {
      table("growth-sites", "Sites of the growth", "By retained memsize: the new objects a root reaches; memsize and objects count " +
            "those awaiting GC too.", data.sites, growthCols(true));
      table("growth-classes", "Classes of the growth", "By retained memsize.", data.classes, growthCols(false));
    } else {
      table("growth-sites", "Sites of the growth", "By memsize, garbage included: no retention analysis.", data.sites,
            [text("site", site), num("memsize", "memsize", human, true), num("objects", "objects")]);
    }
    table("growth-by-count", "Sites of the growth by object count", "Garbage included.", data.sites_by_count,
          [text("site", site), num("objects", "objects", null, true), num("memsize", "memsize", human)]);
  }

  if (data.kind === "diff") {
    drawDiff();
    return;
  }

  /* --- the heap at a glance --- */
  var glance = section("glance", "The heap at a glance");
  var total = totalsRow(glance);
  total("objects in the dump (" + human(data.memsize) + ")", count(data.objects));
  if (data.retained) {
    total("retained: reachable from a root (" + count(data.retained.objects) + " objects)", human(data.retained.memsize));
    total("awaiting GC: freed by the next GC, not held (" + count(data.garbage.objects) + " objects)",
          human(data.garbage.memsize));
    if (data.own && data.own.objects) total("of it heapcapture's own (" + count(data.own.objects) + " objects)", human(data.own.memsize));
  }
  if (!data.retained) {
    glance.appendChild(el("p", "problem", "No retention analysis: " + (data.retention || "none in this summary") +
                                           ". The figures below count every object the dump holds, garbage included."));
  }
  if (data.invalid_lines) glance.appendChild(el("p", "note", count(data.invalid_lines) + " line(s) of the dump are not JSON and were left out."));

  typeBars(glance, data.types, !!data.retained);

  /* --- the dominator tree as an icicle --- */
  if (data.tree) {
    var ice = section("dominators", "What holds the memory: the dominator tree",
      "Each frame is the objects, at one place along the paths from the roots, of one class and site: its width is what " +
      "they retain (what would be freed with them). Frames under 0.1% of the retained heap are joined in (other). " +
      "Click a frame to zoom; click the top frame to zoom out. A site is known only for objects allocated with tracing on.");
    var tools = el("div");
    tools.id = "icicle-tools";
    var search = el("input");
    search.id = "search";
    search.type = "search";
    search.placeholder = "highlight a class or a file (e.g. Array, app/models/user.rb)";
    var found = el("span", "note");
    found.id = "search-result";
    tools.appendChild(search);
    tools.appendChild(found);
    ice.appendChild(tools);
    var details = el("div");
    details.id = "details";
    ice.appendChild(details);
    var icicle = el("div");
    icicle.id = "icicle";
    ice.appendChild(icicle);
    var label = function (d) {
      var f = d.data;
      if (f.other) return "(other): " + count(f.frames) + " smaller frames, " + human(f.value) + " retained";
      return f.name + (f.address ? " \u2014 " + f.address + " (the one retaining most)" : "") + " \u2014 retains " +
        human(f.value) + " (" + percent(f.value, data.tree.value) + ") in " + count(f.objects) + " objects; " +
        count(f.instances) + " instance(s) take " + human(f.self) + " themselves and undrawn below";
    };
    var chart = flamegraph.default()
      .width(Math.max(600, icicle.clientWidth || 1000))
      .cellHeight(18)
      .inverted(true)
      .sort(false)
      .minFrameSize(2)
      .transitionDuration(0)
      .label(label)
      .setDetailsElement(details)
      .setSearchHandler(function (matches, sum, whole) {
        found.textContent = search.value ? matches.length + " frame(s) match, " + human(sum) + " (" + percent(sum, whole) + ")" : "";
      });
    d3.select(icicle).datum(data.tree).call(chart);
    window.heapReport.chart = chart;
    search.addEventListener("input", function () {
      if (search.value) chart.search(search.value); else { chart.clear(); found.textContent = ""; }
    });
  }

  /* --- leak suspects, each with its path from a root --- */
  if (data.retained) {
    var sus = section("suspects", "Leak suspects",
      "A retainer, or a class or site whose instances together, holding at least the suspect share of the retained heap; " +
      "its shortest path from a root, root first.");
    if (!(data.suspects || []).length) sus.appendChild(el("p", "note", "None."));
    (data.suspects || []).forEach(function (s) {
      var box = el("div", "suspect");
      var who = s.kind === "object" ? what(s) + " " + s.address : (s.kind === "class" ? "instances of " + s["class"] : "objects allocated at " + site(s));
      box.appendChild(el("h3", null, (100 * s.share).toFixed(1) + "% of the retained heap \u2014 " + who));
      box.appendChild(el("p", "note", count(s.instances) + " instance(s) retain " + human(s.retained_memsize) + " in " +
        count(s.retained_objects) + " objects" + (s.kind !== "object" && site(s) ? "; at " + site(s) : "") +
        (s.estimated ? " (an estimate: " + count(s.sampled) + " sampled)" : "")));
      box.appendChild(chain(s.path, s.path_length));
      sus.appendChild(box);
    });
  }

  /* --- the report's tables --- */
  table("classes", "Retained by class", "Instances not held by another of their class, and what they retain.", data.retained_by_class,
        [text("class", function (r) { return r["class"]; }), num("retained_memsize", "retained", human, true),
         num("retained_objects", "objects"), num("instances", "instances")]);
  table("sites", "Retained by allocation site", "Objects not held by another of their site, and what they retain.", data.retained_by_site,
        [text("site", site), num("retained_memsize", "retained", human, true), num("retained_objects", "objects"),
         num("instances", "instances"), text("note", function (r) { return r.estimated ? "estimate: " + r.sampled + " sampled" : ""; })]);
  table("retainers", "The largest retainers", "Each object and what it alone keeps alive (its dominator subtree).", data.retainers,
        [text("object", what), text("address", function (r) { return r.address; }), text("site", site),
         num("retained_memsize", "retained", human, true), num("retained_objects", "objects"), num("memsize", "own memsize", human)]);
  table("strings", "Duplicate strings", "One value held by many strings (garbage included): copies, their memsize, the value's first bytes.",
        data.duplicate_strings,
        [text("value", function (r) { return r.value + (r.truncated ? "\u2026" : ""); }), num("count", "copies", null, true),
         num("memsize", "memsize", human), text("site", site)]);
})();
