# frozen_string_literal: true

require_relative "../test_helper"
require_relative "../support/page_helpers"
require_relative "../support/heap_graph_reference"

# `heapcapture report DUMP --html FILE`, opened in a real browser (headless Chromium, nothing
# reachable off the machine: test/support/chromium.rb). The dump: test/fixtures/retention/garbage.rb,
# 2,000 strings kept in one Array and 20 MB of buffers awaiting GC above them. The page must load
# with no console message and no request but its own; its icicle has the suspect's frame with what
# it retains, a click on that frame zooms it to the whole width, the search box highlights the
# kept strings' site, and each suspect's path is the one `heapcapture path` gives. Screenshots go to
# tmp/test-output/ (report-page*.png). Bad input: an empty file and a dump without references each
# give a page that says so.
class ReportPageTest < HCTest::TestCase
  include HCTest::PageHelpers

  # The fixture's dump, and what it knows (the kept Array's address, the kept strings' line).
  def make_dump
    path = File.join(@dir, "garbage.ndjson")
    [path, run_fixture("garbage", path)]
  end

  def test_the_page_in_a_browser
    dump, facts = make_dump
    page = File.join(@dir, "report.html")
    out, err, status = heapcapture("report", dump, "--html", page, "--json")
    assert status.success?, err
    summary = JSON.parse(out)
    suspect = summary["suspects"].find { |s| s["kind"] == "object" && s["address"] == facts["kept"] }
    refute_nil suspect, "the kept Array is a suspect: #{summary['suspects'].map { |s| s.values_at('kind', 'address') }}"
    assert_operator File.size(page), :<, 3_000_000

    HCTest::Chromium.open do |browser|
      load_time = browser.visit("file://#{page}")
      assert_operator load_time, :<, 10
      browser.wait_for("document.querySelectorAll('#icicle g').length > 0")
      assert_empty browser.console_messages, "no console message at all"
      assert_equal ["file://#{page}"], browser.requests.map { |r| r[:url] }, "no request but the page's own"
      browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "report-page.png"))

      ref = HeapGraphReference.new(dump)
      assert_figures_as_the_reference(browser, ref, facts["kept"])
      assert_suspect_frame(browser, suspect)
      assert_hover_tells(browser, suspect, ref)
      assert_click_zooms(browser, suspect["address"])
      assert_search_highlights(browser, "#{facts['file']}:#{facts['kept_line']}")
      assert_paths_as_path_gives(browser, dump, summary["suspects"])
      assert_tables_sort(browser)
      assert_empty browser.console_messages, "nothing logged while it was used"
      assert_equal 1, browser.requests.size, "still no request: #{browser.requests.map { |r| r[:url] }}"
    end
  end

  # The page's totals and the kept Array's frame, against the Ruby reference's own analysis of the
  # dump (every line through JSON.parse): retained and awaiting GC as the page prints them, and the
  # frame retaining what the reference says the Array alone keeps alive.
  def assert_figures_as_the_reference(browser, ref, kept)
    text = browser.evaluate("document.getElementById('glance').textContent")
    { "retained" => ref.retained, "awaiting GC" => ref.garbage }.each do |what, t|
      assert_includes text, "#{HeapCapture::Size.count(t['objects'])} objects", "#{what}: #{t} in #{text[0, 400]}"
      assert_includes text, HeapCapture::Size.human(t["memsize"]), "#{what}'s memsize"
    end
    value = browser.evaluate("(function () { var hit = #{frame_of(kept)}; " \
                             "return hit ? [hit.__data__.data.value, hit.__data__.data.objects] : null; })()")
    assert_equal ref.retained_size(kept), value, "the kept Array's frame retains what the reference says"
  end

  # The frame whose instance retaining most is the suspect: it retains what the suspect does.
  def assert_suspect_frame(browser, suspect)
    frame = browser.evaluate("(function () { var hit = #{frame_of(suspect['address'])}; " \
                             "return hit ? { value: hit.__data__.data.value, name: hit.__data__.data.name } : null; })()")
    refute_nil frame, "a frame for #{suspect['address']} in the icicle"
    assert_equal suspect["retained_memsize"], frame["value"], "the frame retains what the suspect does (#{frame['name']})"
  end

  # The mouse over the suspect's frame: the line above the icicle (and the frame's title, the
  # browser's own tooltip) tells its class and site, the address of the instance retaining most,
  # what the frame retains and its share, its objects, and the instances' own memsize, as the
  # frame's figures (the suspect's, checked above) give them; the kept Array's own memsize as the
  # dump's line says.
  def assert_hover_tells(browser, suspect, ref)
    find = frame_of(suspect["address"])
    browser.evaluate("(#{find}).scrollIntoView({ block: 'center' })")
    box = point_in(browser, "(#{find}).querySelector('rect')")
    browser.hover_at(box["x"], box["y"])
    browser.wait_for("document.getElementById('details').textContent.indexOf(#{suspect['address'].to_json}) >= 0",
                     timeout: 5)
    told = browser.evaluate("document.getElementById('details').textContent")
    frame = browser.evaluate("(function () { var d = (#{find}).__data__.data; " \
                             "return { name: d.name, self: d.self, objects: d.objects, instances: d.instances }; })()")
    assert_includes told, frame["name"], "class and site"
    assert_equal [1, ref.record(suspect["address"]).memsize], frame.values_at("instances", "self"), "the Array alone"
    assert_includes told, "#{suspect['address']} (the one retaining most)"
    size = HeapCapture::Size
    assert_includes told, "retains #{size.human(suspect['retained_memsize'])} ("
    assert_includes told, "in #{size.count(frame['objects'])} objects"
    assert_includes told, "#{size.count(frame['instances'])} instance(s) take #{size.human(frame['self'])} themselves"
    assert_equal told, browser.evaluate("(#{find}).querySelector('title').textContent"), "the frame's own tooltip says the same"
  end

  # JavaScript for the icicle's frame (its g) whose instance retaining most is at address.
  def frame_of(address)
    <<~JS.strip
      Array.prototype.find.call(document.querySelectorAll("#icicle g"),
        function (g) { return g.__data__ && g.__data__.data.address === #{address.to_json}; })
    JS
  end

  # A point inside the element rect (JavaScript), near its left end (a wide frame's label may cover
  # its middle): { "x", "y", "w" (its width) }.
  def point_in(browser, rect)
    browser.evaluate("(function () { var r = (#{rect}).getBoundingClientRect(); " \
                     "return { x: r.left + Math.min(r.width / 2, 20), y: r.top + r.height / 2, w: r.width }; })()")
  end

  # A click on the frame zooms it: its box then fills the chart's width (the box, not the frame's
  # group, whose label may overflow it).
  def assert_click_zooms(browser, address)
    find = "(#{frame_of(address)}).querySelector('rect')"
    box = point_in(browser, find)
    whole = browser.evaluate("document.querySelector('#icicle svg').getBoundingClientRect().width")
    assert_operator box["w"], :<, whole * 0.9, "before the click the frame is narrower than the chart"
    browser.evaluate("(#{find}).scrollIntoView({ block: 'center' })")
    box = point_in(browser, find)
    browser.click_at(box["x"], box["y"])
    browser.wait_for("(#{find}).getBoundingClientRect().width >= #{whole * 0.98}", timeout: 5)
    browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "report-page-zoomed.png"))
    browser.evaluate("window.heapReport.chart.resetZoom()")
  end

  # Typing the kept strings' site into the search box highlights their frame and says how much matched.
  def assert_search_highlights(browser, site)
    browser.click("#search")
    browser.insert_text(site)
    browser.wait_for("document.getElementById('search-result').textContent.indexOf('match') >= 0", timeout: 5)
    highlighted = browser.evaluate(<<~JS)
      Array.prototype.filter.call(document.querySelectorAll("#icicle g"),
        function (g) { return g.__data__ && g.__data__.highlight; }).map(function (g) { return g.__data__.data.name; })
    JS
    refute_empty highlighted
    assert(highlighted.all? { |name| name.include?(site) }, "only frames of #{site}: #{highlighted}")
    assert_match(/\A\d+ frame\(s\) match, /, browser.evaluate("document.getElementById('search-result').textContent"))
    browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "report-page-search.png"))
  end

  # Each suspect's chain on the page: the hops `heapcapture path DUMP ADDRESS` gives, in order.
  def assert_paths_as_path_gives(browser, dump, suspects)
    chains = browser.evaluate(<<~JS)
      Array.prototype.map.call(document.querySelectorAll("#suspects .suspect"), function (s) {
        return Array.prototype.map.call(s.querySelectorAll(".hop"), function (h) { return h.textContent; });
      })
    JS
    assert_equal suspects.size, chains.size
    suspects.zip(chains).each do |suspect, hops|
      out, err, status = heapcapture("path", dump, suspect["path"].last["address"], "--json")
      assert status.success?, err
      path = JSON.parse(out).first["path"]
      assert_equal path.size, hops.size, "hops of the path to #{suspect['address']}: #{hops}"
      path.zip(hops).each do |hop, text|
        assert_includes text, hop["address"] || "ROOT #{hop['root']}"
      end
    end
  end

  # A click on a column's header sorts by it, largest first, then smallest first.
  def assert_tables_sort(browser)
    column = "document.querySelectorAll('#classes tbody tr td:nth-child(3)')"
    values = "Array.prototype.map.call(#{column}, function (td) { return Number(td.textContent.replace(/,/g, '')); })"
    browser.click("#classes th:nth-child(3)")
    desc = browser.evaluate(values)
    assert_equal desc.sort.reverse, desc, "objects, largest first"
    browser.click("#classes th:nth-child(3)")
    asc = browser.evaluate(values)
    assert_equal asc.sort, asc, "then smallest first"
  end

  def test_bad_input_says_so_on_the_page
    empty = File.join(@dir, "empty.ndjson")
    File.write(empty, "")
    page = File.join(@dir, "empty.html")
    _, err, status = heapcapture("report", empty, "--html", page)
    assert_equal 1, status.exitstatus
    assert_match(/is empty: there is no heap dump in it/, err)
    flat = File.join(@dir, "flat.ndjson")
    File.write(flat, %({"address":"0x1", "type":"STRING", "memsize":40}\n{"address":"0x2", "type":"ARRAY", "memsize":80}\n))
    flat_page = File.join(@dir, "flat.html")
    _, err, status = heapcapture("report", flat, "--html", flat_page)
    assert status.success?, err
    HCTest::Chromium.open do |browser|
      browser.visit("file://#{page}")
      assert_match(/is empty: there is no heap dump in it/, browser.evaluate("document.getElementById('problem').textContent"))
      browser.visit("file://#{flat_page}")
      said = browser.evaluate("document.querySelector('#glance .problem').textContent")
      assert_match(/No retention analysis: not computed: .*no ROOT records and no references/, said)
      assert browser.evaluate("document.getElementById('dominators') === null"), "no icicle without a tree"
      assert_equal ["80 bytes (garbage included)", "40 bytes (garbage included)"],
                   browser.evaluate("Array.prototype.map.call(document.querySelectorAll('#glance .bars .note'), " \
                                    "function (n) { return n.textContent; })"), "nothing called retained"
      assert_empty browser.console_messages
      browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "report-page-no-references.png"))
    end
  end
end
